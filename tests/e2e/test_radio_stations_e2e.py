"""Custom stations for real: an admin creates a named station of a mood, tempo and key on the fake Discord; the
radio tunes to it through the real voice client and the fake voice server hears its pieces (the tone pipeline
sounds an asked tempo at 5 Hz a bpm, so 100 bpm is 500 Hz, apart from every mood); guilds with the same recipe
share one broadcast; deleting a station moves its radio back to the mood; a 24/7 radio on a custom station comes
back after a restart."""

from __future__ import annotations

import asyncio
import time

import pytest

from db import radio as radio_repo
from tests.e2e.fake_voice import audio_of, dominant_hz
from tests.e2e.radio_helpers import TONES, listener_in_voice, wait_until
from tests.e2e.test_bot_e2e import ephemeral_reply, of, text_of
from tests.e2e.test_radio_broadcast_e2e import (
    assert_same_frames,
    by_guild,
    commands_everywhere,
    three_guilds,
    wait_each,
)
from tests.e2e.test_radio_e2e import ADMIN, FAST, channel_texts, check_continuous, fields, now_playing

pytestmark = pytest.mark.timeout(150)

NIGHTS = {"name": "Late  Night", "mood": "rainy", "tempo": 100, "key": "eb MAJOR"}
NIGHTS_HZ = 500.0  # 100 bpm
RECIPE = "rainy|100|Eb major"


async def radio(fake, options: dict, *, guild=None, user=None, admin=False):
    return await fake.send_interaction(
        "lofi-radio", options, guild_id=guild, user=user, member_permissions=ADMIN if admin else None
    )


async def reply(fake, state, kind: str = "interaction_callback") -> str:
    rec = await fake.wait_for(of(state, kind), timeout=30)
    assert rec.ok, rec.response
    return text_of(rec)


async def create(fake, guild=None, user=None, **options) -> str:
    state = await radio(fake, {"station-create": options}, guild=guild, user=user, admin=True)
    return await reply(fake, state)


async def station_choices(fake, command: str, typed: str, guild=None) -> list[dict]:
    """The bot's autocomplete answer (callback type 8) for `command`'s station option."""
    option = "name" if command == "station-delete" else "mood"
    state = await fake.send_autocomplete("lofi-radio", {command: {option: typed}}, option, guild_id=guild)
    answer = await fake.wait_for(of(state, "interaction_callback"))
    assert answer.ok and answer.json["type"] == 8, answer.response
    return answer.json["data"]["choices"]


async def stations_list(fake, guild=None) -> str:
    """What `/lofi-radio stations` tells (anyone may ask; only the asker sees it)."""
    state = await radio(fake, {"stations": {}}, guild=guild)
    rec = await fake.wait_for(of(state, "interaction_callback"), timeout=30)
    assert rec.ok and rec.json["data"]["flags"] & 64, rec.response  # ephemeral
    return text_of(rec)


async def pitch_since(voice, t: float, n: int = 100) -> float:
    frames = await voice.wait_frames(n, since=t, timeout=20)
    return dominant_hz(audio_of(frames[-50:]))


