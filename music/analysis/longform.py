"""Long-form measures of an arranged MIDI file: windows of bars, exact repetition, section contrast, key.

A track of several minutes can score well on the per-track features of `features.py` and still stall: a
minute that copies the one before note for note, sections that sound alike, a slow drift out of the key.
These measures look at the file bar by bar, read as `features.read_midi` reads it:

- `bar_contents`: per bar, the set of (part, onset in grid ticks from the bar start, MIDI pitch) of the
  pitched notes starting in it (the drums are left out: a groove loops by design).
- `exact_repetition`: the share of bars that copy the bar `lag` bars back note for note (empty bars left out);
  `part_bars` keeps one part (the melody), or a part's pitch classes per bar (the harmony the keys play).
- `section_contrast`: how different two sections (runs of bars) are, from 0 (the same notes) to 1: the mean of
  five distances between them (melody pitch classes, melody rhythm, melody density, melody register, the
  harmony the keys play).
- `in_key`: the share of pitched notes inside the declared key's scale (drift out of the key lowers it).
- `piece_window`: the bars `lo .. hi` of a piece as a piece of their own, so that every feature of
  `features.track_features` can be taken per minute.

Pure Python + numpy; no TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from music.analysis.features import (
    DRUM_CHANNEL,
    KEYS_TRACK,
    MAJOR_SCALE,
    MELODY_TRACK,
    MINOR_SCALE,
    MidiPiece,
    jaccard,
    keys_notes,
    melody_notes,
)

REPETITION_LAGS = (4, 8, 16)
SECTION_BARS = 8  # the common phrase-group length: real songs' sections are mostly multiples of it
REGISTER_SPAN = 12.0  # semitones: a section an octave higher or lower is as far apart as registers get here

Bar = frozenset  # of (part, onset in grid ticks from the bar start, pitch)


def piece_window(piece: MidiPiece, lo: int, hi: int) -> MidiPiece:
    """Bars `lo` .. `hi` - 1 of `piece` as a piece starting at tick 0 (notes starting in them, cut at `hi`).

    The window has no path, so `track_features` does not run the key finder on the whole file for it.
    """
    lo, hi = max(lo, 0), min(hi, piece.n_bars)
    t0, t1 = piece.bar_starts[lo], piece.bar_starts[hi]
    notes = [
        replace(n, start=n.start - t0, end=min(n.end, t1) - t0) for n in piece.notes if t0 <= n.start < t1
    ]
    starts = [s - t0 for s in piece.bar_starts[lo : hi + 1]]
    return MidiPiece(notes, piece.ticks_per_beat, starts, piece.key_signature, None)


def bar_contents(piece: MidiPiece) -> list[Bar]:
    """Per bar, the set of (part, onset in grid ticks from the bar start, pitch) of its pitched notes."""
    melody, keys = set(melody_notes(piece)), set(keys_notes(piece))
    bars: list[set] = [set() for _ in range(piece.n_bars)]
    grid_starts = [piece.grid(s) for s in piece.bar_starts]
    for n in piece.notes:
        if n.channel == DRUM_CHANNEL:
            continue
        # The part by what the features read as melody and keys, so files without track names work too.
        part = MELODY_TRACK if n in melody else KEYS_TRACK if n in keys else (n.track or str(n.channel))
        b = piece.bar_of(n.start)
        bars[b].add((part, piece.grid(n.start) - grid_starts[b], n.pitch))
    return [frozenset(b) for b in bars]


def exact_repetition(bars: Sequence[Bar], lag: int, only: Sequence[int] | None = None) -> float:
    """Share of the non-empty bars that have a bar `lag` back and copy it note for note.

    Args:
        bars: from `bar_contents`.
        lag: how many bars back to look (4, 8, 16).
        only: count only these bar indices (a minute's bars); default every bar.
    Returns:
        In [0, 1]; NaN when no non-empty bar has a bar `lag` back.
    """
    indices = range(len(bars)) if only is None else only
    hits = total = 0
    for b in indices:
        if b < lag or b >= len(bars) or not bars[b]:
            continue
        total += 1
        hits += bars[b] == bars[b - lag]
    return hits / total if total else math.nan


def part_bars(bars: Sequence[Bar], part: str, pitch_classes: bool = False) -> list[Bar]:
    """`bars` kept to one part; with `pitch_classes`, each bar as the set of pitch classes the part plays in
    it (the bar's harmony when the part is the keys, whose comping rhythm and voicing vary bar by bar)."""
    if pitch_classes:
        return [frozenset(p % 12 for q, _, p in bar if q == part) for bar in bars]
    return [frozenset(x for x in bar if x[0] == part) for bar in bars]


def _part(bars: Sequence[Bar], part: str) -> list[tuple[int, int]]:
    return [(onset, pitch) for bar in bars for p, onset, pitch in bar if p == part]


def _pitch_class_distance(a: list[int], b: list[int]) -> float:
    """Total variation distance of two pitch-class histograms (0 for two empty ones, 1 for one empty)."""
    if not a and not b:
        return 0.0
    if not a or not b:
        return 1.0
    ha = np.bincount(np.asarray(a) % 12, minlength=12) / len(a)
    hb = np.bincount(np.asarray(b) % 12, minlength=12) / len(b)
    return float(0.5 * np.abs(ha - hb).sum())


def contrast_parts(a: Sequence[Bar], b: Sequence[Bar]) -> dict[str, float]:
    """The five distances between sections `a` and `b` (lists of `bar_contents`), each in [0, 1].

    Returns:
        pitch_classes: total variation distance of the melody's pitch-class histograms.
        rhythm: Jaccard distance of the melody's onset positions within the bar.
        density: |difference| / larger of the melody's notes per bar.
        register: |difference| of the melody's mean pitch over an octave (capped at 1).
        harmony: Jaccard distance of the sets of bar harmonies (the pitch classes the keys play in a bar).
    """
    ma, mb = _part(a, MELODY_TRACK), _part(b, MELODY_TRACK)
    da, db = len(ma) / max(len(a), 1), len(mb) / max(len(b), 1)
    register = 0.0
    if ma and mb:
        gap = abs(np.mean([p for _, p in ma]) - np.mean([p for _, p in mb]))
        register = min(float(gap) / REGISTER_SPAN, 1.0)
    elif ma or mb:
        register = 1.0

    def harmony(bars: Sequence[Bar]) -> set:
        return {frozenset(p % 12 for part, _, p in bar if part == KEYS_TRACK) for bar in bars} - {frozenset()}

    return {
        "pitch_classes": _pitch_class_distance([p for _, p in ma], [p for _, p in mb]),
        "rhythm": 1.0 - jaccard({o for o, _ in ma}, {o for o, _ in mb}),
        "density": abs(da - db) / max(da, db) if max(da, db) > 0 else 0.0,
        "register": register,
        "harmony": 1.0 - jaccard(harmony(a), harmony(b)),
    }


def section_contrast(a: Sequence[Bar], b: Sequence[Bar]) -> float:
    """How different two sections are: the mean of `contrast_parts` (0 = alike in every respect, 1 = apart)."""
    parts = contrast_parts(a, b)
    return float(sum(parts.values()) / len(parts))


def consecutive_contrasts(bars: Sequence[Bar], sections: Sequence[tuple[int, int]]) -> list[float]:
    """`section_contrast` of each pair of consecutive sections ((first bar, end bar) each)."""
    return [
        section_contrast(bars[a0:a1], bars[b0:b1])
        for (a0, a1), (b0, b1) in zip(sections, sections[1:], strict=False)
    ]


def fixed_sections(n_bars: int, size: int = SECTION_BARS) -> list[tuple[int, int]]:
    """(first bar, end bar) of consecutive `size`-bar sections; a last, shorter one only if it is half full."""
    out = [(lo, min(lo + size, n_bars)) for lo in range(0, n_bars, size)]
    if len(out) > 1 and out[-1][1] - out[-1][0] < size / 2:
        out.pop()
    return out


def in_key(pitches: Sequence[int], key: tuple[int, str] | None) -> float:
    """Share of `pitches` inside the (natural minor or major) scale of `key`; NaN without notes or key."""
    if not pitches or key is None:
        return math.nan
    tonic, mode = key
    scale = {(tonic + d) % 12 for d in (MINOR_SCALE if mode == "minor" else MAJOR_SCALE)}
    return sum(p % 12 in scale for p in pitches) / len(pitches)


def pitched(piece: MidiPiece) -> list[int]:
    """The pitches of every note outside the drum channel."""
    return [n.pitch for n in piece.notes if n.channel != DRUM_CHANNEL]
