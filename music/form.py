"""The form of a track: which bars are written fresh, which bring back earlier material, and how many melody
notes each bar gets.

LoFi is loop music: a chord loop of `LOOP_BARS` bars under a melody whose opening motif returns. The plan
lays that out bar by bar over the arrangement's sections (intro, main, breakdown, main, outro). A bar can
take its chords from an earlier bar (the loop comes back, the melody above it is new), or its chords and
melody (the motif or the theme comes back); everything else, and every variation, is written by the models,
conditioned on what came before and on the planned notes per bar. The sampler enforces the copies; the
models write the notes.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

LOOP_BARS = 4
# Mean melody notes per bar for each mood density (the corpus's own median is about 3 per bar).
DENSITY_NOTES = {"low": 3.5, "mid": 4.5, "high": 5.8}
# Share of bars in a phrase that rest (no melody note): real songs breathe at phrase ends.
REST_CHANCE = (0.1, 0.15, 0.3, 0.55)  # by position in the 4-bar phrase
SECTION_DENSITY = {"intro": 0.0, "main": 1.0, "breakdown": 0.7, "outro": 0.5}


@dataclass(frozen=True)
class BarPlan:
    """What one bar is: its section, planned melody notes, and where its material comes from.

    `chords_from`: copy the chords of that earlier bar; `melody_from`: copy that earlier bar whole
    (chords and melody). None: the models write it. `tonic`: the bar opens on the tonic chord.
    """

    section: str
    notes: int
    chords_from: int | None = None
    melody_from: int | None = None
    tonic: bool = False  # opens on the tonic chord (the first bar, the loop's first bar, the last bar)


def _notes(rng: random.Random, mean: float, phrase_pos: int, rests: float = 1.0) -> int:
    """A Poisson-like draw of notes for one bar, with rests at phrase ends (`rests` scales their chance)."""
    if mean <= 0 or rng.random() < rests * REST_CHANCE[phrase_pos % len(REST_CHANCE)]:
        return 0
    # Knuth's Poisson draw, at least one note in a bar that does not rest.
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            break
        k += 1
    return max(1, min(k, 8))


def plan_form(sections: list[tuple[str, int, int]], density: str, seed: int) -> tuple[BarPlan, ...]:
    """Bar plans for the arrangement `sections` ((name, first bar, end bar), covering the track).

    Args:
        sections: from the arranger, so the composition's sections are the ones the listener hears.
        density: the mood's density ('low', 'mid', 'high').
        seed: the track's seed (the same seed gives the same form).
    Returns:
        One `BarPlan` per bar.
    """
    rng = random.Random(f"form:{seed}")
    # Tracks differ as songs do: some breathe more, some are busier, some loop more strictly.
    mean = DENSITY_NOTES[density] * rng.uniform(0.75, 1.3)
    rests = rng.uniform(0.4, 1.8)
    loopiness = rng.uniform(0.3, 1.0)
    n_bars = max(hi for _, _, hi in sections)
    bars: list[BarPlan | None] = [None] * n_bars
    loop_start: int | None = None  # first bar of the loop (and of the theme)
    mains = 0
    for name, lo, hi in sections:
        scale = SECTION_DENSITY.get(name, 1.0)
        if name == "main":
            mains += 1
        for b in range(lo, hi):
            i = b - lo
            pos = i % LOOP_BARS
            if name == "intro":
                # Chords only, then the melody enters in the intro's second half (never a long silent intro).
                notes = 0 if i < (hi - lo) // 2 else max(1, round(mean * 0.5))
                bars[b] = BarPlan(name, notes, tonic=b == 0)
                continue
            if loop_start is None:
                loop_start = b  # the first bar of the first main: the loop and the theme are written here
            src = loop_start + pos
            notes = _notes(rng, mean * scale, pos, rests)
            phrase = i // LOOP_BARS
            if b < loop_start + LOOP_BARS:
                # The loop and the theme, as the models write them; the loop starts at home.
                bars[b] = BarPlan(name, notes, tonic=b == loop_start)
            elif name == "main" and pos < 2 and (phrase % 2 == 1 or (phrase == 0 and mains > 1)):
                # The motif (the theme's first two bars) returns at the top of every other phrase, and the
                # theme at the top of the second main.
                bars[b] = BarPlan(name, bars[src].notes, melody_from=src)
            elif ((name == "main" and phrase % 2 == 1) or name == "outro") and rng.random() < loopiness:
                bars[b] = BarPlan(name, notes, chords_from=src)  # the loop under a new answer
            else:
                bars[b] = BarPlan(name, notes)  # development: the models go on from what came before
    last = bars[-1]
    if last is not None and last.section != "intro":
        bars[-1] = BarPlan(last.section, min(last.notes, 2), tonic=True)  # the final bar: home, freely voiced
    return tuple(b if b is not None else BarPlan("main", round(mean)) for b in bars)
