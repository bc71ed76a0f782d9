"""The radio for real: the real bot joins voice on the fake Discord, the real discord.py voice client streams
encrypted Opus over UDP to the fake voice server, which decrypts and decodes it; the tests listen."""

from __future__ import annotations

import asyncio
import os
import time

import numpy as np
import pytest

from bot.radio.station import RadioConfig
from tests.e2e.fake_voice import audio_of, dominant_hz, max_gap_ms, rms_dbfs
from tests.e2e.radio_helpers import TONES, listener_in_voice, wait_until
from tests.e2e.test_bot_e2e import of, text_of
from tests.e2e.tones import AMPLITUDE

FAST = RadioConfig(
    piece_length_s=4.0, crossfade_s=1.0, ahead_s=5.0, retry_s=0.2, retry_max_s=0.5, empty_grace_s=0.5
)
ADMIN = str(1 << 5)  # manage guild

pytestmark = pytest.mark.timeout(120)


def gap_bound_ms() -> float:
    """60 ms (the goal) when the machine has a core to spare; 500 ms (still no audible dropout after a client's
    jitter buffer, and every frame arrives in order) when it is oversubscribed. On this 2-core machine the
    suite runs two test workers at once (`-n 2`), so the other worker's renders starve the sender thread
    whatever the bot does: 100-350 ms at load 10+, and 442 ms once at a load average (which lags) of 1.6."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    spare = workers < (os.cpu_count() or 1) and os.getloadavg()[0] <= (os.cpu_count() or 1)
    return 60.0 if spare else 500.0


def check_continuous(frames, *, max_gap=None) -> None:
    """What a listener needs: every 20 ms frame, in order, none missing, none late by more than `max_gap`."""
    max_gap = gap_bound_ms() if max_gap is None else max_gap
    assert frames, "no audio"
    seqs = np.array([f.seq for f in frames])
    stamps = np.array([f.timestamp for f in frames], dtype=np.int64)
    assert np.all(np.diff(seqs) % 65536 == 1), "RTP sequence numbers skip"
    assert np.all(np.diff(stamps) % 2**32 == 960), "RTP timestamps do not advance by 20 ms"
    assert all(f.pcm.shape == (960, 2) for f in frames)
    gap = max_gap_ms(frames)
    if gap > max_gap:
        t = np.array([f.arrived for f in frames])
        i = int(np.argmax(np.diff(t)))
        raise AssertionError(
            f"a {gap:.0f} ms gap between voice packets, after frame {i} of {len(frames)} "
            f"(bound {max_gap:.0f} ms, load {os.getloadavg()[0]:.1f})"
        )


async def start_radio(fake_discord, mood="rainy"):
    state = await fake_discord.send_interaction("lofi-radio", {"start": {"mood": mood}})
    callback = await fake_discord.wait_for(of(state, "interaction_callback"))
    assert callback.ok and callback.json["type"] == 5  # deferred: composing the first piece takes a while
    reply = await fake_discord.wait_for(of(state, "followup"), timeout=30)
    assert "radio on" in text_of(reply)
    return state


def now_playing(fake_discord) -> list[dict]:
    """Every now-playing embed the bot sent or edited in the text channel, in order."""
    out = []
    for r in fake_discord.records:
        if r.kind in ("channel_message", "message_edit") and r.ok:
            for e in (r.json or {}).get("embeds") or []:
                if (e.get("title") or "").startswith("📻"):
                    out.append(
                        {"embed": e, "message": r.message, "components": (r.json or {}).get("components")}
                    )
    return out


def fields(embed) -> dict[str, str]:
    return {f["name"]: f["value"] for f in embed.get("fields") or []}


def channel_texts(fake_discord) -> list[str]:
    return [text_of(r) for r in fake_discord.records if r.kind == "channel_message" and r.ok]


async def test_radio_plays_a_continuous_crossfaded_stream(fake_discord, fake_voice, radio_bot, tone_pipeline):
    listener_in_voice(fake_discord)
    bot = await radio_bot(tone_pipeline, radio=FAST)
    await start_radio(fake_discord, "rainy")

    session = await fake_voice.wait_session(1)
    assert session.identify["max_dave_protocol_version"] >= 1  # davey loaded: discord.py offers DAVE
    assert session.selected["mode"] == "aead_xchacha20_poly1305_rtpsize"
    assert str(fake_discord.voice_requests[0]["channel_id"]) == fake_discord.voice_channel_id
    assert fake_discord.voice_requests[0]["self_deaf"] is True
    first = await fake_voice.wait_frames(1, timeout=10)
    # about 9 s of audio: two transitions between 4 s pieces with 1 s crossfades
    frames = await fake_voice.wait_frames(450, since=first[0].t, timeout=30)
    check_continuous(frames)
    audio = audio_of(frames)
    level = rms_dbfs(audio)
    expected = 20 * np.log10(AMPLITUDE / np.sqrt(2))
    assert abs(level - expected) < 2.0, (level, expected)  # a level near the track's, transitions included
    # the quietest 100 ms (the middle of a crossfade included) is still music, not silence
    windows = audio[: len(audio) // 4800 * 4800].reshape(-1, 4800, 2)
    assert min(rms_dbfs(w) for w in windows) > expected - 6.0
    assert abs(dominant_hz(audio) - TONES["rainy"]) < 5
    radio = bot.radio.get(int(fake_discord.guild_id))
    assert radio.station.stream.underruns == 0
    assert radio.station.stream.pieces_started >= 3

    playing = now_playing(fake_discord)
    assert len(playing) >= 2  # posted once, edited at each transition
    assert len({p["message"]["id"] for p in playing}) == 1
    f = fields(playing[-1]["embed"])
    assert f["Mood"] == "rainy" and f["Key"] == "A minor" and f["Tempo"] == "84 bpm" and f["Seed"].isdigit()
    fake_discord.assert_no_errors()


async def test_mood_change_switches_station_at_once(fake_discord, fake_voice, radio_bot, tone_pipeline):
    listener_in_voice(fake_discord)
    bot = await radio_bot(tone_pipeline, radio=FAST)
    await start_radio(fake_discord, "rainy")
    await fake_voice.wait_frames(50, timeout=10)
    state = await fake_discord.send_interaction("lofi-radio", {"mood": {"mood": "sunny"}})
    callback = await fake_discord.wait_for(of(state, "interaction_callback"))
    assert callback.json["type"] == 5  # no sunny station on air yet: deferred while its first piece composes
    reply = await fake_discord.wait_for(of(state, "followup"), timeout=30)
    assert "sunny" in text_of(reply)
    t_switched = time.monotonic()
    # no waiting for the rainy pieces already composed: the very next frames are the sunny station's
    frames = await fake_voice.wait_frames(60, since=t_switched, timeout=10)
    check_continuous(frames)
    assert abs(dominant_hz(audio_of(frames[5:55])) - TONES["sunny"]) < 5
    assert not bot.radio.on_air("rainy")  # nobody listens to rainy any more: off the air
    await wait_until(
        lambda: any(fields(p["embed"]).get("Mood") == "sunny" for p in now_playing(fake_discord)),
        what="a sunny now-playing message",
    )
    fake_discord.assert_no_errors()


async def test_post_button_posts_the_piece_and_votes_count(
    fake_discord, fake_voice, radio_bot, tone_pipeline
):
    from db.models import Vote

    listener_in_voice(fake_discord)
    bot = await radio_bot(tone_pipeline, radio=FAST)
    await start_radio(fake_discord)
    await wait_until(lambda: now_playing(fake_discord), what="a now-playing message")
    playing = now_playing(fake_discord)[-1]
    message_id = playing["message"]["id"]
    custom_id = playing["components"][0]["components"][0]["custom_id"]
    track_id = int(custom_id.rsplit(":", 1)[1])
    state = await fake_discord.send_component(custom_id, message_id)
    post = await fake_discord.wait_for(of(state, "followup"), timeout=15)
    names = [f.filename for f in post.files]
    assert any(n.endswith(".mp3") for n in names) and any(n.endswith(".mid") for n in names)
    posted = post.message["id"]
    await fake_discord.wait_for(
        lambda r: r.kind == "reaction_add" and r.params["message_id"] == posted, count=2
    )
    await fake_discord.add_reaction(fake_discord.channel_id, posted, fake_discord.default_user["id"], "👍")

    from sqlalchemy import select

    vote = None
    for _ in range(200):  # the vote is stored by the bot's raw reaction listener
        async with bot.sessionmaker() as s:
            vote = (await s.execute(select(Vote).where(Vote.track_id == track_id))).scalar_one_or_none()
        if vote is not None:
            break
        await asyncio.sleep(0.05)
    assert vote is not None and vote.value == 1
    fake_discord.assert_no_errors()


async def test_stop_leaves_the_channel_and_sleep_sets_a_timer(
    fake_discord, fake_voice, radio_bot, tone_pipeline
):
    from db.radio import get_station

    listener_in_voice(fake_discord)
    bot = await radio_bot(tone_pipeline, radio=FAST)
    await start_radio(fake_discord)
    await fake_voice.wait_frames(20, timeout=10)
    guild = int(fake_discord.guild_id)

    state = await fake_discord.send_interaction("lofi-radio", {"sleep": {"after": "30m"}})
    reply = await fake_discord.wait_for(of(state, "interaction_callback"))
    assert "30m" in text_of(reply)
    async with bot.sessionmaker() as s:
        assert (await get_station(s, guild)).stop_at is not None

    state = await fake_discord.send_interaction("lofi-radio", {"stop": {}})
    await fake_discord.wait_for(of(state, "followup"))
    assert fake_discord.voice_requests[-1]["channel_id"] is None  # left voice (op 4, no channel)
    assert bot.radio.get(guild) is None
    stopped_at = time.monotonic()
    await asyncio.sleep(0.5)
    assert len(fake_voice.frames_since(stopped_at + 0.2)) == 0
    async with bot.sessionmaker() as s:
        assert (await get_station(s, guild)).active is False
    # and a sleep timer that runs out stops it too
    await start_radio(fake_discord)
    await bot.radio.sleep(guild, 0.5)
    await wait_until(lambda: any("sleep timer" in t for t in channel_texts(fake_discord)), what="sleep stop")
    assert bot.radio.get(guild) is None
    fake_discord.assert_no_errors()


async def test_model_server_down_plays_the_buffer_out_then_resumes(
    fake_discord, fake_voice, radio_bot, tone_pipeline
):
    listener_in_voice(fake_discord)
    bot = await radio_bot(tone_pipeline, radio=FAST)
    await start_radio(fake_discord)
    await fake_voice.wait_frames(50, timeout=10)
    radio = bot.radio.get(int(fake_discord.guild_id))
    tone_pipeline.down = True
    t_down = time.monotonic()
    await wait_until(
        lambda: any("not answering" in t for t in channel_texts(fake_discord)), what="down notice"
    )
    await wait_until(lambda: radio.station.stream.underruns > 0, timeout=30, what="the buffer to run out")
    buffered = time.monotonic() - t_down
    assert buffered > 2.0  # the composed-ahead audio kept playing first
    tone_pipeline.down = False
    await wait_until(lambda: any("is back" in t for t in channel_texts(fake_discord)), what="back notice")
    t_up = time.monotonic()
    # music again once back (the next piece is composed first), and the player never stopped meanwhile:
    # silence frames while the buffer was empty, every frame in order
    await wait_until(
        lambda: rms_dbfs(audio_of(fake_voice.frames_since(t_up)[-25:])) > -20, timeout=30, what="music again"
    )
    check_continuous(fake_voice.frames_since(t_down))
    fake_discord.assert_no_errors()


async def test_24_7_reconnects_after_a_kick_and_discord_py_reconnects_a_dropped_socket(
    fake_discord, fake_voice, radio_bot, tone_pipeline
):
    listener_in_voice(fake_discord)
    bot = await radio_bot(tone_pipeline, radio=FAST)
    await start_radio(fake_discord)
    await fake_voice.wait_session(1)
    state = await fake_discord.send_interaction(
        "lofi-radio", {"24-7": {"enabled": True}}, member_permissions=ADMIN
    )
    assert "24/7 mode on" in text_of(await fake_discord.wait_for(of(state, "interaction_callback")))

    # a dropped voice websocket (abnormal close): discord.py reconnects by itself, with a new session, within
    # its backoff (< 2 s) and not the 30 s its socket reader would otherwise wait (bot.radio.voice_client)
    await fake_voice.drop(code=4000)
    await fake_voice.wait_session(2, timeout=12)
    t = time.monotonic()
    check_continuous(await fake_voice.wait_frames(50, since=t, timeout=30))

    # a moderator disconnects the bot: discord.py gives up, the 24/7 radio joins again
    await fake_discord.disconnect_bot_voice()
    await fake_voice.wait_session(3, timeout=30)
    t = time.monotonic()
    frames = await fake_voice.wait_frames(50, since=t, timeout=15)
    check_continuous(frames)
    assert rms_dbfs(audio_of(frames)) > -20
    await wait_until(lambda: any("reconnected" in t for t in channel_texts(fake_discord)), what="notice")
    assert bot.radio.get(int(fake_discord.guild_id)).reconnects == 1
    fake_discord.assert_no_errors()


async def test_a_player_discord_py_gives_up_on_while_reconnecting_is_started_again(
    fake_discord, fake_voice, radio_bot, tone_pipeline, monkeypatch
):
    """discord.py's player, finding the connection gone, waits to be reconnected; disconnect wakes it early, it
    finds no connection yet and its thread ends, while `is_playing()` stays true. The race is one player tick
    (20 ms) in a few milliseconds; a slower disconnect makes it certain, and the radio must still play on."""
    from discord.voice_state import VoiceConnectionState

    voice_disconnect = VoiceConnectionState._voice_disconnect

    async def slow_voice_disconnect(self):
        await voice_disconnect(self)
        await asyncio.sleep(0.3)  # the player sees the connection gone before disconnect wakes it

    monkeypatch.setattr(VoiceConnectionState, "_voice_disconnect", slow_voice_disconnect)
    listener_in_voice(fake_discord)
    bot = await radio_bot(tone_pipeline, radio=FAST)
    await start_radio(fake_discord)
    await fake_voice.wait_frames(25, timeout=15)

    await fake_voice.drop(code=4000)
    await fake_voice.wait_session(2, timeout=12)
    t = time.monotonic()
    frames = await fake_voice.wait_frames(50, since=t, timeout=10)
    check_continuous(frames)
    assert rms_dbfs(audio_of(frames)) > -20
    assert bot.radio.get(int(fake_discord.guild_id)).reconnects == 0  # discord.py's own reconnect, not ours
    fake_discord.assert_no_errors()


async def test_24_7_radio_comes_back_after_a_restart(fake_discord, fake_voice, radio_bot, tone_pipeline):
    listener_in_voice(fake_discord)
    bot = await radio_bot(tone_pipeline, radio=FAST)
    await start_radio(fake_discord, "night")
    await fake_voice.wait_frames(20, timeout=10)
    await radio_bot.stop(bot)
    sessions = len([s for s in fake_voice.sessions if s.secret_key])
    restarted = time.monotonic()

    bot2 = await radio_bot(tone_pipeline, radio=FAST)
    await fake_voice.wait_session(sessions + 1, timeout=30)
    frames = await fake_voice.wait_frames(100, since=restarted, timeout=20)
    check_continuous(frames[5:])
    assert abs(dominant_hz(audio_of(frames[-50:])) - TONES["night"]) < 5  # the saved mood
    await wait_until(lambda: any("back on after a restart" in t for t in channel_texts(fake_discord)))
    assert bot2.radio.get(int(fake_discord.guild_id)) is not None
    fake_discord.assert_no_errors()


async def test_an_empty_channel_stops_the_radio_unless_24_7(
    fake_discord, fake_voice, radio_bot, tone_pipeline
):
    user = listener_in_voice(fake_discord)
    bot = await radio_bot(tone_pipeline, radio=FAST)
    guild = int(fake_discord.guild_id)
    await start_radio(fake_discord)
    await fake_discord.set_user_voice(user, None)
    await wait_until(
        lambda: any("everyone left" in t for t in channel_texts(fake_discord)), what="empty stop"
    )
    assert bot.radio.get(guild) is None

    await fake_discord.set_user_voice(user, fake_discord.voice_channel_id)
    await start_radio(fake_discord)
    state = await fake_discord.send_interaction(
        "lofi-radio", {"24-7": {"enabled": True}}, member_permissions=ADMIN
    )
    await fake_discord.wait_for(of(state, "interaction_callback"))
    await fake_discord.set_user_voice(user, None)
    t = time.monotonic()
    await fake_voice.wait_frames(100, since=t, timeout=10)
    assert bot.radio.get(guild) is not None  # 24/7: it stays
    fake_discord.assert_no_errors()


async def test_start_outside_a_voice_channel_is_refused(fake_discord, fake_voice, radio_bot, tone_pipeline):
    from tests.e2e.test_bot_e2e import ephemeral_reply

    await radio_bot(tone_pipeline, radio=FAST)
    state = await fake_discord.send_interaction("lofi-radio", {"start": {}})
    assert "Join a voice channel" in await ephemeral_reply(fake_discord, state)
    assert fake_discord.voice_requests == []
    someone = fake_discord.make_user(1_100_000_000_000_002_000, "someone")
    state = await fake_discord.send_interaction("lofi-radio", {"24-7": {"enabled": True}}, user=someone)
    assert "server managers" in await ephemeral_reply(fake_discord, state)
