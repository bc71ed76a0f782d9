"""The whole chain, slow: the real bot, the real engine, tiny real models; on both transports: the engine in
the bot's process (no broker), and `lofi worker` processes behind a real Redis (BROKER_URL)."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from tests.e2e.conftest import ffprobe_format, is_mp3
from tests.e2e.test_bot_e2e import of
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
    await post_a_track(fake_discord, tmp_path)


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
