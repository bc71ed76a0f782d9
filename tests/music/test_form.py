"""The planned form: loops and returning bars point back, intros are short, density follows the mood."""

from __future__ import annotations

import statistics

import pytest

from music.arrange import plan_sections
from music.form import LOOP_BARS, plan_form
from music.request import TrackRequest, plan_track


@pytest.mark.parametrize("n_bars", [4, 5, 8, 12, 18, 20, 32, 64, 150])
def test_every_bar_is_planned_and_copies_only_look_back(n_bars):
    form = plan_form(plan_sections(n_bars), "mid", seed=1)
    assert len(form) == n_bars
    for b, bar in enumerate(form):
        for src in (bar.chords_from, bar.melody_from):
            assert src is None or 0 <= src < b
        assert 0 <= bar.notes <= 8
    last = form[-1]
    assert last.chords_from is None and last.melody_from is None  # the ending is free to land on the tonic


@pytest.mark.parametrize("seconds", [15, 30, 60, 120, 600])
def test_melody_enters_within_four_bars_and_things_return(seconds):
    plan = plan_track(TrackRequest(seconds, "rainy", 4))
    form = plan.form
    assert any(bar.notes > 0 for bar in form[:4])
    if plan.n_bars >= 2 * LOOP_BARS + 4:
        assert any(bar.melody_from is not None for bar in form)  # the motif comes back
        assert any(bar.chords_from is not None for bar in form)  # and so does the chord loop


def test_density_follows_the_mood():
    def mean_notes(mood):
        return statistics.mean(
            b.notes for s in range(20) for b in plan_track(TrackRequest(120, mood, s)).form
        )

    assert mean_notes("rainy") < mean_notes("sunny") or mean_notes("rainy") < mean_notes("study")


def test_same_seed_same_form():
    assert plan_form(plan_sections(40), "low", 3) == plan_form(plan_sections(40), "low", 3)
    assert plan_form(plan_sections(40), "low", 3) != plan_form(plan_sections(40), "low", 4)
