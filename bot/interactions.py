"""The bot an interaction reached, typed (the buttons, checks and transformers reach their services from it), and
where an interaction happened: a server the bot is in, or somewhere only the user installed the app."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar, cast

import discord
from discord import app_commands

if TYPE_CHECKING:
    from bot.app import LofiBot

T = TypeVar("T")


def lofi_bot(interaction: discord.Interaction) -> LofiBot:
    """The bot an interaction reached (discord.py types `interaction.client` as a plain Client; the only
    client that registers this bot's commands and items is a LofiBot)."""
    return cast("LofiBot", interaction.client)


def bot_is_member(interaction: discord.Interaction) -> bool:
    """Whether the interaction comes from a server the bot is in (in its cache, so it gets that server's gateway
    events and may use its channels). False in DMs, group DMs and servers where only the user installed the
    app: there the bot may answer through the interaction only (no reactions, no channel posts, no events)."""
    return interaction.guild_id is not None and interaction.client.get_guild(interaction.guild_id) is not None


def anywhere(command: T) -> T:
    """Offer a command to servers that add the bot and to users who install the app, in servers, the bot's DMs
    and private channels (Discord checks both lists before it sends an interaction)."""
    installs = app_commands.allowed_installs(guilds=True, users=True)
    contexts = app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    return installs(contexts(command))


def servers_only(command: T) -> T:
    """Offer a command only where a server added the bot, only in that server (the radio needs its voice
    channels, the admin commands its managers)."""
    installs: Callable[[T], T] = app_commands.allowed_installs(guilds=True, users=False)
    guild_only: Callable[[T], T] = app_commands.guild_only()  # contexts [GUILD], and no dm_permission
    return installs(guild_only(command))
