"""A finished track's plan again from its stored facts (the Stems and Loop buttons render from it)."""

from __future__ import annotations

import pytest

from compose.continuation import extended_plan
from compose.exports import replay_plan
from music.arrange import key_name
from music.render_config import SAMPLE_RATE
from music.request import TrackRequest, plan_track


def stored_facts(plan) -> TrackRequest:
    """What the database keeps of a made track: resolved mood, length to the sample, tempo, key, seed."""
    length = round(plan.length_s * SAMPLE_RATE) / SAMPLE_RATE
    return TrackRequest(length, plan.mood.name, plan.request.seed, plan.bpm, key_name(plan.tonic, plan.mode))


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("length", [15.0, 20.0, 47.0, 120.0])
def test_the_stored_facts_give_the_tracks_plan_again(seed, length):
    plan = plan_track(TrackRequest(length, "random", seed))
    again = replay_plan(stored_facts(plan))
    assert (again.n_bars, again.bpm, again.tonic, again.mode, again.mood.name) == (
        plan.n_bars,
        plan.bpm,
        plan.tonic,
        plan.mode,
        plan.mood.name,
    )
    assert round(again.length_s * SAMPLE_RATE) == round(plan.length_s * SAMPLE_RATE)


@pytest.mark.parametrize("seed", range(6))
def test_an_extended_tracks_facts_give_its_plan_again(seed):
    plan = extended_plan(TrackRequest(30.0, "rainy", seed), 90.0)
    again = replay_plan(stored_facts(plan))
    assert (again.n_bars, again.bpm, again.tonic) == (plan.n_bars, plan.bpm, plan.tonic)
