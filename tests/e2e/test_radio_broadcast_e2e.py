"""Broadcast stations for real: the bot in 3 guilds on the fake Discord, each guild's discord.py voice client
streaming to the fake voice server, which records every guild's Opus payloads. One station per mood: every guild
tuned to it receives the very same encoded frames, at the same time; a guild leaving does not disturb the others;
a guild switching to a station on air hears it at once."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

import pytest
from discord.opus import OPUS_SILENCE

from tests.e2e.fake_voice import FakeVoice, Frame, audio_of, dominant_hz
from tests.e2e.radio_helpers import TONES, listener_in_voice
from tests.e2e.test_bot_e2e import of, text_of
from tests.e2e.test_radio_e2e import FAST, check_continuous

pytestmark = pytest.mark.timeout(120)


def three_guilds(fake) -> list[tuple[str, dict | None]]:
    """The bot in two more guilds, a listener in each guild's voice channel (before the bot starts:
    GUILD_CREATE lists them); returns (guild id, its listener) for the three, the first guild's user None (the
    default user)."""
    listener_in_voice(fake)
    out: list[tuple[str, dict | None]] = [(fake.guild_id, None)]
    for i in (1, 2):
        g = fake.add_guild(int(fake.guild_id) + (i << 22))  # another shard's guild, should there be several
        user = fake.make_user(1_100_000_000_000_003_000 + i, f"listener{i}")
        g.voice_states[user["id"]] = {
            "channel_id": g.voice_channel_id,
            "user_id": user["id"],
            "session_id": f"listener-{i}",
        }
        out.append((g.id, user))
    return out


def commands_everywhere(fake) -> None:
    """The test bot registers its commands in its first guild only; let the other guilds run them too (as
    global commands would)."""
    fake.commands.update(fake.guild_commands[fake.guild_id])


async def run(fake, guild: tuple[str, dict | None], options: dict):
    gid, user = guild
    return await fake.send_interaction("lofi-radio", options, guild_id=gid, user=user)


async def start_in(fake, guild: tuple[str, dict | None], mood: str) -> None:
    state = await run(fake, guild, {"start": {"mood": mood}})
    reply = await fake.wait_for(of(state, "followup"), timeout=30)
    assert "radio on" in text_of(reply)


def by_guild(voice: FakeVoice, since: float) -> dict[str, list[Frame]]:
    """The frames received since `since`, by the guild whose voice session sent them."""
    guild_of = {s.ssrc: str(s.identify["server_id"]) for s in voice.sessions if s.identify}
    out: dict[str, list[Frame]] = defaultdict(list)
    for f in voice.frames_since(since):
        out[guild_of[f.ssrc]].append(f)
    return out


async def wait_each(voice: FakeVoice, guilds: list[str], n: int, since: float) -> dict[str, list[Frame]]:
    """Wait until every guild in `guilds` has `n` frames since `since`."""
    deadline = time.monotonic() + 30
    while True:
        got = by_guild(voice, since)
        if all(len(got[g]) >= n for g in guilds):
            return got
        assert time.monotonic() < deadline, {g: len(got[g]) for g in guilds}
        await asyncio.sleep(0.05)


def assert_same_frames(a: list[Frame], b: list[Frame]) -> None:
    """`b`'s 50 middle frames are a run of `a`'s, byte for byte, and arrived at about the same time."""
    window = b[len(b) // 3 : len(b) // 3 + 50]
    assert len(window) == 50 and all(f.opus != OPUS_SILENCE for f in window)
    payloads = [f.opus for f in a]
    assert len({f.opus for f in window}) > 10  # real, changing audio (not one repeated frame)
    i = payloads.index(window[0].opus)  # ValueError: this guild got a frame the other never did
    assert payloads[i : i + 50] == [f.opus for f in window]
    # the same frame at the same moment (each guild reads the live edge on its own 20 ms clock)
    assert abs(a[i].arrived - window[0].arrived) < 0.25


async def test_three_guilds_hear_the_same_frames_and_one_leaving_disturbs_no_one(
    fake_discord, fake_voice, radio_bot, tone_pipeline
):
    guilds = three_guilds(fake_discord)
    ids = [g for g, _ in guilds]
    bot = await radio_bot(tone_pipeline, radio=FAST)
    commands_everywhere(fake_discord)
    await start_in(fake_discord, guilds[0], "rainy")
    composed = len(tone_pipeline.calls)
    await start_in(fake_discord, guilds[1], "rainy")
    await start_in(fake_discord, guilds[2], "rainy")
    assert len(tone_pipeline.calls) <= composed + 1  # the later guilds composed nothing of their own
    assert list(bot.radio.hub.stations) == ["rainy"]
    await fake_voice.wait_session(3)

    t = time.monotonic()
    frames = await wait_each(fake_voice, ids, 150, t)
    for g in ids:
        check_continuous(frames[g])
        assert abs(dominant_hz(audio_of(frames[g])) - TONES["rainy"]) < 5
    assert_same_frames(frames[ids[0]], frames[ids[1]])
    assert_same_frames(frames[ids[0]], frames[ids[2]])
    # every guild has its own now-playing message, in its own channel
    for g in ids:
        channel = fake_discord.guild(g).channel_id
        assert any(
            r.kind == "channel_message"
            and r.ok
            and r.params["channel_id"] == channel
            and (r.json or {}).get("embeds")
            for r in fake_discord.records
        ), f"no now-playing message in guild {g}"

    # guild 1 leaves: the others' streams go on without a gap, the station stays on air
    state = await run(fake_discord, guilds[1], {"stop": {}})
    await fake_discord.wait_for(of(state, "followup"))
    t_stop = time.monotonic()
    after = await wait_each(fake_voice, [ids[0], ids[2]], 100, t_stop)
    assert bot.radio.hub.on_air("rainy") and bot.radio.hub.tuned["rainy"] == {int(ids[0]), int(ids[2])}
    for g in (ids[0], ids[2]):
        check_continuous(by_guild(fake_voice, t)[g])  # across the moment guild 1 left
    assert_same_frames(after[ids[0]], after[ids[2]])
    assert by_guild(fake_voice, t_stop + 0.5)[ids[1]] == []  # guild 1 is silent: it left
    fake_discord.assert_no_errors()


async def test_a_mood_change_tunes_to_a_station_on_air_at_once(
    fake_discord, fake_voice, radio_bot, tone_pipeline
):
    guilds = three_guilds(fake_discord)
    ids = [g for g, _ in guilds]
    bot = await radio_bot(tone_pipeline, radio=FAST)
    commands_everywhere(fake_discord)
    await start_in(fake_discord, guilds[0], "sunny")
    await start_in(fake_discord, guilds[1], "rainy")
    await start_in(fake_discord, guilds[2], "rainy")
    await fake_voice.wait_session(3)
    assert set(bot.radio.hub.stations) == {"sunny", "rainy"}

    # guild 1 switches to sunny, which guild 0 keeps on air: answered at once, sunny at once
    state = await run(fake_discord, guilds[1], {"mood": {"mood": "sunny"}})
    reply = await fake_discord.wait_for(of(state, "interaction_callback"))
    assert reply.json["type"] == 4 and "sunny" in text_of(reply)  # not deferred: nothing to compose
    t = time.monotonic()
    frames = await wait_each(fake_voice, ids, 120, t)
    assert abs(dominant_hz(audio_of(frames[ids[1]][5:55])) - TONES["sunny"]) < 5
    check_continuous(frames[ids[1]])
    assert_same_frames(frames[ids[0]], frames[ids[1]])
    # guild 2 still hears rainy, undisturbed
    assert abs(dominant_hz(audio_of(frames[ids[2]])) - TONES["rainy"]) < 5
    check_continuous(frames[ids[2]])

    # the last rainy listener switches too: the rainy station goes off the air
    state = await run(fake_discord, guilds[2], {"mood": {"mood": "sunny"}})
    await fake_discord.wait_for(of(state, "interaction_callback"))
    assert list(bot.radio.hub.stations) == ["sunny"]
    fake_discord.assert_no_errors()
