"""The admin check. `default_permissions` only hides commands in the client and a server can override it;
this check runs on our side for every invocation and cannot be bypassed."""

from __future__ import annotations

import logging

import discord

from bot.config import BotSettings
from bot.errors import NotAdmin
from bot.interactions import bot_is_member, lofi_bot

log = logging.getLogger(__name__)


def _manages(perms: discord.Permissions | None) -> bool:
    return perms is not None and (perms.manage_guild or perms.administrator)


def is_admin(
    user: discord.abc.User, settings: BotSettings, permissions: discord.Permissions | None = None
) -> bool:
    """True for server managers/administrators and for configured admin users or roles.

    `permissions` are the ones Discord resolved for this interaction (`Interaction.permissions`); the
    member's guild permissions (computed from the cached roles, guild owner included) count too.
    """
    if user.id in settings.admin_user_ids:
        return True
    if _manages(permissions) or _manages(getattr(user, "guild_permissions", None)):
        return True
    role_ids = {role.id for role in getattr(user, "roles", ())}
    return bool(role_ids & set(settings.admin_role_ids))


def is_admin_here(interaction: discord.Interaction) -> bool:
    """`is_admin` for whoever used `interaction`. Where the bot is not a member (a DM, or a server where only a
    user installed the app) a server's managers manage that server, not the bot: only configured admin users
    count there."""
    settings = lofi_bot(interaction).settings
    if not bot_is_member(interaction):
        return interaction.user.id in settings.admin_user_ids
    return is_admin(interaction.user, settings, getattr(interaction, "permissions", None))


async def require_admin(interaction: discord.Interaction) -> bool:
    """App command check: admins pass; anyone else gets NotAdmin and the attempt is logged."""
    if is_admin_here(interaction):
        return True
    name = interaction.command.qualified_name if interaction.command else "an admin command"
    log.warning(
        "refused /%s to user %s (%s) in guild %s",
        name,
        interaction.user.id,
        interaction.user,
        interaction.guild_id,
    )
    raise NotAdmin(f"/{name}")
