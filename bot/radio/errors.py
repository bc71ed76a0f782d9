"""The radio's error: one type, whose text is shown to the user."""

from __future__ import annotations

from bot.errors import BotError


class RadioError(BotError):
    """A radio command that cannot be done (not in a voice channel, not playing, a bad station...)."""
