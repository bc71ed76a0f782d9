"""Track requests and plans: moods steer the music, lengths become whole bars, seeds fix every choice."""

import pytest

from music.errors import MoodError
from music.request import TrackRequest, load_moods, mood_names, plan_track
from music.score import TICKS_PER_BEAT, bar_ticks


def test_every_mood_plans_a_track_of_the_requested_length():
    for mood in mood_names():
        plan = plan_track(TrackRequest(length_s=120, mood=mood, seed=3))
        assert abs(plan.seconds - 120) / 120 < 0.02, mood
        assert plan.header[0] == "BOS" and plan.header[1] == f"MODE_{plan.mode}"


def test_moods_change_the_music_itself():
    moods = load_moods()
    assert moods["rainy"].mode == "minor" and moods["night"].mode == "minor"
    assert moods["sunny"].mode == "major"
    assert max(moods["rainy"].tempo) < min(moods["sunny"].tempo)
    rainy = plan_track(TrackRequest(60, "rainy", 1))
    sunny = plan_track(TrackRequest(60, "sunny", 1))
    assert rainy.bpm < sunny.bpm
    assert rainy.header != sunny.header


def test_the_seed_fixes_every_choice_and_random_resolves_to_a_real_mood():
    a = plan_track(TrackRequest(90, "random", 42))
    b = plan_track(TrackRequest(90, "random", 42))
    assert a == b
    assert a.mood.name in load_moods()
    assert {plan_track(TrackRequest(90, "random", s)).mood.name for s in range(40)} == set(load_moods())


def test_explicit_tempo_is_kept_and_bars_are_whole():
    plan = plan_track(TrackRequest(30, "chill", 5, bpm=100))
    assert plan.bpm == 100
    beats = plan.n_bars * bar_ticks(*plan.time_signature) / TICKS_PER_BEAT
    assert plan.seconds == pytest.approx(beats * 60 / 100)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"length_s": 60, "mood": "jazzy", "seed": 1}, MoodError, "unknown mood 'jazzy'"),
        ({"length_s": -5, "mood": "chill", "seed": 1}, ValueError, "positive"),
        ({"length_s": float("nan"), "mood": "chill", "seed": 1}, ValueError, "positive"),
        ({"length_s": 60, "mood": "chill", "seed": 1, "bpm": 500}, ValueError, "between 40 and 200"),
    ],
)
def test_bad_requests_say_what_is_wrong(kwargs, error, message):
    with pytest.raises(error, match=message):
        TrackRequest(**kwargs)


def test_a_malformed_mood_file_names_the_mood(tmp_path):
    bad = tmp_path / "moods.toml"
    bad.write_text('[foggy]\nmode = "minor"\n')
    with pytest.raises(MoodError, match="foggy"):
        load_moods(bad)
