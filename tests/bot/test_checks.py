"""The admin check: refused unless manager/administrator or configured by user or role id."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import discord
import pytest

from bot.checks import is_admin, require_admin
from bot.errors import NotAdmin
from lofi.settings import Settings


def _settings(**kw) -> Settings:
    return Settings(_env_file=None, **kw)


def _member(user_id=1, perms=None, roles=()):
    return SimpleNamespace(
        id=user_id,
        guild_permissions=perms or discord.Permissions.none(),
        roles=[SimpleNamespace(id=r) for r in roles],
    )


def _interaction(user, settings, permissions=None, bot_in_guild=True):
    command = SimpleNamespace(qualified_name="lofi-retrain")
    guild = SimpleNamespace(id=9) if bot_in_guild else None  # the bot's cache: a server it is in
    return SimpleNamespace(
        client=SimpleNamespace(settings=settings, get_guild=lambda guild_id: guild),
        user=user,
        command=command,
        guild_id=9,
        permissions=permissions or discord.Permissions.none(),
    )


async def test_non_admin_is_refused_and_logged(caplog):
    inter = _interaction(_member(perms=discord.Permissions(send_messages=True)), _settings())
    with caplog.at_level(logging.WARNING, logger="bot.checks"), pytest.raises(NotAdmin) as err:
        await require_admin(inter)
    assert "/lofi-retrain" in str(err.value)
    assert "refused /lofi-retrain" in caplog.text


@pytest.mark.parametrize(
    "perms", [discord.Permissions(manage_guild=True), discord.Permissions(administrator=True)]
)
async def test_admin_by_permission(perms):
    assert await require_admin(_interaction(_member(perms=perms), _settings())) is True


async def test_admin_by_interaction_permissions():
    inter = _interaction(_member(), _settings(), permissions=discord.Permissions(manage_guild=True))
    assert await require_admin(inter) is True


async def test_managers_of_a_server_the_bot_is_not_in_are_not_admins():
    # a server where only a user installed the app: its managers manage it, not the bot
    manager = _member(perms=discord.Permissions(administrator=True))
    inter = _interaction(manager, _settings(), discord.Permissions(manage_guild=True), bot_in_guild=False)
    with pytest.raises(NotAdmin):
        await require_admin(inter)
    configured = _interaction(_member(user_id=42), _settings(admin_user_ids=[42]), bot_in_guild=False)
    assert await require_admin(configured) is True


def test_admin_by_configured_user_id():
    assert is_admin(_member(user_id=42), _settings(admin_user_ids=[42]))
    assert not is_admin(_member(user_id=43), _settings(admin_user_ids=[42]))


def test_admin_by_configured_role_id():
    assert is_admin(_member(roles=[7, 8]), _settings(admin_role_ids=[8]))
    assert not is_admin(_member(roles=[7]), _settings(admin_role_ids=[8]))


def test_user_outside_a_guild_has_no_permissions():
    dm_user = SimpleNamespace(id=5)  # a discord.User in DMs has neither guild_permissions nor roles
    assert not is_admin(dm_user, _settings())


def test_retrain_command_is_guarded():
    from bot.checks import require_admin as check
    from bot.cogs.admin import Admin

    cmd = Admin.retrain
    assert check in cmd.checks
    assert cmd.default_permissions == discord.Permissions(manage_guild=True)
    assert cmd.guild_only
