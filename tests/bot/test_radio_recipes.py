"""A station's recipe and key: one key for the same music (so guilds share a broadcast), read back from the key;
station names checked."""

from __future__ import annotations

import pytest

from bot.radio.recipes import BadStationName, Recipe, Tuning, station_name


def test_a_plain_mood_is_the_moods_own_station():
    assert Recipe("rainy").station_key == "rainy"
    assert Tuning.of_mood("rainy").saved == "rainy"


@pytest.mark.parametrize(
    ("recipe", "key"),
    [
        (Recipe("rainy", 100, "D#maj"), "rainy|100|Eb major"),  # enharmonic: the same music
        (Recipe("rainy", 100, "eb"), "rainy|100|Eb minor"),  # a bare tonic takes the mood's mode
        (Recipe("sunny", None, "c#"), "sunny||Db major"),
        (Recipe("random", 80, "c#"), "random|80|C#"),  # random's mode is drawn per piece: left open
    ],
)
def test_the_station_key_is_one_per_music_and_reads_back(recipe, key):
    assert recipe.station_key == key
    assert Recipe.of_station_key(key) == recipe


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "needs a name"),
        ("x" * 33, "at most 32"),
        ("a|b", "letters"),
        ("_x", "letters"),
        ("Sunny", "mood"),
    ],
)
def test_bad_station_names(name, why):
    with pytest.raises(BadStationName, match=why):
        station_name(name)


def test_a_name_is_trimmed_lowered_and_its_spaces_collapsed():
    assert station_name("  Late   Night's ") == "late night's"
    assert Tuning(Recipe("rainy"), "late night's").saved == "custom:late night's"
