"""The whole chain, slow: the real bot, the real engine, tiny real models; on both transports: the engine in
the bot's process (no broker), and `lofi worker` processes behind a real Redis (BROKER_URL)."""

from __future__ import annotations

import asyncio
import io
import os
import re
import time
import wave

import pytest

from tests.e2e.conftest import ffprobe_format, is_mp3
from tests.e2e.fake_discord import EPHEMERAL
from tests.e2e.test_bot_e2e import ephemeral_reply, of, text_of
from tests.support.redis_server import RedisServer, redis_available
from tests.support.workers import start_worker

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

needs_redis = pytest.mark.skipif(not redis_available(), reason="redis-server is not installed (make setup)")


@pytest.fixture(scope="module")
def tiny_serving(tmp_path_factory):
    """Two tiny trained members exported to a models dir, served by `serving.server.EmbeddedServer`."""
    from serving.server import EmbeddedServer, config_for_models_dir
    from tests.support.tiny_models import make_tiny_models

    models = tmp_path_factory.mktemp("models")
    make_tiny_models(models, members=2, seed=0, version=1)
    with EmbeddedServer(config_for_models_dir(models), poll_s=0) as server:
        yield server, models


@pytest.fixture
def broker(tiny_serving, tmp_path):
    """A real Redis and a way to start `lofi worker` processes on it (each with the tiny models)."""
    _, models = tiny_serving
    server = RedisServer().start()
    workers = []

    def start(name: str = "worker", redeliver_s: float = 60.0):
        worker = start_worker(server.url, models, tmp_path / f"{name}.log", redeliver_s=redeliver_s)
        workers.append(worker)
        return worker

    yield server, start
    for worker in workers:
        worker.stop()
    server.stop()


async def post_a_track(fake_discord, tmp_path, length: str = "20s"):
    """/lofi through the fake; the follow-up that posts the track (checked: a real MP3 and MIDI, reactions)."""
    state = await fake_discord.send_interaction("lofi", {"length": length, "mood": "rainy"})
    callback = await fake_discord.wait_for(of(state, "interaction_callback"))
    assert callback.ok and callback.json["type"] == 5

    followup = await fake_discord.wait_for(of(state, "followup"), timeout=240)
    assert followup.ok, followup.response
    mp3 = next(f for f in followup.files if f.filename.endswith(".mp3"))
    assert is_mp3(mp3.data) and ffprobe_format(mp3.data, tmp_path) == "mp3"
    assert len(mp3.data) <= fake_discord.upload_limit
    assert any(f.filename.endswith(".mid") and f.data[:4] == b"MThd" for f in followup.files)
    message_id = followup.message["id"]
    await fake_discord.wait_for(
        lambda r: r.kind == "reaction_add" and r.params["message_id"] == message_id, count=2
    )
    fake_discord.assert_no_errors()
    return state


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("transport", ["in-process", pytest.param("broker", marks=needs_redis)])
async def test_lofi_with_the_real_pipeline_and_tiny_models(
    fake_discord, start_bot, tiny_serving, tmp_path, transport, request
):
    server, models = tiny_serving
    overrides = {}
    if transport == "broker":
        redis, start_worker_on = request.getfixturevalue("broker")
        start_worker_on()
        overrides["broker_url"] = redis.url
    # pipeline=None: the resources `lofi bot` opens (its gRPC client, the real engine or the broker's workers)
    await start_bot(serving_address=server.address, models_dir=models, serving_timeout_s=30.0, **overrides)
    state = await post_a_track(fake_discord, tmp_path)
    await stems_and_loop_of(fake_discord, fake_discord.find(of(state, "followup"))[0])


PRODUCER_NAME = re.compile(
    r"(?P<title>[A-Za-z0-9-]+)_(?P<bpm>\d+)bpm_(?P<key>[A-G](sharp|b)?(min|maj))_(?P<part>[a-z0-9-]+)"
)


def wav_frames(data: bytes) -> tuple[int, int, int]:
    """(channels, bytes per sample, frames) of a WAV."""
    with wave.open(io.BytesIO(data)) as w:
        assert w.getframerate() == 44100
        return w.getnchannels(), w.getsampwidth(), w.getnframes()


async def click(fake_discord, track, button: str) -> list:
    """Click ``button`` under the posted ``track``; the files of the ephemeral follow-ups, once it says done."""
    ids = [c["custom_id"] for row in track.json["components"] for c in row["components"]]
    state = await fake_discord.send_component(
        next(i for i in ids if i.startswith(button)), track.message["id"]
    )
    done = await fake_discord.wait_for(
        lambda r: (
            r.interaction_id == state.id
            and r.kind == "original_edit"
            and "✅" in (r.json or {}).get("content", "")
        ),
        timeout=240,
    )
    assert done.ok
    posts = [r for r in fake_discord.find(of(state, "followup")) if r.files]
    for post in posts:
        assert post.ok and int(post.message["flags"]) & EPHEMERAL
        assert len(post.files) <= 10 and sum(len(f.data) for f in post.files) <= fake_discord.upload_limit
    return [f for post in posts for f in post.files]


