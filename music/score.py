"""The symbolic music every stage shares: a lead sheet (melody + chord symbols) on a tick grid.

Times are integer ticks of `TICKS_PER_BEAT` per quarter note: 12 represents straight 16ths (3 ticks),
eighth-note triplets (4), sixteenth triplets (2) and swung eighths (8 + 4) exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TICKS_PER_BEAT = 12
MODES = ("major", "minor")


def bar_ticks(numerator: int, denominator: int) -> int:
    """Length of one bar in ticks; raises ValueError for a metre the grid cannot hold exactly."""
    ticks, rem = divmod(numerator * 4 * TICKS_PER_BEAT, denominator)
    if rem or ticks <= 0:
        raise ValueError(f"time signature {numerator}/{denominator} does not fit the tick grid")
    return ticks


@dataclass(frozen=True, slots=True)
class Note:
    """One melody note. `start` and `duration` in ticks from the start of the piece."""

    pitch: int
    start: int
    duration: int
    velocity: int = 80


@dataclass(frozen=True, slots=True)
class Voicing:
    """How the source played a chord: `spread` 'close' (within an octave) or 'open', and `top`,
    the chord degree in the top voice (1, 3, 5, 7 or 9 for any extension)."""

    spread: str
    top: int


@dataclass(frozen=True, slots=True)
class Chord:
    """A chord symbol: `root` pitch class (0 = C), `quality` (a key of `music.chords.QUALITIES`, or 'N'
    for no chord), `bass` as a pitch-class interval above the root (0 = root position, 4 = first
    inversion of a major triad, ...), an optional source `voicing`; `start`/`duration` in ticks."""

    start: int
    duration: int
    root: int
    quality: str
    bass: int = 0
    voicing: Voicing | None = None


@dataclass(frozen=True, slots=True)
class TimeSignature:
    """A metre that starts at bar `bar` (0-based)."""

    bar: int
    numerator: int = 4
    denominator: int = 4

    @property
    def ticks(self) -> int:
        """Bar length in ticks."""
        return bar_ticks(self.numerator, self.denominator)


@dataclass
class Score:
    """A piece: melody notes and chords in a key whose tonic is `tonic` (pitch class), in `mode`.

    Tokens are always written relative to the tonic (as if in C); `tonic` says where the real piece
    sits, and `transposed(k)` moves it. `n_bars` bars of the given metres make up the piece.
    """

    melody: list[Note] = field(default_factory=list)
    chords: list[Chord] = field(default_factory=list)
    time_signatures: list[TimeSignature] = field(default_factory=lambda: [TimeSignature(0, 4, 4)])
    bpm: float = 90.0
    mode: str = "major"
    tonic: int = 0
    n_bars: int = 0
    title: str = ""

    def bar_starts(self) -> list[int]:
        """Start tick of every bar, plus the end tick of the piece as the last element."""
        starts, tick = [], 0
        sigs = sorted(self.time_signatures, key=lambda s: s.bar)
        for bar in range(self.n_bars):
            ts = next((s for s in reversed(sigs) if s.bar <= bar), sigs[0])
            starts.append(tick)
            tick += ts.ticks
        starts.append(tick)
        return starts

    @property
    def total_ticks(self) -> int:
        """Length of the piece in ticks (whole bars)."""
        return self.bar_starts()[-1]

    @property
    def seconds(self) -> float:
        """Length of the piece in seconds at its tempo."""
        return self.total_ticks / TICKS_PER_BEAT * 60.0 / self.bpm

    def transposed(self, semitones: int) -> Score:
        """A copy moved by `semitones` (melody pitches, chord roots and tonic)."""
        return Score(
            melody=[Note(n.pitch + semitones, n.start, n.duration, n.velocity) for n in self.melody],
            chords=[
                Chord(c.start, c.duration, (c.root + semitones) % 12, c.quality, c.bass, c.voicing)
                for c in self.chords
            ],
            time_signatures=list(self.time_signatures),
            bpm=self.bpm,
            mode=self.mode,
            tonic=(self.tonic + semitones) % 12,
            n_bars=self.n_bars,
            title=self.title,
        )
