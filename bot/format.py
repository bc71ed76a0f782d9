"""The small things the bot writes in several places, defined once: vote emoji, durations, message links."""

from __future__ import annotations

UP, DOWN = "👍", "👎"
VOTE_EMOJI = (UP, DOWN)
VOTE_VALUES = {UP: 1, DOWN: -1}


def clock(seconds: float) -> str:
    """`2:05`."""
    seconds = round(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


def jump_url(guild_id: int | None, channel_id: int, message_id: int) -> str:
    """The link that opens a message in Discord (`@me` outside servers)."""
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"
