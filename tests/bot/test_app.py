"""The application object: endpoints, intents, and setup_hook over the resources it is given."""

from __future__ import annotations

import discord
import yarl

from bot.app import LofiBot, configure_endpoints, default_intents
from db import repository as repo
from db.models import TrackStatus
from tests.bot.conftest import resources


def test_endpoints_are_configurable(monkeypatch):
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    )
    configure_endpoints("http://127.0.0.1:9999/api/v10/", "ws://127.0.0.1:9999/gateway")
    assert discord.http.Route("GET", "/gateway/bot").url == "http://127.0.0.1:9999/api/v10/gateway/bot"
    assert yarl.URL("ws://127.0.0.1:9999/gateway") == discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY


def test_no_privileged_intents():
    intents = default_intents()
    assert intents.guilds and intents.guild_reactions
    assert not (intents.members or intents.presences or intents.message_content)


async def test_setup_hook_builds_everything_and_recovers(settings, sessionmaker, fake_pipeline):
    # a previous process died mid-job
    async with sessionmaker.begin() as s:
        stale = await repo.create_track(
            s, user_id=1, user_name="u", mood_requested="random", length_requested_s=60, seed=1
        )

    class Models:
        async def model_status(self):
            return {}

    models = Models()
    bot = LofiBot(settings, resources(sessionmaker, fake_pipeline, models), sync_commands=False)
    try:
        await bot.setup_hook()
        names = {c.name for c in bot.tree.get_commands()}
        assert {"lofi", "lofi-top", "lofi-history", "lofi-retrain", "lofi-status"} <= names
        assert bot.status_service.models is models
        assert bot.tracks.maker is fake_pipeline
        async with bot.sessionmaker() as s:
            track = await repo.get_track(s, stale.id)
        assert track.status is TrackStatus.failed and track.error == repo.INTERRUPTED
    finally:
        await bot.close()
