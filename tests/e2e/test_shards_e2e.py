"""The real, sharded LofiBot against the fake Discord with 2 shards and two guilds, one on each shard.

Discord's rule (gateway docs, "Sharding"): a guild's events go to shard ``(guild_id >> 22) % num_shards``;
the fake sends READY, GUILD_CREATE and every later event of a guild only on that shard's connection, and acts
on a voice state update (op 4) only when it comes on that connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import discord
import pytest

from tests.e2e.conftest import FakeComposer, bot_resources, start_client, stop_client
from tests.e2e.fake_discord import (
    CLOSE_INVALID_SHARD,
    CLOSE_SHARDING_REQUIRED,
    EPHEMERAL,
    FakeDiscord,
    shard_of,
)
from tests.e2e.fake_voice import audio_of, dominant_hz
from tests.e2e.radio_helpers import TONES
from tests.e2e.test_radio_broadcast_e2e import commands_everywhere, start_in, three_guilds, wait_each
from tests.e2e.test_radio_e2e import FAST


def two_guilds(fake: FakeDiscord, *, shards: int = 2) -> tuple[str, str]:
    """The fake recommends (and requires) ``shards``; the bot is in its first guild and in a second one on
    the other of 2 shards. Their ids, in shard order (the guild of shard 0 first)."""
    fake.shards = shards
    first = fake.guild_id
    second = fake.add_guild(int(first) + (1 << 22), name="Second Guild").id
    assert shard_of(first, 2) != shard_of(second, 2)
    return (first, second) if shard_of(first, 2) == 0 else (second, first)


async def _until(predicate: Callable[[], Any], timeout: float = 10.0) -> None:
    """Poll ``predicate`` every 20 ms until it is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.02)


def guild_events(fake: FakeDiscord, shard_id: int, *names: str) -> list[tuple[str, str | None]]:
    """The (event, guild id) pairs the fake sent on shard ``shard_id``'s connection, of these kinds."""
    return [e for e in fake.sessions[shard_id].events if e[0] in names]


@pytest.fixture
async def sharded_bot(fake_discord, tmp_path) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """``await sharded_bot(pipeline, name=..., **settings)``: the real LofiBot with its commands synced
    globally (it is in more than one guild), logged in to the fake with as many shards as its settings say
    (by default: as many as the fake recommends). Each ``name`` gets its own database and output folder."""
    from bot.app import LofiBot
    from lofi.settings import Settings

    started: list[tuple[Any, Any, contextlib.AsyncExitStack]] = []

    async def start(pipeline: FakeComposer, *, name: str = "bot", **overrides: Any) -> Any:
        values: dict[str, Any] = dict(
            discord_token=fake_discord.token,
            discord_guild_id=None,
            discord_api_base=fake_discord.api_base,
            discord_gateway_url=fake_discord.gateway_url,
            database_url=f"sqlite+aiosqlite:///{tmp_path / f'{name}.sqlite3'}",
            out_dir=tmp_path / name,
            cooldown_s=0.0,
            queue_size=4,
            workers=1,
            min_length_s=15.0,
            max_length_s=600.0,
        )
        values.update(overrides)
        settings = Settings(_env_file=None, **values)
        stack = contextlib.AsyncExitStack()
        resources = await bot_resources(stack, settings, pipeline)
        bot = LofiBot(settings, resources)
        synced = len(fake_discord.find("commands"))
        try:
            task = await start_client(bot, fake_discord, timeout=30.0)
        except BaseException:
            await stack.aclose()
            raise
        started.append((bot, task, stack))
        await fake_discord.wait_for("commands", count=synced + 1)
        return bot

    yield start
    for bot, task, stack in reversed(started):
        await stop_client(bot, task)
        await stack.aclose()
    assert not fake_discord.gateway_problems, fake_discord.gateway_problems


async def lofi_in(fake: FakeDiscord, guild_id: str) -> dict[str, Any]:
    """``/lofi length:30s mood:rainy`` in ``guild_id``'s channel; the public track message the bot posted."""
    state = await fake.send_interaction("lofi", {"length": "30s", "mood": "rainy"}, guild_id=guild_id)
    callback = await fake.wait_for(
        lambda r: r.kind == "interaction_callback" and r.interaction_id == state.id
    )
    assert callback.ok and callback.json["type"] == 5, callback.response
    followup = await fake.wait_for(
        lambda r: r.kind == "followup" and r.interaction_id == state.id, timeout=20
    )
    assert followup.ok, followup.response
    assert not followup.message["flags"] & EPHEMERAL
    return followup.message


