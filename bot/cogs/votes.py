"""Votes: 👍 / 👎 reactions on the bot's track messages (raw events: follow-ups are not in the message cache);
where the bot sees no reactions, the buttons of `bot.vote_buttons`."""

from __future__ import annotations

import logging

import discord
from discord.ext import commands

from bot.app import LofiBot
from bot.format import VOTE_VALUES
from bot.vote_buttons import VoteButton

log = logging.getLogger(__name__)


def vote_value(payload: discord.RawReactionActionEvent, bot_user_id: int | None) -> int | None:
    """+1 / -1 for a vote reaction by someone other than the bot; None for anything to ignore."""
    if bot_user_id is not None and payload.user_id == bot_user_id:
        return None
    if payload.emoji.id is not None:  # custom emoji
        return None
    return VOTE_VALUES.get(payload.emoji.name or "")


class Votes(commands.Cog):
    """Turns reactions into votes (one per user per track; removing the reaction removes the vote)."""

    def __init__(self, bot: LofiBot):
        self.bot = bot

    async def _apply(self, payload: discord.RawReactionActionEvent, added: bool) -> None:
        value = vote_value(payload, self.bot.user.id if self.bot.user else None)
        if value is None:
            return
        author = getattr(payload, "message_author_id", None)
        if added and author is not None and self.bot.user and author != self.bot.user.id:
            return  # not one of our messages; no need to ask the database
        try:
            counted = await self.bot.votes.react(payload.message_id, payload.user_id, value, added=added)
        except Exception:
            log.exception("could not record a vote on message %s", payload.message_id)
            return
        if counted:
            log.debug(
                "vote %+d %s by %s on message %s",
                value,
                "added" if added else "removed",
                payload.user_id,
                payload.message_id,
            )

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        """A reaction added: set the vote."""
        await self._apply(payload, added=True)

    @commands.Cog.listener()
    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        """A reaction removed: drop the vote it made."""
        await self._apply(payload, added=False)


async def setup(bot: LofiBot) -> None:
    """Load the cog and its vote buttons (for posts where there are no reactions to read)."""
    bot.add_dynamic_items(VoteButton)
    await bot.add_cog(Votes(bot))
