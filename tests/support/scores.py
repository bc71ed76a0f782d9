"""Scores for tests and benchmarks."""

from __future__ import annotations

from music.score import Chord, Note, Score, TimeSignature, Voicing


def example_score(n_bars: int = 40, bpm: float = 80.0, mode: str = "minor", tonic: int = 0) -> Score:
    """A plausible lead sheet for benchmarks and tests: a ii-V-I-style loop with a simple melody."""
    bar = 48
    if mode == "major":
        prog = [(2, "min7"), (7, "dom7"), (0, "maj7"), (9, "min7")]
        scale = (0, 2, 4, 5, 7, 9, 11)
    else:
        prog = [(0, "min7"), (5, "min7"), (10, "dom7"), (3, "maj7")]
        scale = (0, 2, 3, 5, 7, 8, 10)
    chords, melody = [], []
    for b in range(n_bars):
        root, quality = prog[b % 4]
        chords.append(Chord(b * bar, bar, root, quality, 0, Voicing("open", 9) if b % 8 == 0 else None))
        for k, (pos, degree, dur) in enumerate(
            ((0, 4, 12), (18, 2, 6), (24, b % 3, 12), (36, 6 - b % 5, 10))
        ):
            if (b + k) % 3 != 2:
                melody.append(Note(60 + scale[degree % 7], b * bar + pos, dur, 76))
    score = Score(melody, chords, [TimeSignature(0, 4, 4)], bpm, mode, 0, n_bars, "")
    return score.transposed(tonic) if tonic else score
