"""The form of a track: which bars are written fresh, which bring back earlier material, and how many melody
notes each bar gets.

LoFi is loop music: a chord loop of `LOOP_BARS` bars under a melody whose opening motif returns. The plan
lays that out bar by bar over the arrangement's sections (intro, main, breakdown, main, outro). A bar can
take its chords from an earlier bar (the loop comes back, the melody above it is new), or its chords and
melody (the motif or the theme comes back); everything else, and every variation, is written by the models,
conditioned on what came before and on the planned notes per bar. The sampler enforces the copies; the
models write the notes.

A track whose main sections are longer than `MAX_MAIN_BARS` (over two minutes) is played in parts of
`PART_BARS` bars, as songs alternate verse and chorus: each part plays one material (a loop and a theme of
its own, at a density of its own), the second part brings a contrasting one, a new one comes every third
part after that, and the others return to the material heard least recently, its theme first. Within a
part the motif returns note for note 8 bars after the theme, and varied (its opening, the models going on
from there) at the top of the other phrases. With one material for five or ten minutes (the form of shorter
tracks), the motif came back every other phrase, 8, 16, 24 and 32 bars apart note for note: 10-minute
tracks copied the bar 16 bars back in 0.17 of their melody bars, above real songs' 90th percentile (0.14).
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
# A main section longer than this is played in parts. A two-minute track's mains have at most 24 bars, a
# two-minute radio piece's (no intro or outro) 28: tracks of two minutes or less keep the form they had.
MAX_MAIN_BARS = 28
PART_BARS = 16  # two 8-bar phrase groups, as a verse or a chorus
NEW_MATERIAL_EVERY = 3  # parts: after the first two materials, a new one every third part
# A contrasting material is sparser or busier than the first by one of these factors (drawn per material).
MATERIAL_DENSITY = ((0.8, 0.9), (1.15, 1.35))
# Which bars of a part bring back which bar of its material's first part, and how much of it (bar of the
# part -> (bar of the material, share of the bar copied)): the motif (the theme's first two bars) note for
# note at the top of the third phrase, 8 bars after the theme, and its opening (the first half of each bar,
# the models going on from there) at the top of the second and fourth; in a returning part, the whole theme
# at the top. Real songs copy a bar note for note mostly 8 bars on (median 0.06 of their bars; 4 bars 0.02,
# 16 bars 0.01, at 6 or 12 bars hardly ever) and bring phrases back varied far more often.
HALF = 0.5
FRESH_RETURNS = {4: (0, HALF), 5: (1, HALF), 8: (0, 1.0), 9: (1, 1.0), 12: (0, HALF), 13: (1, HALF)}
RETURNING_RETURNS = {0: (0, 1.0), 1: (1, 1.0), 2: (2, 1.0), 3: (3, 1.0)} | {
    i: v for i, v in FRESH_RETURNS.items() if i >= LOOP_BARS
}
VARIED = 3  # half the time, a returning theme's last bar is a new answer over its chords


@dataclass(frozen=True)
class BarPlan:
    """What one bar is: its section, planned melody notes, and where its material comes from.

    `chords_from`: copy the chords of that earlier bar; `melody_from`: copy that earlier bar whole
    (chords and melody), or with `copy_share` below 1 only what starts in that share of the bar, the
    models going on from there (a varied return). None: the models write it. `tonic`: the bar opens on
    the tonic chord.
    """

    section: str
    notes: int
    chords_from: int | None = None
    melody_from: int | None = None
    tonic: bool = False  # opens on the tonic chord (the first bar, the loop's first bar, the last bar)
    copy_share: float = 1.0


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
    # The ranges were widened to the real songs' spread (bench/bench_music.py, 2026-12-05): with narrower ones
    # every track sat near the middle, no track began with its melody or hardly looped, and the feature
    # distributions overlapped the real ones' less (mean 0.69 over 48 tracks of the same models; 0.73 with these).
    mean = DENSITY_NOTES[density] * rng.uniform(0.7, 1.6)
    rests = rng.uniform(0.0, 2.4)
    loopiness = rng.uniform(0.0, 1.0)
    quiet = rng.random()  # how much of the intro's first half is chords only, before the melody enters
    n_bars = max(hi for _, _, hi in sections)
    if any(name == "main" and hi - lo > MAX_MAIN_BARS for name, lo, hi in sections):
        return _finish(_plan_parts(sections, seed, rng, mean, rests, loopiness, quiet), mean)
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
                bars[b] = _intro_bar(i, hi - lo, mean, quiet, first=b == 0)
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
    return _finish(bars, mean)


def _intro_bar(i: int, length: int, mean: float, quiet: float, first: bool) -> BarPlan:
    """Bar `i` of an intro of `length` bars: chords only for the `quiet` share of its first half, then the
    melody enters, softly (never a long silent intro; some tracks open on their melody, as many songs do)."""
    notes = 0 if i < round(quiet * (length // 2)) else max(1, round(mean * 0.5))
    return BarPlan("intro", notes, tonic=first)


def _finish(bars: list[BarPlan | None], mean: float) -> tuple[BarPlan, ...]:
    """The planned bars with the final bar sent home, freely voiced."""
    last = bars[-1]
    if last is not None and last.section != "intro":
        bars[-1] = BarPlan(last.section, min(last.notes, 2), tonic=True)
    return tuple(b if b is not None else BarPlan("main", round(mean)) for b in bars)


def split_parts(sections: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """`sections` with each main longer than `MAX_MAIN_BARS` cut into parts of `PART_BARS` bars (a last one
    shorter than half that joins the part before it)."""
    out = []
    for name, lo, hi in sections:
        if name != "main" or hi - lo <= MAX_MAIN_BARS:
            out.append((name, lo, hi))
            continue
        cuts = list(range(lo, hi, PART_BARS))
        if hi - cuts[-1] < PART_BARS // 2:
            cuts.pop()
        out += [(name, a, b) for a, b in zip(cuts, [*cuts[1:], hi], strict=True)]
    return out


@dataclass
class _Material:
    """A loop and a theme: written at `start` (their `LOOP_BARS` bars), played at `scale` times the density."""

    start: int
    scale: float
    heard: int  # the index of the part that played it last


def _plan_parts(
    sections: list[tuple[str, int, int]],
    seed: int,
    rng: random.Random,
    mean: float,
    rests: float,
    loopiness: float,
    quiet: float,
) -> list[BarPlan | None]:
    """The bars of a long track, its mains in parts, each part playing one material (see the module doc).

    A material's first part writes its loop and theme in its first phrase; the theme and its motif come
    back where `FRESH_RETURNS` and `RETURNING_RETURNS` put them (a returning part's bars `VARIED` half the
    time answered anew). The other bars of odd phrases play the material's loop under new answers (as often
    as the track's `loopiness`); the rest is written fresh. Breakdowns are written fresh; the outro plays
    the first material's loop. `rng` draws the notes as in short tracks; the layout has a generator of its
    own.
    """
    layout = random.Random(f"form-parts:{seed}")  # its own draws, so the notes' generator stays as it was
    n_bars = max(hi for _, _, hi in sections)
    bars: list[BarPlan | None] = [None] * n_bars
    materials: list[_Material] = []
    parts = 0  # main parts so far
    for name, lo, hi in split_parts(sections):
        scale = SECTION_DENSITY.get(name, 1.0)
        material: _Material | None = None
        returns: dict[int, tuple[int, float]] = {}
        if name == "main":
            if parts < 2 or (parts - 1) % NEW_MATERIAL_EVERY == 0:
                factor = layout.uniform(*MATERIAL_DENSITY[layout.random() < 0.5]) if materials else 1.0
                material = _Material(lo, factor, parts)
                materials.append(material)
                returns = FRESH_RETURNS
            else:  # the one heard least recently, never the one just played
                material = min((m for m in materials if m.heard < parts - 1), key=lambda m: m.heard)
                material.heard = parts
                returns = dict(RETURNING_RETURNS)
                if layout.random() < 0.5:
                    del returns[VARIED]
            scale *= material.scale
            parts += 1
        elif name == "outro" and materials:
            material = materials[0]
        for b in range(lo, hi):
            i = b - lo
            pos, phrase = i % LOOP_BARS, i // LOOP_BARS
            if name == "intro":
                bars[b] = _intro_bar(i, hi - lo, mean, quiet, first=b == 0)
                continue
            notes = _notes(rng, mean * scale, pos, rests)
            if material is None:  # a breakdown (or an outro before any main): developed freely
                bars[b] = BarPlan(name, notes)
                continue
            if material.start == lo and phrase == 0:
                # The loop and the theme, as the models write them; the first material's loop starts at home.
                bars[b] = BarPlan(name, notes, tonic=b == materials[0].start)
            elif i in returns:
                src, share = material.start + returns[i][0], returns[i][1]
                # The theme, or its motif, returns (note for note, or its opening, varied)
                bars[b] = BarPlan(name, bars[src].notes, melody_from=src, copy_share=share)
            elif name == "main" and i == VARIED and material.start != lo:
                bars[b] = BarPlan(name, notes, chords_from=material.start + i)  # the theme with a new ending
            elif (phrase % 4 == 3 or name == "outro") and rng.random() < loopiness:
                src = material.start + pos
                bars[b] = BarPlan(name, notes, chords_from=src)  # the loop under a new answer
            else:
                bars[b] = BarPlan(name, notes)  # development: the models go on from what came before
    return bars
