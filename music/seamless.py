"""A seamless loop of a track's main section: 4 or 8 bars that play round and round without a click or a gap.

The loop's bars are arranged three times in a row and rendered, mixed and mastered as one piece, so the
second time round starts with the tails (reverb, held notes, the compressor's state) of the first time's end:
what a loop playing round hears at its start. That second time is the loop. Its last sample is followed in
the render by the third time's first, so the first `CROSSFADE_S` of the loop fade from the third time's start
into the second's: the seam continues sample-exactly, and whatever is not periodic (the tape wobble, the
limiter) changes there smoothly instead of in one step. The ambience bed is made one loop long and repeated,
so it is periodic too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from music import ambience as amb
from music import buses, synth
from music.arrange import ArrangedNote, Arrangement
from music.drums import load_library
from music.errors import MusicError
from music.master import master
from music.render_config import SAMPLE_RATE, RenderConfig, check_soundfont
from music.request import TrackPlan
from music.score import Score
from music.track import arrange_track, bed_gain, drum_gain, track_title

LOOP_BARS = (4, 8)
CROSSFADE_S = 0.03
TIMES = 3  # the render plays the loop this many times: the first warms the tails, the third follows the seam


@dataclass
class Loop:
    """A loop: its audio (2, n) float32 at `SAMPLE_RATE`, mastered; its arrangement (the bars once); where
    it starts in the track (bar)."""

    audio: np.ndarray
    arrangement: Arrangement
    title: str
    first_bar: int


def main_bars(arrangement: Arrangement, bars: int) -> int:
    """The first bar of a `bars`-bar loop in the track's main section: the longest 'main' section's start,
    moved earlier when the section is shorter than the loop; MusicError when the track is shorter."""
    if bars not in LOOP_BARS:
        raise MusicError(f"a loop is {' or '.join(map(str, LOOP_BARS))} bars long, not {bars}")
    if arrangement.n_bars < bars:
        raise MusicError(f"the track has {arrangement.n_bars} bars, too few for a {bars}-bar loop")
    mains = [s for s in arrangement.sections if s[0] == "main"] or [("all", 0, arrangement.n_bars)]
    _, start, end = max(mains, key=lambda s: s[2] - s[1])
    return max(0, min(start, end - bars, arrangement.n_bars - bars))


def loop_arrangement(arrangement: Arrangement, first: int, bars: int, times: int = 1) -> Arrangement:
    """Bars `first` .. `first + bars` of `arrangement` played `times` times, with their notes (those that
    start there; each keeps its length, so what rings past the loop's end rings into its next time)."""
    starts = arrangement.bar_starts()
    begin, end = starts[first], starts[first + bars]
    span = end - begin
    notes = [
        ArrangedNote(n.part, n.pitch, n.start - begin + k * span, n.duration, n.velocity)
        for k in range(times)
        for n in arrangement.notes
        if begin <= n.start < end
    ]
    sig = next(ts for ts in reversed(arrangement.time_signatures) if ts[0] <= first)
    return replace(
        arrangement,
        notes=notes,
        bar_lengths=arrangement.bar_lengths[first : first + bars] * times,
        time_signatures=[(0, sig[1], sig[2])],
        sections=[("main", 0, bars * times)],
        fade_bars=0,
        ring_ticks=0,
        meta={},
    )


def render_loop(score: Score, plan: TrackPlan, bars: int, render: RenderConfig | None = None) -> Loop:
    """A `bars`-bar seamless loop of the main section of the track `render_track` makes of `score`, `plan`
    (blocking; run it in a worker).

    Returns:
        The loop, mastered like a track; MusicError when the track is shorter than `bars`.
    """
    render = render or RenderConfig()
    title = score.title or track_title(plan.mood.name, plan.request.seed)
    arrangement, _ = arrange_track(score, plan, title, load_library(render.groove_dir, render.cache_dir))
    first = main_bars(arrangement, bars)
    played = loop_arrangement(arrangement, first, bars, TIMES)
    once = loop_arrangement(arrangement, first, bars)
    n = int(round(once.seconds * SAMPLE_RATE))
    mix = _mix_times(played, plan, Path(render.soundfont), n)
    mastered, _, _ = master(mix, SAMPLE_RATE)
    return Loop(seam(mastered, n), once, title, first)


def _mix_times(played: Arrangement, plan: TrackPlan, soundfont: Path, n: int) -> np.ndarray:
    """The buses of `played` (the loop `TIMES` times) mixed over a bed `n` samples long, repeated."""
    check_soundfont(soundfont)
    sound, seed = plan.mood.sound or {}, plan.request.seed
    seconds, in_process = TIMES * n / SAMPLE_RATE, synth.available()
    jobs = [
        buses.bus_pool(bus).submit(buses.render_bus, played, bus, soundfont, seconds, sound, seed, in_process)
        for bus in ("music", "drums")
    ]
    music, drums = (job.result() for job in jobs)
    bed = np.tile(amb.ambience(n, SAMPLE_RATE, sound.get("ambience"), 1.0, seed), TIMES)
    mix = bed * bed_gain(music, drums)
    if music.wet is not None:
        mix += music.wet
    if drums.wet is not None:
        mix += drums.wet * drum_gain(music, drums)
    return mix


def seam(audio: np.ndarray, n: int) -> np.ndarray:
    """The second of the `TIMES` loops in `audio` (each `n` samples), its start faded in from the third's
    start, which is what follows its end in `audio`."""
    second, third = audio[:, n : 2 * n].copy(), audio[:, 2 * n : 3 * n]
    k = min(int(CROSSFADE_S * SAMPLE_RATE), n)
    ramp = np.linspace(0.0, 1.0, k, endpoint=False, dtype=np.float32)
    second[:, :k] = third[:, :k] * (1 - ramp) + second[:, :k] * ramp
    return second
