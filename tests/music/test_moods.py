"""Every mood preset carries a complete sound, loads, differs audibly from the others and renders."""

from __future__ import annotations

import numpy as np
import pytest

from music.arrange import arrange
from music.effects import DEFAULTS
from music.render_config import RenderConfig
from music.request import MOODS_FILE, TrackRequest, load_moods, plan_track
from music.track import render_track
from tests.support.scores import example_score

MOODS = sorted(load_moods())
SECTIONS = ("instruments", "drums", "effects", "mix", "ambience", "cover")


@pytest.mark.parametrize("name", MOODS)
def test_mood_has_a_complete_sound(name):
    sound = load_moods()[name].sound
    assert set(SECTIONS) <= set(sound)
    inst = sound["instruments"]
    assert all(0 <= int(inst[k]) <= 127 for k in ("keys", "bass", "melody"))
    assert 32 <= inst["bass"] <= 39  # a GM bass
    assert set(DEFAULTS) <= set(sound["effects"])
    assert 200 <= sound["effects"]["lowpass_hz"] <= 20000 and 0 <= sound["effects"]["reverb_wet"] <= 1
    assert set(sound["drums"]["styles"]) <= {"hiphop", "soul", "jazz", "funk"}
    assert 0 <= sound["drums"]["swing"] <= 1
    assert all(0 <= sound["ambience"][k] <= 1 for k in ("crackle", "hiss", "rain"))
    assert len(sound["cover"]["colors"]) == 3
    assert set(sound["mix"]) == {"keys", "bass", "melody", "drums"}


def test_moods_sound_different():
    moods = load_moods()
    fingerprints = {
        (m.sound["instruments"]["melody"], m.sound["effects"]["lowpass_hz"], m.sound["drums"]["swing"])
        for m in moods.values()
    }
    assert len(fingerprints) == len(moods)
    assert moods["rainy"].sound["ambience"]["rain"] > 0
    assert all(m.sound["ambience"]["rain"] == 0 for n, m in moods.items() if n != "rainy")


def test_mood_register_and_density_change_the_arrangement():
    moods = load_moods()
    night = arrange(example_score(8, 70.0), moods["night"].sound, seed=1)
    sunny = arrange(example_score(8, 70.0), moods["sunny"].sound, seed=1)

    def mean_pitch(arr, part):
        return np.mean([n.pitch for n in arr.notes if n.part == part])

    assert mean_pitch(night, "keys") < mean_pitch(sunny, "keys")

    # Drum density over several seeds: one seed's groove draw can be busier in either mood (the keys' voicing
    # choices share the arrangement's random stream, so any voicing change reshuffles the drums of a seed).
    def hits(mood):
        return sum(
            n.part == "drums"
            for seed in range(6)
            for n in arrange(example_score(8, 70.0), moods[mood].sound, seed=seed).notes
        )

    assert hits("night") < hits("sunny")


def test_a_new_mood_needs_no_code(tmp_path):
    src = MOODS_FILE.read_text()
    path = tmp_path / "moods.toml"
    path.write_text(
        src + '\n[cozy]\nmode = "major"\ntempo = [70, 80]\ndensity = "low"\n'
        "time_signature = [4, 4]\ntonics = [5]\ntemperature = 0.9\ntop_p = 0.9\n"
        "[cozy.instruments]\nkeys = 0\nbass = 33\nmelody = 73\n"
    )
    cozy = load_moods(path)["cozy"]
    arr = arrange(example_score(4, 75.0), cozy.sound, seed=0)
    assert arr.programs == {"keys": 0, "bass": 33, "melody": 73, "drums": 0}


@pytest.mark.parametrize("name", MOODS)
def test_every_mood_renders(name, soundfont, tmp_path):
    plan = plan_track(TrackRequest(length_s=4, mood=name, seed=2))
    files = render_track(
        example_score(plan.n_bars, plan.bpm, plan.mode),
        plan,
        tmp_path,
        render=RenderConfig(soundfont=soundfont),
    )
    assert files.mood == name and files.mp3.stat().st_size > 5000
    assert files.loudness_lufs == pytest.approx(-14.0, abs=1.0)
    assert files.true_peak_dbtp <= -1.0
