"""Track requests and plans: moods steer the music, lengths become whole bars, seeds fix every choice."""

import pytest

from music.errors import KeyNameError, MoodError
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
        (
            {"length_s": 60, "mood": "chill", "seed": 1, "key": "H minor"},
            KeyNameError,
            "'H minor' is not a key",
        ),
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


def test_an_asked_key_is_the_planned_key_and_changes_nothing_else():
    drawn = plan_track(TrackRequest(60, "rainy", 4))
    keyed = plan_track(TrackRequest(60, "rainy", 4, key="Eb major"))
    assert (keyed.tonic, keyed.mode) == (3, "major")  # the mood is minor: the key's own mode wins
    assert keyed.header[1] == "MODE_major"  # the models are asked to write in major
    assert keyed.header[2:] == drawn.header[2:]
    for same in ("bpm", "n_bars", "form", "mood", "temperature"):
        assert getattr(keyed, same) == getattr(drawn, same), same


def test_a_key_without_a_mode_takes_the_moods_mode():
    rainy, sunny = (plan_track(TrackRequest(60, mood, 1, key="f#")) for mood in ("rainy", "sunny"))
    assert (rainy.tonic, rainy.mode) == (6, "minor") and (sunny.tonic, sunny.mode) == (6, "major")
    random_mood = plan_track(TrackRequest(60, "random", 9, key="D"))
    assert (random_mood.tonic, random_mood.mode) == (2, random_mood.mood.mode)


def test_every_key_is_planned_as_asked():
    for tonic in range(12):
        for mode in ("major", "minor"):
            name = f"{('C', 'C#', 'D', 'Eb', 'E', 'F', 'F#', 'G', 'Ab', 'A', 'Bb', 'B')[tonic]} {mode}"
            plan = plan_track(TrackRequest(30, "chill", tonic, key=name))
            assert (plan.tonic, plan.mode) == (tonic, mode), name


def test_the_request_keeps_one_spelling_of_the_key():
    assert TrackRequest(60, "chill", 1, key=" bbMin ") == TrackRequest(60, "chill", 1, key="Bb minor")
    assert TrackRequest(60, "chill", 1, key="c").key == "C"
    assert TrackRequest(60, "chill", 1).key is None