async def test_two_shards_each_guild_served_on_its_own_shard(fake_discord, sharded_bot, fake_pipeline):
    guild0, guild1 = two_guilds(fake_discord)
    bot = await sharded_bot(fake_pipeline)

    # the count came from /gateway/bot, and each shard identified once with its own [id, count]
    assert fake_discord.find("gateway_bot")
    assert sorted(tuple(i["shard"]) for i in fake_discord.identify_attempts) == [(0, 2), (1, 2)]
    assert bot.shard_count == 2 and sorted(bot.shards) == [0, 1]
    assert len(bot.latencies) == 2
    assert {g.id: g.shard_id for g in bot.guilds} == {int(guild0): 0, int(guild1): 1}
    for shard_id, guild_id in ((0, guild0), (1, guild1)):
        assert guild_events(fake_discord, shard_id, "GUILD_CREATE") == [("GUILD_CREATE", guild_id)]

    posted = {guild_id: await lofi_in(fake_discord, guild_id) for guild_id in (guild0, guild1)}
    assert len(fake_pipeline.calls) == 2
    for guild_id, message in posted.items():
        assert message["channel_id"] == fake_discord.guild(guild_id).channel_id
        # the bot's vote reactions come back to it as events of that guild
        await fake_discord.wait_for(
            lambda r, m=message: r.kind == "reaction_add" and r.params["message_id"] == m["id"], count=2
        )

    # every event of a guild went out on its own shard's connection, none on the other's
    kinds = ("GUILD_CREATE", "INTERACTION_CREATE", "MESSAGE_REACTION_ADD")
    for shard_id, guild_id in ((0, guild0), (1, guild1)):
        events = guild_events(fake_discord, shard_id, *kinds)
        assert {g for _, g in events} == {guild_id}
        assert [e for e, _ in events].count("INTERACTION_CREATE") == 1
        assert [e for e, _ in events].count("MESSAGE_REACTION_ADD") == 2
    fake_discord.assert_no_errors()


async def test_voice_goes_through_the_guild_shard(fake_discord, sharded_bot, fake_pipeline):
    guild0, guild1 = two_guilds(fake_discord)
    bot = await sharded_bot(fake_pipeline)
    for guild_id in (guild1, guild0):
        guild = bot.get_guild(int(guild_id))
        channel = guild.get_channel(int(fake_discord.guild(guild_id).voice_channel_id))
        await guild.change_voice_state(channel=channel, self_deaf=True)
    for guild_id in (guild0, guild1):
        fake_guild = fake_discord.guild(guild_id)
        await _until(lambda g=fake_guild: fake_discord.bot_user_id in g.voice_states)
        # Discord answered on the guild's own shard, and discord.py saw the bot join there
        guild = bot.get_guild(int(guild_id))
        await _until(lambda g=guild: g.me.voice is not None)
        assert guild.me.voice.channel.id == int(fake_guild.voice_channel_id)
        shard_id = shard_of(guild_id, 2)
        assert ("VOICE_STATE_UPDATE", guild_id) in guild_events(fake_discord, shard_id, "VOICE_STATE_UPDATE")
        assert ("VOICE_STATE_UPDATE", guild_id) not in guild_events(
            fake_discord, 1 - shard_id, "VOICE_STATE_UPDATE"
        )
    assert not fake_discord.gateway_problems


async def test_fake_ignores_voice_state_on_the_wrong_shard(fake_discord, sharded_bot, fake_pipeline):
    guild0, guild1 = two_guilds(fake_discord)
    bot = await sharded_bot(fake_pipeline)
    wrong = bot._get_websocket(shard_id=0)  # shard 0's connection, for guild1 of shard 1
    await wrong.voice_state(int(guild1), int(fake_discord.guild(guild1).voice_channel_id))
    await _until(lambda: fake_discord.gateway_problems)
    (problem,) = fake_discord.gateway_problems
    assert f"guild {guild1} (shard 1)" in problem and "connection of shard (0, 2)" in problem
    assert fake_discord.bot_user_id not in fake_discord.guild(guild1).voice_states
    fake_discord.gateway_problems.clear()  # seen: the fixture checks that nothing else was


@pytest.mark.parametrize(
    ("shard", "code"),
    [
        (None, CLOSE_SHARDING_REQUIRED),  # no shard on a bot that must shard
        ([0, 1], CLOSE_SHARDING_REQUIRED),  # fewer shards than required
        ([2, 2], CLOSE_INVALID_SHARD),  # id out of range
        ([-1, 2], CLOSE_INVALID_SHARD),
        (["0", 2], CLOSE_INVALID_SHARD),
        ([0], CLOSE_INVALID_SHARD),
        ([1, 2], 0),  # accepted: READY for shard 1 with shard 1's guild only
    ],
)
async def test_fake_checks_the_identify_shard(fake_discord, shard, code):
    guild0, guild1 = two_guilds(fake_discord)
    identify: dict[str, Any] = {"token": fake_discord.token, "intents": 1, "properties": {}}
    if shard is not None:
        identify["shard"] = shard
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(fake_discord.gateway_url + "?v=10&encoding=json") as ws,
    ):
        assert (await ws.receive_json())["op"] == 10
        await ws.send_json({"op": 2, "d": identify})
        if code:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == code
            assert not fake_discord.sessions
            return
        ready = await ws.receive_json()
        assert ready["t"] == "READY" and ready["d"]["shard"] == [1, 2]
        assert [g["id"] for g in ready["d"]["guilds"]] == [guild1]
        created = await ws.receive_json()
        assert created["t"] == "GUILD_CREATE" and created["d"]["id"] == guild1


