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
DENSITY_NOTES = {"low": 2.6, "mid": 3.6, "high": 5.0}
# Share of bars in a phrase that rest (no melody note): real songs breathe at phrase ends.
REST_CHANCE = (0.0, 0.08, 0.15, 0.45)  # by position in the 4-bar phrase
SECTION_DENSITY = {"intro": 0.0, "main": 1.0, "breakdown": 0.7, "outro": 0.5}


@dataclass(frozen=True)
class BarPlan:
    """What one bar is: its section, planned melody notes, and where its material comes from.

    `chords_from`: copy the chords of that earlier bar; `melody_from`: copy that earlier bar whole
    (chords and melody). None: the models write it.
    """

    section: str
    notes: int
    chords_from: int | None = None
    melody_from: int | None = None


def _notes(rng: random.Random, mean: float, phrase_pos: int) -> int:
    """A Poisson-like draw of notes for one bar, with rests at phrase ends."""
    if mean <= 0 or rng.random() < REST_CHANCE[phrase_pos % len(REST_CHANCE)]:
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
    mean = DENSITY_NOTES[density]
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
                bars[b] = BarPlan(name, notes)
                continue
            if loop_start is None:
                loop_start = b  # the first bar of the first main: the loop and the theme are written here
            src = loop_start + pos
            notes = _notes(rng, mean * scale, pos)
            if b < loop_start + LOOP_BARS:
                bars[b] = BarPlan(name, notes)
            elif name == "main" and i < LOOP_BARS and mains > 1 and pos < 2:
                # The theme returns at the top of the second main: its first two bars as written.
                bars[b] = BarPlan(name, bars[src].notes, melody_from=src)
            elif name == "main" and pos == 0 and (i // LOOP_BARS) % 2 == 1:
                # Every other loop opens with the motif again; the rest of the loop is a new answer.
                bars[b] = BarPlan(name, bars[src].notes, melody_from=src)
            else:
                bars[b] = BarPlan(name, notes, chords_from=src)
    last = bars[-1]
    if last is not None and last.section != "intro":
        bars[-1] = BarPlan(last.section, min(last.notes, 2))  # the final bar ends on the tonic, freely voiced
    return tuple(b if b is not None else BarPlan("main", round(mean)) for b in bars)
