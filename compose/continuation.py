"""Continuing a piece (the "Extend" button): the longer plan, and the earlier piece's tokens split for replay.

The generation loop replays the earlier piece's body through the grammar (so bar counting, the repetition
window and the models' context all carry on from it) and samples only the continuation: the first bars come
out exactly as they were.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from music.arrange import plan_sections
from music.form import plan_form
from music.request import TrackPlan, TrackRequest, plan_track
from music.tokens import Representation


def extended_plan(base: TrackRequest, length_s: float, rep: Representation | None = None) -> TrackPlan:
    """The plan of `base` (the original request: its seed fixes key and tempo) lengthened to about
    `length_s` seconds in whole bars; everything else (key, tempo, header, sampling) stays the same."""
    plan = plan_track(base, rep)
    bar_s = plan.seconds / plan.n_bars
    n_bars = max(plan.n_bars + 1, round(length_s / bar_s))
    request = dataclasses.replace(base, length_s=n_bars * bar_s)
    # The written bars keep their plan; the new ones follow the longer track's form, whose returns point
    # back into the music already there (the loop and the theme come back in the extension too).
    longer = plan_form(plan_sections(n_bars, edges=not base.radio), plan.density, base.seed)
    form = plan.form[: plan.n_bars] + longer[plan.n_bars :]
    return dataclasses.replace(plan, request=request, n_bars=n_bars, form=form)


def split_tokens(tokens: Sequence[int], plan: TrackPlan, rep: Representation) -> tuple[list[int], list[int]]:
    """(header, body) of a stored track's tokens, the final EOS dropped from the body."""
    n = len(plan.header)
    header, body = list(tokens[:n]), list(tokens[n:])
    eos = rep.vocab.id("EOS")
    while body and body[-1] == eos:
        body.pop()
    return header, body
