"""The steps both readers (MIDI and MusicXML) share to turn what a file holds into a `Score` on the grid.

Metres checked against the representation's, bars counted to cover the music, the melody made one line of
durations from the duration grid, chord symbols merged, and leading empty bars trimmed. They live apart from
either reader so that the two build their scores in exactly the same way.
"""

from __future__ import annotations

import bisect

from music.chords import NO_CHORD
from music.errors import CorpusFileError
from music.parse_info import ParseInfo
from music.score import Chord, Note, Score, TimeSignature, bar_ticks
from music.tokens import DURATIONS, TIME_SIGNATURES

DEFAULT_BPM = 120.0  # the MIDI and MusicXML default when a file has no tempo mark
MAX_BARS = 2000
MIN_MELODY_NOTES = 8
MELODY_NAMES = ("melody", "lead", "vocal", "voice", "singer")  # what a melody track or part is called


def metres(first: tuple[int, int], later: list[tuple[int, int, int]]) -> list[TimeSignature]:
    """The time signatures of a piece: `first` from bar 0, then each (tick, numerator, denominator) change
    that falls on a bar line of the metre before it (one off the bar line is ignored).

    CorpusFileError for a metre the representation cannot encode.
    """
    if first not in TIME_SIGNATURES:
        raise CorpusFileError(f"time signature {first[0]}/{first[1]} is not supported")
    sigs = [TimeSignature(0, *first)]
    bar, bar_start, length = 0, 0, bar_ticks(*first)
    for tick, n, d in later:
        if (n, d) == (sigs[-1].numerator, sigs[-1].denominator):
            continue
        whole, rem = divmod(tick - bar_start, length)
        if rem:  # a change off the bar line: keep the metre we have
            continue
        if (n, d) not in TIME_SIGNATURES:
            raise CorpusFileError(f"time signature {n}/{d} is not supported")
        bar, bar_start = bar + whole, tick
        length = bar_ticks(n, d)
        if sigs[-1].bar == bar:
            sigs[-1] = TimeSignature(bar, n, d)
        else:
            sigs.append(TimeSignature(bar, n, d))
    return sigs


def bars_to_cover(sigs: list[TimeSignature], end: int) -> int:
    """Whole bars (at least one) under `sigs` that reach tick `end`; counting stops just past `MAX_BARS`."""
    bars, tick = 0, 0
    while tick < end:
        ts = next(s for s in reversed(sigs) if s.bar <= bars)
        tick += ts.ticks
        bars += 1
        if bars > MAX_BARS:
            break
    return max(bars, 1)


def snap_duration(ticks: int, limit: int | None = None) -> int:
    """The duration-grid value nearest `ticks` (never above `limit`, when given)."""
    i = bisect.bisect_left(DURATIONS, ticks)
    cands = [DURATIONS[j] for j in (i - 1, i) if 0 <= j < len(DURATIONS)]
    best = min(cands, key=lambda d: (abs(d - ticks), d))
    if limit is not None and best > limit:
        j = bisect.bisect_right(DURATIONS, limit) - 1
        best = DURATIONS[max(j, 0)]
    return best


def legato_melody(by_onset: dict[int, tuple[int, int, int]], info: ParseInfo) -> list[Note]:
    """Melody notes from {onset: (pitch, duration, velocity)}: each cut where the next begins and snapped to
    the duration grid (counted in `info.durations_snapped`), so that the line encodes exactly."""
    onsets = sorted(by_onset)
    out = []
    for i, start in enumerate(onsets):
        pitch, dur, vel = by_onset[start]
        limit = onsets[i + 1] - start if i + 1 < len(onsets) else None
        snapped = snap_duration(min(dur, limit) if limit else dur, limit)
        if snapped != dur:
            info.durations_snapped += 1
        out.append(Note(pitch, start, snapped, max(1, min(127, vel))))
    return out


def merge_chords(chords: list[Chord]) -> list[Chord]:
    """Sorted, one chord per onset (the last wins), repeated symbols merged into one."""
    by_start: dict[int, Chord] = {}
    for c in sorted(chords, key=lambda c: c.start):
        by_start[c.start] = c
    out: list[Chord] = []
    for c in sorted(by_start.values(), key=lambda c: c.start):
        if out and (out[-1].root, out[-1].quality, out[-1].bass, out[-1].voicing) == (
            c.root,
            c.quality,
            c.bass,
            c.voicing,
        ):
            prev = out[-1]
            out[-1] = Chord(
                prev.start,
                c.start + c.duration - prev.start,
                prev.root,
                prev.quality,
                prev.bass,
                prev.voicing,
            )
        else:
            out.append(c)
    return out


def trim_leading_bars(score: Score) -> Score:
    """Drop leading empty bars (pickup silence, count-ins) so a piece starts where its music does.

    CorpusFileError when the melody has too few notes to learn from.
    """
    if len(score.melody) < MIN_MELODY_NOTES:
        raise CorpusFileError(f"melody has fewer than {MIN_MELODY_NOTES} notes")
    starts = score.bar_starts()
    first = min([n.start for n in score.melody] + [c.start for c in score.chords if c.quality != NO_CHORD])
    bar = max(bisect.bisect_right(starts, first) - 1, 0)
    if bar == 0:
        return score
    # Only whole bars of one metre can be removed without moving the bar lines of later metres.
    if any(0 < s.bar <= bar for s in score.time_signatures):
        return score
    shift = starts[bar]
    score.melody = [Note(n.pitch, n.start - shift, n.duration, n.velocity) for n in score.melody]
    chords = []
    for c in score.chords:
        end = c.start + c.duration
        if end <= shift:
            continue
        start = max(c.start - shift, 0)
        chords.append(Chord(start, end - shift - start, c.root, c.quality, c.bass, c.voicing))
    score.chords = chords
    score.time_signatures = [
        TimeSignature(max(s.bar - bar, 0), s.numerator, s.denominator) for s in score.time_signatures
    ]
    score.n_bars -= bar
    return score