async def stems_and_loop_of(fake_discord, track) -> None:
    """Stems: five aligned 24-bit WAVs of the track's length and a MIDI per played part, named the producers'
    way with the track's tempo and key; Loop: a 4-bar WAV (20 s hold no 8) and its MIDI, named alike."""
    fields = {f["name"]: f["value"] for f in track.json["embeds"][0]["fields"]}
    bpm, (tonic, mode) = fields["Tempo"].removesuffix(" bpm"), fields["Key"].split()
    key = tonic.replace("#", "sharp") + ("min" if mode == "minor" else "maj")

    stems = await click(fake_discord, track, "lofi:stems:")
    names = {f.filename: PRODUCER_NAME.fullmatch(f.filename.rsplit(".", 1)[0]) for f in stems}
    assert all(names.values()), list(names)
    assert {(m["bpm"], m["key"]) for m in names.values()} == {(bpm, key)}
    parts = {"keys", "bass", "melody", "drums", "ambience"}
    wavs = {names[f.filename]["part"]: f for f in stems if f.filename.endswith(".wav")}
    midis = {names[f.filename]["part"] for f in stems if f.filename.endswith(".mid")}
    assert set(wavs) == parts and midis == parts - {"ambience"}, list(names)
    shapes = {wav_frames(f.data) for f in wavs.values()}
    assert len(shapes) == 1, shapes  # aligned: one length for all
    channels, width, frames = shapes.pop()
    assert (channels, width) == (2, 3) and abs(frames / 44100 - 20.0) < 0.05, frames

    loop = await click(fake_discord, track, "lofi:loop:")
    assert sorted(f.filename.rsplit(".", 1)[1] for f in loop) == ["mid", "wav"]
    match = PRODUCER_NAME.fullmatch(loop[0].filename.rsplit(".", 1)[0])
    assert match and (match["bpm"], match["key"], match["part"]) == (bpm, key, "loop-4bars"), loop[0].filename
    wav = next(f for f in loop if f.filename.endswith(".wav"))
    _, _, frames = wav_frames(wav.data)
    assert abs(frames / 44100 - 4 * 4 * 60 / float(bpm)) < 0.5, frames  # the tempo shown is rounded
    fake_discord.assert_no_errors()


@pytest.mark.slow
@pytest.mark.timeout(400)
@needs_redis
async def test_a_worker_killed_mid_track_still_posts_it_exactly_once(
    fake_discord, start_bot, tiny_serving, broker, tmp_path
):
    from jobs.remote import PROGRESS

    server, models = tiny_serving
    redis, start_worker_on = broker
    workers = [start_worker_on("first", redeliver_s=6.0), start_worker_on("second", redeliver_s=6.0)]
    bot = await start_bot(
        serving_address=server.address, models_dir=models, broker_url=redis.url, job_redeliver_s=6.0
    )
    state = await fake_discord.send_interaction("lofi", {"length": "60s", "mood": "rainy"})
    import redis as redis_client

    client, victim, t0 = redis_client.Redis.from_url(redis.url), None, time.monotonic()
    while victim is None and time.monotonic() - t0 < 120:  # the worker that reports progress on it
        for key in client.keys("celery-task-meta-*"):
            meta = client.get(key)
            if meta and f'"status": "{PROGRESS}"'.encode() in meta:
                victim = next(w for w in workers if f'"pid": {w.pid}'.encode() in meta)
        await asyncio.sleep(0.05)
    assert victim is not None, "no worker reported progress"
    victim.sigkill()

    followup = await fake_discord.wait_for(of(state, "followup"), timeout=240)
    assert followup.ok and any(f.filename.endswith(".mp3") for f in followup.files)
    await asyncio.sleep(8.0)  # longer than the redelivery time: a second post would have come by now
    posts = [r for r in fake_discord.find(of(state, "followup")) if r.files]
    assert len(posts) == 1
    from sqlalchemy import select

    from db.models import Track

    async with bot.resources.sessionmaker() as s:
        tracks = (await s.execute(select(Track))).scalars().all()
    assert [t.status.value for t in tracks] == ["done"]
    fake_discord.assert_no_errors()


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_stems_past_the_upload_limit_come_as_mp3_and_say_so(
    fake_discord, start_bot, tiny_serving, tmp_path
):
    """A 2 MiB limit: a 20 s stem is 5.3 MB as WAV, so the stems come as MP3 with a note saying why, and the
    shortest loop (WAV only: an MP3's padding would break the seam) is refused with the reason."""
    server, models = tiny_serving
    fake_discord.upload_limit = 2 << 20  # what Discord tells the bot for this channel, and enforces
    await start_bot(serving_address=server.address, models_dir=models, serving_timeout_s=30.0)
    state = await post_a_track(fake_discord, tmp_path)
    track = fake_discord.find(of(state, "followup"))[0]

    stems = await click(fake_discord, track, "lofi:stems:")
    audio = sorted(f.filename.rsplit("_", 1)[1] for f in stems if not f.filename.endswith(".mid"))
    assert audio == ["ambience.mp3", "bass.mp3", "drums.mp3", "keys.mp3", "melody.mp3"]
    assert all(is_mp3(f.data) for f in stems if f.filename.endswith(".mp3"))
    first = next(
        r for r in fake_discord.records if r.kind == "followup" and r.files and "stems" in text_of(r)
    )
    assert "2 MiB upload limit: these are MP3" in text_of(first), text_of(first)

    ids = [c["custom_id"] for row in track.json["components"] for c in row["components"]]
    loop = await fake_discord.send_component(
        next(i for i in ids if i.startswith("lofi:loop:")), track.message["id"]
    )
    text = await ephemeral_reply(fake_discord, loop)
    assert "4-bar loop" in text and "upload limit" in text, text
    assert not [r for r in fake_discord.find(of(loop, "followup")) if r.files]
    fake_discord.assert_no_errors()