async def test_an_admin_creates_a_station_the_radio_plays_it_and_deleting_it_goes_back_to_its_mood(
    fake_discord, fake_voice, radio_bot, tone_pipeline
):
    listener_in_voice(fake_discord)
    bot = await radio_bot(tone_pipeline, radio=FAST)
    assert "no stations of its own" in await stations_list(fake_discord)
    text = await create(fake_discord, **NIGHTS)
    assert "**late night** created (rainy, 100 bpm, Eb major)" in text
    listed = await stations_list(fake_discord)
    assert "- **late night**: rainy, 100 bpm, Eb major\n" in listed + "\n" and "not playing here" in listed

    # start and mood offer the moods and the station
    offered = await station_choices(fake_discord, "start", "")
    assert {"name": "late night (rainy, 100 bpm, Eb major)", "value": "late night"} in offered
    assert {"name": "rainy", "value": "rainy"} in offered
    assert [c["value"] for c in await station_choices(fake_discord, "mood", "LATE")] == ["late night"]

    state = await radio(fake_discord, {"start": {"mood": "late night"}})
    assert "station **late night**" in await reply(fake_discord, state, "followup")
    assert list(bot.radio.hub.stations) == [RECIPE]
    asked = tone_pipeline.calls[-1]
    assert (asked.mood, asked.bpm, asked.key) == ("rainy", 100.0, "Eb major")
    t = time.monotonic()
    assert abs(await pitch_since(fake_voice, t) - NIGHTS_HZ) < 5
    check_continuous(fake_voice.frames_since(t))
    await wait_until(lambda: bool(now_playing(fake_discord)), what="now playing")
    shown = fields(now_playing(fake_discord)[-1]["embed"])
    assert (shown["Station"], shown["Tempo"], shown["Key"]) == ("late night", "100 bpm", "Eb major")
    listed = await stations_list(fake_discord)
    assert "- **late night**: rainy, 100 bpm, Eb major (playing here)" in listed
    assert "rainy," in listed and "(on air)" not in listed  # the mood's own station is not broadcasting

    # deleting the station the radio plays: back to its mood, the custom broadcast off the air
    state = await radio(fake_discord, {"station-delete": {"name": "late night"}}, admin=True)
    assert "went back to the **rainy** station" in await reply(fake_discord, state, "followup")
    assert list(bot.radio.hub.stations) == ["rainy"]
    t = time.monotonic()
    assert abs(await pitch_since(fake_voice, t) - TONES["rainy"]) < 5
    assert "late night" not in [c["value"] for c in await station_choices(fake_discord, "start", "")]
    listed = await stations_list(fake_discord)
    assert "rainy (playing here)" in listed and "no stations of its own" in listed
    async with bot.resources.sessionmaker() as s:
        assert await radio_repo.custom_stations(s, int(fake_discord.guild_id)) == []
        assert (await radio_repo.get_station(s, int(fake_discord.guild_id))).mood == "rainy"
    fake_discord.assert_no_errors()


async def test_refused_a_non_admin_a_bad_or_taken_name_an_unknown_station_and_past_the_limit(
    fake_discord, fake_voice, radio_bot, tone_pipeline
):
    listener_in_voice(fake_discord)
    bot = await radio_bot(tone_pipeline, radio=FAST)
    someone = fake_discord.make_user(1_100_000_000_000_002_000, "someone")

    async def refused(options: dict, *, admin: bool = True, user=None) -> str:
        state = await radio(fake_discord, options, user=user, admin=admin)
        return await ephemeral_reply(fake_discord, state)

    assert "server managers" in await refused({"station-create": NIGHTS}, admin=False, user=someone)
    assert "server managers" in await refused({"station-delete": {"name": "x"}}, admin=False, user=someone)
    for name, why in [
        ("rainy", "is a mood"),
        ("a|b", "letters, digits"),
        ("-dash", "starting with a letter"),
        ("x" * 33, "at most 32"),
    ]:
        assert why in await refused({"station-create": {"name": name, "mood": "rainy"}}), name
    assert "Bad key" in await refused({"station-create": {"name": "k", "mood": "rainy", "key": "H minor"}})
    await create(fake_discord, **NIGHTS)
    assert "already has a station called **late night**" in await refused(
        {"station-create": {"name": "LATE night", "mood": "sunny"}}
    )
    assert "No mood or station called **nope**" in await refused({"start": {"mood": "nope"}}, admin=False)
    assert "no station called **nope**" in await refused({"station-delete": {"name": "nope"}})
    assert fake_voice.sessions == [] and bot.radio.hub.stations == {}  # nothing started

    for i in range(2, 11):
        await create(fake_discord, name=f"station {i}", mood="sunny")
    assert "10 stations, the most" in await refused({"station-create": {"name": "eleven", "mood": "sunny"}})
    # the delete autocomplete offers this server's 10 stations only
    assert len(await station_choices(fake_discord, "station-delete", "")) == 10
    fake_discord.assert_no_errors()


