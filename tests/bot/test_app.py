"""The application object: endpoints, intents, and setup_hook with injected pipeline and serving client."""

from __future__ import annotations

import discord
import yarl

from bot.app import LofiBot, configure_endpoints, default_intents
from db import repository as repo
from db.engine import make_engine, make_sessionmaker, upgrade_engine
from db.models import TrackStatus


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


async def test_setup_hook_builds_everything_and_recovers(settings, fake_pipeline, monkeypatch):
    # a previous process died mid-job
    engine = make_engine(settings.database_url)
    await upgrade_engine(engine)
    async with make_sessionmaker(engine).begin() as s:
        stale = await repo.create_track(
            s, user_id=1, user_name="u", mood_requested="random", length_requested_s=60, seed=1
        )
    await engine.dispose()

    async def client_factory(_settings):
        return "fake-client"

    bot = LofiBot(settings, pipeline=fake_pipeline, client_factory=client_factory, sync_commands=False)
    try:
        await bot.setup_hook()
        names = {c.name for c in bot.tree.get_commands()}
        assert {"lofi", "lofi-top", "lofi-history", "lofi-retrain", "lofi-status"} <= names
        assert bot.serving_client() == "fake-client"
        assert bot.tracks.pipeline is fake_pipeline
        async with bot.sessionmaker() as s:
            track = await repo.get_track(s, stale.id)
        assert track.status is TrackStatus.failed and track.error == repo.INTERRUPTED
    finally:
        await bot.close()