async def test_real_client_with_too_few_shards_is_refused(fake_discord, sharded_bot, fake_pipeline):
    two_guilds(fake_discord)
    with pytest.raises(discord.ConnectionClosed) as refused:
        await sharded_bot(fake_pipeline, shard_count=1)
    assert refused.value.code == CLOSE_SHARDING_REQUIRED
    assert [i["shard"] for i in fake_discord.identify_attempts] == [[0, 1]]


async def test_settings_shard_ids_split_the_shards_between_processes(fake_discord, sharded_bot, media):
    # Discord recommends 1 shard; the operator runs 2, one per process (two bots here)
    guild0, guild1 = two_guilds(fake_discord, shards=1)
    pipelines = {0: FakeComposer(media), 1: FakeComposer(media)}
    bots = {}
    for shard_id in (1, 0):
        bots[shard_id] = await sharded_bot(
            pipelines[shard_id], name=f"shard{shard_id}", shard_count=2, shard_ids=[shard_id]
        )
        assert sorted(bots[shard_id].shards) == [shard_id] and bots[shard_id].shard_count == 2
        assert [g.id for g in bots[shard_id].guilds] == [int((guild0, guild1)[shard_id])]
    assert not fake_discord.find("gateway_bot")  # the count came from the settings
    assert [i["shard"] for i in fake_discord.identify_attempts] == [[1, 2], [0, 2]]

    # each guild's /lofi is answered by the process that runs the guild's shard
    message = await lofi_in(fake_discord, guild0)
    assert message["channel_id"] == fake_discord.guild(guild0).channel_id
    assert [len(pipelines[i].calls) for i in (0, 1)] == [1, 0]
    message = await lofi_in(fake_discord, guild1)
    assert message["channel_id"] == fake_discord.guild(guild1).channel_id
    assert [len(pipelines[i].calls) for i in (0, 1)] == [1, 1]
    fake_discord.assert_no_errors()


async def test_settings_shard_ids_leave_other_shards_unconnected(fake_discord, sharded_bot, fake_pipeline):
    guild0, guild1 = two_guilds(fake_discord)
    bot = await sharded_bot(fake_pipeline, shard_count=2, shard_ids=[1])
    assert sorted(fake_discord.sessions) == [1]
    assert [g.id for g in bot.guilds] == [int(guild1)]
    with pytest.raises(RuntimeError, match="no identified gateway connection"):
        await fake_discord.send_interaction("lofi", {"length": "30s"}, guild_id=guild0)
    await lofi_in(fake_discord, guild1)


@pytest.mark.slow
async def test_lofi_bot_says_which_setting_when_discord_requires_more_shards(fake_discord, tmp_path):
    two_guilds(fake_discord)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "SERVING_", "SHARD_"))}
    env.update(
        DISCORD_TOKEN=fake_discord.token,
        DISCORD_API_BASE=fake_discord.api_base,
        DISCORD_GATEWAY_URL=fake_discord.gateway_url,
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'lofi.sqlite3'}",
        MODELS_DIR=str(tmp_path / "models"),
        OUT_DIR=str(tmp_path / "out"),
        SERVING_ADDRESS="127.0.0.1:1",
        SHARD_COUNT="1",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lofi.cli",
        "bot",
        "--no-sync",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 90)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 2, err.decode(errors="replace")
    assert "4011 Sharding required" in err.decode() and "SHARD_COUNT" in err.decode()
    assert "Traceback" not in err.decode()
    assert [i["shard"] for i in fake_discord.identify_attempts] == [[0, 1]]


@pytest.mark.timeout(120)
async def test_radio_streams_in_guilds_of_both_shards(fake_discord, fake_voice, radio_bot, tone_pipeline):
    # three guilds with a listener each: the first and third on shard 1, the second on shard 0
    fake_discord.shards = 2
    guilds = three_guilds(fake_discord)
    ids = [g for g, _ in guilds]
    assert [shard_of(g, 2) for g in ids] == [1, 0, 1]
    bot = await radio_bot(tone_pipeline, radio=FAST)
    assert bot.shard_count == 2 and sorted(bot.shards) == [0, 1]
    commands_everywhere(fake_discord)
    for guild in guilds:
        await start_in(fake_discord, guild, "rainy")
    await fake_voice.wait_session(3)
    frames = await wait_each(fake_voice, ids, 50, time.monotonic())
    for g in ids:
        assert abs(dominant_hz(audio_of(frames[g])) - TONES["rainy"]) < 5
        # the bot joined through the guild's shard, and Discord named the voice server there
        shard_id = shard_of(g, 2)
        assert ("VOICE_SERVER_UPDATE", g) in guild_events(fake_discord, shard_id, "VOICE_SERVER_UPDATE")
        assert ("VOICE_SERVER_UPDATE", g) not in guild_events(
            fake_discord, 1 - shard_id, "VOICE_SERVER_UPDATE"
        )
    assert not fake_discord.gateway_problems
