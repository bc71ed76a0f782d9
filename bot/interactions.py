"""The bot an interaction reached, typed: the buttons, checks and transformers reach their services from it."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import discord

if TYPE_CHECKING:
    from bot.app import LofiBot


def lofi_bot(interaction: discord.Interaction) -> LofiBot:
    """The bot an interaction reached (discord.py types `interaction.client` as a plain Client; the only
    client that registers this bot's commands and items is a LofiBot)."""
    return cast("LofiBot", interaction.client)
