"""Which reactions count as votes."""

from __future__ import annotations

from types import SimpleNamespace

import discord

from bot.cogs.votes import vote_value

BOT_ID = 100


def _payload(emoji: str, user_id: int = 7, custom_id: int | None = None):
    return SimpleNamespace(user_id=user_id, emoji=discord.PartialEmoji(name=emoji, id=custom_id))


def test_thumbs_are_votes():
    assert vote_value(_payload("👍"), BOT_ID) == 1
    assert vote_value(_payload("👎"), BOT_ID) == -1


def test_bot_own_reactions_are_ignored():
    assert vote_value(_payload("👍", user_id=BOT_ID), BOT_ID) is None


def test_other_and_custom_emoji_are_ignored():
    assert vote_value(_payload("🔥"), BOT_ID) is None
    assert vote_value(_payload("thumbsup", custom_id=123), BOT_ID) is None