async def test_two_guilds_with_the_same_recipe_share_one_broadcast_and_one_deleting_leaves_the_other(
    fake_discord, fake_voice, radio_bot, tone_pipeline
):
    guilds = three_guilds(fake_discord)
    (a, a_user), (b, b_user) = guilds[0], guilds[1]
    bot = await radio_bot(tone_pipeline, radio=FAST)
    commands_everywhere(fake_discord)
    await create(fake_discord, guild=a, user=a_user, **NIGHTS)
    await create(fake_discord, guild=b, user=b_user, name="focus", mood="rainy", tempo=100, key="Eb")
    # guild b's key names no mode: a rainy track "in Eb" is in Eb minor, another recipe
    await create(fake_discord, guild=b, user=b_user, name="focus major", mood="rainy", tempo=100, key="D#maj")
    assert [c["value"] for c in await station_choices(fake_discord, "start", "focus", guild=b)] == [
        "focus",
        "focus major",
    ]
    assert await station_choices(fake_discord, "start", "late", guild=b) != [
        {"name": "late night (rainy, 100 bpm, Eb major)", "value": "late night"}
    ]  # another guild's station is not offered

    state = await radio(fake_discord, {"start": {"mood": "late night"}}, guild=a, user=a_user)
    await reply(fake_discord, state, "followup")
    composed = len(tone_pipeline.calls)
    state = await radio(fake_discord, {"start": {"mood": "focus major"}}, guild=b, user=b_user)
    assert "station **focus major**" in await reply(fake_discord, state, "followup")
    assert len(tone_pipeline.calls) <= composed + 1  # guild b composed nothing of its own
    assert list(bot.radio.hub.stations) == [RECIPE]
    await fake_voice.wait_session(2)
    t = time.monotonic()
    frames = await wait_each(fake_voice, [a, b], 150, t)
    assert_same_frames(frames[a], frames[b])
    assert abs(dominant_hz(audio_of(frames[b])) - NIGHTS_HZ) < 5

    # guild a deletes its station: it goes back to rainy, guild b keeps the recipe's broadcast
    state = await radio(
        fake_discord, {"station-delete": {"name": "late night"}}, guild=a, user=a_user, admin=True
    )
    assert "went back to the **rainy** station" in await reply(fake_discord, state, "followup")
    await asyncio.sleep(0.3)
    t = time.monotonic()
    frames = await wait_each(fake_voice, [a, b], 100, t)
    assert abs(dominant_hz(audio_of(frames[a])) - TONES["rainy"]) < 5
    assert abs(dominant_hz(audio_of(frames[b])) - NIGHTS_HZ) < 5
    check_continuous(by_guild(fake_voice, t)[b])
    assert set(bot.radio.hub.stations) == {RECIPE, "rainy"}
    fake_discord.assert_no_errors()


async def test_a_24_7_radio_on_a_custom_station_comes_back_on_it_after_a_restart(
    fake_discord, fake_voice, radio_bot, tone_pipeline
):
    listener_in_voice(fake_discord)
    bot = await radio_bot(tone_pipeline, radio=FAST)
    await create(fake_discord, **NIGHTS)
    state = await radio(fake_discord, {"start": {"mood": "late night"}})
    await reply(fake_discord, state, "followup")
    state = await radio(fake_discord, {"24-7": {"enabled": True}}, admin=True)
    assert "24/7 mode on" in await reply(fake_discord, state)
    await fake_voice.wait_frames(20, timeout=10)
    await radio_bot.stop(bot)
    sessions = len([s for s in fake_voice.sessions if s.secret_key])
    restarted = time.monotonic()

    bot2 = await radio_bot(tone_pipeline, radio=FAST)
    await fake_voice.wait_session(sessions + 1, timeout=30)
    assert abs(await pitch_since(fake_voice, restarted) - NIGHTS_HZ) < 5  # the station, not its mood
    await wait_until(
        lambda: any(
            "back on after a restart (station **late night**)" in t for t in channel_texts(fake_discord)
        ),
        what="resumed notice",
    )
    assert list(bot2.radio.hub.stations) == [RECIPE]
    assert bot2.radio.get(int(fake_discord.guild_id)).label == "late night"
    fake_discord.assert_no_errors()
