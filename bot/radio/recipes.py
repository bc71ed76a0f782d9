"""What a station plays (its recipe: a mood, an optional tempo and key) and what a guild tuned to (a mood's
station or one of its custom stations, by name).

Stations on air are keyed by their recipe, not by who created them: two guilds whose custom stations have the
same mood, tempo and key hear one broadcast, composed and encoded once, as two guilds on one mood do; a custom
station with neither tempo nor key is the mood's own station. A custom station's name is only the guild's
label for a recipe, so deleting it in one guild leaves another guild's same-recipe station playing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from music.keys import SPELLING, key_text, parse_key
from music.limits import MAX_BPM, MIN_BPM
from music.request import RANDOM_MOOD, load_moods, mood_names

CUSTOM_PREFIX = "custom:"  # how the radio's saved state names a custom station (a mood is saved as itself)
NAME_MAX = 32
# Letters (any script), digits, spaces, hyphens, apostrophes: a name reads well in a list and never holds the
# "|" of a station key or the ":" of the saved form.
_NAME = re.compile(r"[^\W_][\w '\-]*")


class BadStationName(ValueError):
    """A custom station name that is empty, too long, made of other characters, or a mood's name."""


def station_name(text: str) -> str:
    """`text` as a station is named: trimmed, lower case, runs of spaces as one; BadStationName saying why."""
    name = " ".join(str(text).split()).lower()
    if not name:
        raise BadStationName("a station needs a name")
    if len(name) > NAME_MAX:
        raise BadStationName(f"a station name is at most {NAME_MAX} characters")
    if not _NAME.fullmatch(name):
        raise BadStationName(
            "a station name is letters, digits, spaces, hyphens and apostrophes, starting with a letter or digit"
        )
    if name in mood_names():
        raise BadStationName(f"{name!r} is a mood; the mood's own station needs no name")
    return name


def same_music_key(mood: str, key: str) -> str:
    """`key` spelt one way for every name of the same music: "D#maj" and "Eb major" are "Eb major", and "Eb" on
    a minor mood is "Eb minor" (the mode it takes); on `random`, whose mode is drawn per piece, a bare tonic
    stays bare. KeyNameError (a ValueError) if `key` is not a key."""
    tonic, mode = parse_key(key)
    if mode is None and mood != RANDOM_MOOD:
        mode = load_moods()[mood].mode
    return f"{SPELLING[mode][tonic]} {mode}" if mode is not None else key_text(key)


@dataclass(frozen=True)
class Recipe:
    """What a station plays: `mood`, and the tempo (bpm) and key its pieces are asked for (None: drawn)."""

    mood: str
    bpm: int | None = None
    key: str | None = None

    def __post_init__(self) -> None:
        if self.mood not in mood_names():
            raise ValueError(f"unknown mood {self.mood!r}")
        if self.bpm is not None and not MIN_BPM <= self.bpm <= MAX_BPM:
            raise ValueError(f"tempo {self.bpm} is outside {MIN_BPM}-{MAX_BPM} bpm")
        if self.key is not None:
            # one spelling for the same music, so that equal recipes share one station
            object.__setattr__(self, "key", same_music_key(self.mood, self.key))

    @property
    def station_key(self) -> str:
        """The key of its station on air: the mood alone for a plain mood, else "mood|bpm|key"."""
        if self.bpm is None and self.key is None:
            return self.mood
        return f"{self.mood}|{self.bpm if self.bpm is not None else ''}|{self.key or ''}"

    @classmethod
    def of_station_key(cls, key: str) -> Recipe:
        """The recipe whose `station_key` is `key`."""
        mood, _, rest = key.partition("|")
        bpm, _, tonic = rest.partition("|")
        return cls(mood, int(bpm) if bpm else None, tonic or None)

    def describe(self) -> str:
        """E.g. "rainy, 70 bpm, Eb major"."""
        parts = [self.mood]
        if self.bpm is not None:
            parts.append(f"{self.bpm} bpm")
        if self.key is not None:
            parts.append(self.key)
        return ", ".join(parts)


@dataclass(frozen=True)
class Tuning:
    """What a guild's radio is tuned to: a mood's station (`name` None) or its custom station `name`."""

    recipe: Recipe
    name: str | None = None

    @classmethod
    def of_mood(cls, mood: str) -> Tuning:
        return cls(Recipe(mood))

    @property
    def label(self) -> str:
        """What the guild's messages call it: the station's name, or the mood."""
        return self.name if self.name is not None else self.recipe.mood

    @property
    def saved(self) -> str:
        """How the guild's radio state (`radio_stations.mood`) records it: the mood, or "custom:<name>"."""
        return f"{CUSTOM_PREFIX}{self.name}" if self.name is not None else self.recipe.mood
