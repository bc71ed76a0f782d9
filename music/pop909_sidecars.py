"""POP909's annotations beside each MIDI file: the key (`key_audio.txt`) and the chords (`chord_midi.txt`).

Both are text files of 'start end label' lines, times in seconds and labels in Harte syntax (`music.harte`).
The chords are moved onto the score's grid by the MIDI reader's clock (seconds -> grid ticks, given as a
function), and each takes the voicing the piano plays at its onset.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from music.chords import NO_CHORD
from music.harte import harte_chord, harte_key
from music.parse_info import ParseInfo
from music.score import Chord, Voicing
from music.score_building import merge_chords

CHORD_SIDECAR = "chord_midi.txt"
KEY_SIDECAR = "key_audio.txt"
SIDECARS = (CHORD_SIDECAR, KEY_SIDECAR)
CHORD_GRID = 6  # chord changes snap to eighth notes


def sidecar_key(text: bytes) -> tuple[int, str] | None:
    """(tonic, mode) of the first key in a `key_audio.txt`; None when it has none or cannot be read."""
    for line in text.decode("utf-8", "replace").splitlines():
        parts = line.split()
        if len(parts) >= 3 and ":" in parts[2]:
            try:
                return harte_key(parts[2])
            except ValueError:
                return None
    return None


def sidecar_chords(
    text: bytes,
    to_tick: Callable[[float], int],
    piano_notes: list[tuple[int, int, int]],
    info: ParseInfo,
) -> list[Chord]:
    """The chords of a `chord_midi.txt`, on the eighth-note grid and merged (see `merge_chords`).

    Args:
        text: the side-car's bytes.
        to_tick: seconds -> the score's grid tick (the file's tempo map and quantiser).
        piano_notes: (start, end, pitch) of the piano track on the grid, for each chord's voicing.
        info: counts the symbols read, exact and approximated (unreadable labels count as approximated).
    """
    chords: list[Chord] = []
    for line in text.decode("utf-8", "replace").splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        try:
            start_s, end_s = float(parts[0]), float(parts[1])
            parsed = harte_chord(parts[2])
        except ValueError:
            info.chord_approx[parts[2]] += 1
            info.chord_symbols += 1
            continue
        start = _snap(to_tick(start_s), CHORD_GRID)
        end = _snap(to_tick(end_s), CHORD_GRID)
        if end <= start:
            continue
        info.chord_symbols += 1
        if parsed is None:
            chords.append(Chord(start, end - start, 0, NO_CHORD))
            info.chord_symbols_exact += 1
            continue
        root, quality, bass, exact = parsed
        if exact:
            info.chord_symbols_exact += 1
        else:
            info.chord_approx[parts[2].split(":", 1)[-1]] += 1
        # Piano notes sounding at the onset (or starting within an eighth after it).
        sounding = [p for on, off, p in piano_notes if on <= start + CHORD_GRID and off > start]
        chords.append(Chord(start, end - start, root, quality, bass, voicing_of(root, quality, sounding)))
    return merge_chords(chords)


def voicing_of(root: int, quality: str, pitches: list[int]) -> Voicing | None:
    """The voicing of sounding `pitches` for a chord: spread of the upper voices and top chord degree.

    'close' when the notes above the bass span at most an octave; the top degree is 1, 3, 5, 7 or 9
    (9 for any extension, the 6th of a sixth chord included).
    """
    if not pitches:
        return None
    ps = sorted(set(pitches))
    upper = ps[1:] if len(ps) >= 3 else ps
    spread = "close" if upper[-1] - upper[0] <= 12 else "open"
    rel = (ps[-1] - root) % 12
    degree = {0: 1, 1: 9, 2: 9, 3: 3, 4: 3, 5: 9, 6: 5, 7: 5, 8: 5, 9: 9, 10: 7, 11: 7}[rel]
    if quality == "dim7" and rel == 9:
        degree = 7
    elif quality in ("sus4", "7sus4") and rel == 5 or quality == "sus2" and rel == 2:
        degree = 3
    return Voicing(spread, degree)


def _snap(tick: int, grid: int) -> int:
    """`tick` to the nearest multiple of `grid`, never before 0."""
    return max(int(math.floor(tick / grid + 0.5)) * grid, 0)
