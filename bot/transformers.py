"""Parameter transformers: user input becomes typed values, or a BadLength the error handler explains."""

from __future__ import annotations

import discord
from discord import app_commands

from bot.config import BotSettings
from bot.errors import BadLength
from music.durations import clock_text, parse_duration


def parse_length(text: str, min_s: float, max_s: float) -> float:
    """Seconds in `text` (`2m`, `90s`, `1m30s`, `1:30`, `120`), within [min_s, max_s]; BadLength otherwise."""
    try:
        seconds = float(parse_duration(str(text)))
    except ValueError as exc:
        raise BadLength(f"Bad length: {exc}.") from None
    if not min_s <= seconds <= max_s:
        raise BadLength(
            f"A track must be between {clock_text(min_s)} and {clock_text(max_s)} long, not {clock_text(seconds)}."
        )
    return seconds


def _settings(interaction: discord.Interaction) -> BotSettings:
    return interaction.client.settings


class DurationTransformer(app_commands.Transformer):
    """`2m`, `90s`, `1m30s`, `1:30` or `120` to seconds within the configured length range."""

    @property
    def type(self) -> discord.AppCommandOptionType:
        return discord.AppCommandOptionType.string

    async def transform(self, interaction: discord.Interaction, value: str) -> float:
        s = _settings(interaction)
        return parse_length(value, s.min_length_s, s.max_length_s)

    async def autocomplete(
        self, interaction: discord.Interaction, value: str
    ) -> list[app_commands.Choice[str]]:
        s = _settings(interaction)
        options = [
            o
            for o in ("30s", "1m", "1m30s", "2m", "3m", "5m")
            if s.min_length_s <= parse_duration(o) <= s.max_length_s
        ]
        return [app_commands.Choice(name=o, value=o) for o in options if o.startswith(value.strip())] or [
            app_commands.Choice(name=o, value=o) for o in options
        ]


Duration = app_commands.Transform[float, DurationTransformer]
