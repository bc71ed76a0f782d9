"""The small things the bot writes in several places, defined once: vote emoji, durations, message links."""

from __future__ import annotations

from discord import app_commands

from music.request import mood_names

UP, DOWN = "👍", "👎"
VOTE_EMOJI = (UP, DOWN)
VOTE_VALUES = {UP: 1, DOWN: -1}
# Discord offers at most 25 choices per option
MOOD_CHOICES = [app_commands.Choice(name=m, value=m) for m in mood_names()][:25]


def clock(seconds: float) -> str:
    """`2:05`."""
    seconds = round(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


def jump_url(guild_id: int | None, channel_id: int, message_id: int) -> str:
    """The link that opens a message in Discord (`@me` outside servers)."""
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"


def duration_text(seconds: float) -> str:
    """`1h30m`, `2m5s`, `45s`: a span as the radio's messages write it."""
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{s}s" if s or not (h or m) else "")
