"""Parameter transformers: user input becomes typed values, or a BadLength / BadKey the error handler explains."""

from __future__ import annotations

import discord
from discord import app_commands

from bot.config import BotSettings
from bot.errors import BadKey, BadLength
from bot.interactions import lofi_bot
from music.durations import parse_duration, parse_length
from music.errors import KeyNameError
from music.keys import key_text, suggest_keys


def _settings(interaction: discord.Interaction) -> BotSettings:
    return lofi_bot(interaction).settings


class DurationTransformer(app_commands.Transformer):
    """`2m`, `90s`, `1m30s`, `1:30` or `120` to seconds within the configured length range."""

    @property
    def type(self) -> discord.AppCommandOptionType:
        return discord.AppCommandOptionType.string

    async def transform(self, interaction: discord.Interaction, value: str) -> float:
        s = _settings(interaction)
        try:
            return parse_length(value, s.min_length_s, s.max_length_s)
        except ValueError as exc:  # the same lengths as `lofi generate`, in the bot's words
            raise BadLength(f"Bad length: {exc}.") from None

    async def autocomplete(
        self, interaction: discord.Interaction, value: int | float | str
    ) -> list[app_commands.Choice[int | float | str]]:
        s = _settings(interaction)
        options = [
            o
            for o in ("30s", "1m", "1m30s", "2m", "3m", "5m")
            if s.min_length_s <= parse_duration(o) <= s.max_length_s
        ]
        typed = str(value).strip()
        fitting = [o for o in options if o.startswith(typed)] or options
        return [app_commands.Choice[int | float | str](name=o, value=o) for o in fitting]


Duration = app_commands.Transform[float, DurationTransformer]


class KeyTransformer(app_commands.Transformer):
    """A key name ("A minor", "Eb major", "F#m", or "C" for the mood's mode) to the request's spelling of it.

    Autocomplete offers the 24 keys, but Discord lets the user send any text: the music layer's parser is
    the one judge, and its message (the form expected) is what the user reads."""

    @property
    def type(self) -> discord.AppCommandOptionType:
        return discord.AppCommandOptionType.string

    @property
    def max_value(self) -> int:
        return 20  # the longest key name is 8 characters ("Eb minor"); room for spaces and "major"

    async def transform(self, interaction: discord.Interaction, value: str) -> str:
        try:
            return key_text(value)
        except KeyNameError as exc:
            raise BadKey(f"Bad key: {exc}.") from None

    async def autocomplete(
        self, interaction: discord.Interaction, value: int | float | str
    ) -> list[app_commands.Choice[int | float | str]]:
        return [app_commands.Choice[int | float | str](name=k, value=k) for k in suggest_keys(str(value))]


Key = app_commands.Transform[str, KeyTransformer]
