"""Harte chord labels ('C:maj/3', 'A:min7', 'D:sus4(b7)') read onto our chord qualities.

Harte et al. (2005) is the syntax POP909's chord annotations use. A label's shorthand and added or removed
degrees give a set of intervals, which is matched to `music.chords.QUALITIES`: exactly when one has those
pitch classes, else to the nearest (and counted as approximate by the caller).
"""

from __future__ import annotations

import re

from music.chords import QUALITIES, quality_of_intervals

PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}

# Harte shorthands (plus the extensions POP909 uses) that name one of our qualities: their intervals are
# those of `QUALITIES`, so the interval facts live in one table.
HARTE_QUALITY = {
    "maj": "maj",
    "min": "min",
    "dim": "dim",
    "aug": "aug",
    "maj7": "maj7",
    "min7": "min7",
    "7": "dom7",
    "dim7": "dim7",
    "hdim7": "hdim7",
    "minmaj7": "minmaj7",
    "maj6": "maj6",
    "min6": "min6",
    "9": "dom9",
    "maj9": "maj9",
    "min9": "min9",
    "sus2": "sus2",
    "sus4": "sus4",
    "min11": "min11",
    "13": "dom13",
}
# Every shorthand as semitones above the root: ours, and those beyond our vocabulary (built on ours), which
# `quality_of_intervals` then matches to the nearest quality.
HARTE_SHORTHANDS: dict[str, tuple[int, ...]] = {
    **{short: QUALITIES[quality] for short, quality in HARTE_QUALITY.items()},
    "11": (*QUALITIES["dom9"], 17),
    "maj13": (*QUALITIES["maj9"], 21),
    "min13": (*QUALITIES["min9"], 21),
    "5": (0, 7),  # a power chord
    "1": (0,),  # the root alone
}
DEGREE_SEMITONES = {1: 0, 2: 2, 3: 4, 4: 5, 5: 7, 6: 9, 7: 11, 8: 12, 9: 14, 10: 16, 11: 17, 12: 19, 13: 21}


def pitch_class_of(name: str) -> int:
    """Pitch class of a note name such as 'C#', 'Bb', 'Gb'; ValueError otherwise."""
    m = re.fullmatch(r"([A-Ga-g])([#b]*)", name.strip())
    if not m:
        raise ValueError(f"bad pitch name {name!r}")
    return (PITCH_CLASS[m.group(1).upper()] + m.group(2).count("#") - m.group(2).count("b")) % 12


def harte_chord(label: str) -> tuple[int, str, int, bool] | None:
    """(root, quality, bass interval, exact) of a Harte label such as 'C:maj/3'; None for 'N'/'X'.

    ValueError for a label that cannot be read.
    """
    label = label.strip()
    if label in ("N", "X", ""):
        return None
    root_s, _, rest = label.partition(":")
    root = pitch_class_of(root_s)
    rest = rest or "maj"
    rest, _, bass_s = rest.partition("/")
    m = re.fullmatch(r"([a-z0-9]*)(?:\(([^)]*)\))?", rest)
    if not m:
        raise ValueError(f"bad chord label {label!r}")
    short, degrees = m.group(1) or ("maj" if not m.group(2) else "1"), m.group(2)
    if short not in HARTE_SHORTHANDS:
        raise ValueError(f"unknown chord shorthand {short!r} in {label!r}")
    intervals = set(HARTE_SHORTHANDS[short])
    for deg in (degrees or "").split(","):
        deg = deg.strip()
        if not deg:
            continue
        remove = deg.startswith("*")
        semis = _degree(deg.lstrip("*"))
        if remove:
            intervals.discard(semis)
            intervals.discard(semis % 12)
        else:
            intervals.add(semis)
    bass = _degree(bass_s) % 12 if bass_s else 0
    quality, exact = quality_of_intervals(intervals)
    return root, quality, bass, exact


def harte_key(label: str) -> tuple[int, str]:
    """(tonic, mode) of a Harte key label such as 'A:min' or 'Eb:maj'; ValueError for a bad tonic."""
    root, mode = label.split(":", 1)
    return pitch_class_of(root), "minor" if mode.startswith("min") else "major"


def _degree(text: str) -> int:
    """Semitones above the root of a Harte degree such as 'b7' or '#11'; ValueError otherwise."""
    m = re.fullmatch(r"([b#]*)(\d+)", text.strip())
    if not m or int(m.group(2)) not in DEGREE_SEMITONES:
        raise ValueError(f"bad chord degree {text!r}")
    return DEGREE_SEMITONES[int(m.group(2))] + m.group(1).count("#") - m.group(1).count("b")
