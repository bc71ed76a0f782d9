"""Chord qualities as interval sets (the one table of them), and matching intervals to the nearest quality."""

from __future__ import annotations

# Intervals in semitones above the root. Extensions above the octave keep their real size (14 = 9th).
QUALITIES: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "dim": (0, 3, 6),
    "aug": (0, 4, 8),
    "sus2": (0, 2, 7),
    "sus4": (0, 5, 7),
    "maj6": (0, 4, 7, 9),
    "min6": (0, 3, 7, 9),
    "dom7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10),
    "minmaj7": (0, 3, 7, 11),
    "hdim7": (0, 3, 6, 10),
    "dim7": (0, 3, 6, 9),
    "7sus4": (0, 5, 7, 10),
    "aug7": (0, 4, 8, 10),
    "add9": (0, 4, 7, 14),
    "dom9": (0, 4, 7, 10, 14),
    "maj9": (0, 4, 7, 11, 14),
    "min9": (0, 3, 7, 10, 14),
    "min11": (0, 3, 7, 10, 14, 17),
    "dom13": (0, 4, 7, 10, 14, 21),
    "dom7b9": (0, 4, 7, 10, 13),
}

NO_CHORD = "N"
PITCH_NAMES = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")


def pitch_classes(quality: str) -> frozenset[int]:
    """Pitch classes (relative to the root) of a quality."""
    return frozenset(i % 12 for i in QUALITIES[quality])


def match_quality(relative_pcs: set[int] | frozenset[int]) -> str:
    """The quality whose pitch classes best match `relative_pcs` (pitch classes above an assumed root).

    Scores each quality by shared tones minus missing and extra ones; ties go to the simpler chord.
    """
    best, best_score = "maj", -1e9
    for name, _ in QUALITIES.items():
        pcs = pitch_classes(name)
        score = len(pcs & relative_pcs) - 0.6 * len(pcs - relative_pcs) - 0.5 * len(relative_pcs - pcs)
        score -= 0.01 * len(pcs)
        if score > best_score:
            best, best_score = name, score
    return best


def quality_of_intervals(intervals: set[int]) -> tuple[str, bool]:
    """(quality, exact) for semitone `intervals` above a root: an exact QUALITIES match if one exists."""
    pcs = frozenset(i % 12 for i in intervals)
    for name in QUALITIES:
        if pitch_classes(name) == pcs:
            return name, True
    if len(pcs) < 3:  # power chords and bare roots: call them major
        return "maj", False
    return match_quality(set(pcs)), False
