"""A finished track again, from its stored tokens: its stems or a seamless loop (the Stems and Loop buttons,
`lofi generate --stems/--loop`). The tokens and the track's facts fix every musical decision, so the render
is the track's own (`replay_plan`); nothing is generated."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from music.request import TrackPlan, TrackRequest, plan_track
from music.tokens import Representation

if TYPE_CHECKING:
    from music.producer_files import ExportFiles
    from music.render_config import RenderConfig
    from music.score import Score


def replay_plan(facts: TrackRequest, rep: Representation | None = None) -> TrackPlan:
    """The plan a finished track followed, from its facts: its resolved mood, seed, actual tempo, key and
    length (`TrackRequest(track.length_s, track.mood, track.seed, track.bpm, track.key)`).

    The length was stored to the sample, so whole bars that filled it exactly may count one short by
    `plan_track`'s rounding (and an extended track's tempo was its base's): the bar count is taken as the
    nearest whole number when the length is within a thousandth of a bar of it.
    """
    plan = plan_track(facts, rep)
    bar_s = plan.seconds / plan.n_bars
    bars = facts.length_s / bar_s
    if abs(bars - round(bars)) < 1e-3:
        plan = dataclasses.replace(plan, n_bars=max(int(round(bars)), 1))
    return plan


def replayed_score(
    tokens: Sequence[int], facts: TrackRequest, rep: Representation
) -> tuple[Score, TrackPlan]:
    """The score the track `tokens` and `facts` made decodes to, and the plan it followed."""
    plan = replay_plan(facts, rep)
    return rep.decode(list(tokens), tonic=plan.tonic, bpm=plan.bpm), plan


def render_stems_files(
    tokens: Sequence[int],
    facts: TrackRequest,
    out_dir: Path,
    render: RenderConfig,
    size_limit: int | None,
    rep: Representation,
) -> ExportFiles:
    """The stems of the track `tokens` and `facts` made, written into `out_dir` (blocking)."""
    from music.producer_files import write_stems
    from music.stems import render_stems

    score, plan = replayed_score(tokens, facts, rep)
    return write_stems(render_stems(score, plan, render), plan.bpm, Path(out_dir), size_limit)


def render_loop_files(
    tokens: Sequence[int],
    facts: TrackRequest,
    bars: int,
    out_dir: Path,
    render: RenderConfig,
    size_limit: int | None,
    rep: Representation,
) -> ExportFiles:
    """A `bars`-bar seamless loop of the track `tokens` and `facts` made, written into `out_dir` (blocking)."""
    from music.producer_files import write_loop
    from music.seamless import render_loop

    score, plan = replayed_score(tokens, facts, rep)
    return write_loop(render_loop(score, plan, bars, render), plan.bpm, Path(out_dir), size_limit)
