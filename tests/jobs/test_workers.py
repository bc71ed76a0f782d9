"""Tracks made by real `lofi worker` processes through a real Redis: delivered at least once when a worker is
killed mid-job, nothing lost when the broker itself is killed and restarted."""

from __future__ import annotations

import asyncio
import time

import pytest

from jobs.celery_app import make_celery_app
from jobs.remote import PROGRESS, BrokerTrackMaker
from music.progress import Stage
from music.request import TrackRequest
from tests.support.redis_server import RedisServer, redis_available
from tests.support.workers import start_worker

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(400),
    pytest.mark.skipif(
        not redis_available(), reason="redis-server is not installed (make setup installs it)"
    ),
]

REDELIVER_S = 6.0


@pytest.fixture(scope="module")
def tiny_models_dir(tmp_path_factory):
    from tests.support.tiny_models import make_tiny_models

    models = tmp_path_factory.mktemp("models")
    make_tiny_models(models, members=2, seed=0, version=1)
    return models


@pytest.fixture
def redis_server():
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def workers(redis_server, tiny_models_dir, tmp_path):
    started = []

    def start(name: str):
        worker = start_worker(
            redis_server.url, tiny_models_dir, tmp_path / f"{name}.log", redeliver_s=REDELIVER_S
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def maker_on(redis_server, deadline_s: float = 240.0) -> BrokerTrackMaker:
    return BrokerTrackMaker(make_celery_app(redis_server.url, redeliver_s=REDELIVER_S), deadline_s=deadline_s)


async def test_a_worker_makes_the_track_and_the_bot_gets_its_files(redis_server, workers, tmp_path):
    workers("one")
    maker = maker_on(redis_server)
    assert list((await maker.worker_status()).values()) == [0]  # /lofi-status sees the idle worker
    stages: list[str] = []
    result = await maker.make_track(
        TrackRequest(length_s=20.0, mood="rainy", seed=3),
        tmp_path / "out",
        progress=lambda s, f=None: stages.append(s),
    )
    assert result.files.mp3.parent == tmp_path / "out"
    assert result.files.mp3.read_bytes()[:3] in (b"ID3", b"\xff\xfb", b"\xff\xf3")
    assert result.files.midi.read_bytes()[:4] == b"MThd"
    assert result.files.cover.is_file() and len(result.tokens) > 10
    assert result.versions
    # the worker's progress reached the bot, in the order of the stages (polled: quick ones may pass unseen)
    order = list(Stage)
    assert stages and [order.index(s) for s in stages] == sorted(order.index(s) for s in stages)
    # the result (the files' bytes) does not stay in the broker once collected
    assert maker.app.backend.client.keys("celery-task-meta-*") == []
    # Extend crosses the broker too: the longer track keeps the posted one's tokens as its beginning
    longer = await maker.extend_track(
        TrackRequest(length_s=35.0, mood="rainy", seed=3),
        tmp_path / "longer",
        prefix=result.tokens,
        base=TrackRequest(length_s=20.0, mood="rainy", seed=3),
    )
    assert longer.tokens[: len(result.tokens) - 1] == result.tokens[:-1]
    assert len(longer.tokens) > len(result.tokens) and longer.files.duration_s > result.files.duration_s
    # Stems cross it too: the worker renders them from the track's tokens and facts, the bot gets the files
    f = result.files
    facts = TrackRequest(f.duration_s, f.mood, 3, f.bpm, f.key)
    stems = await maker.render_stems(result.tokens, facts, tmp_path / "stems", size_limit=10 << 20)
    assert {p.parent for p in stems.files} == {tmp_path / "stems"}
    wavs = [p for p in stems.files if p.suffix == ".wav"]
    assert [p.stem.rsplit("_", 1)[1] for p in wavs] == ["keys", "bass", "melody", "drums", "ambience"]
    assert all(p.read_bytes()[:4] == b"RIFF" for p in wavs) and len(stems.files) == 9
    assert maker.app.backend.client.keys("celery-task-meta-*") == []


async def test_a_worker_killed_mid_job_leaves_it_to_another(redis_server, workers, tmp_path):
    first, second = workers("first"), workers("second")
    maker = maker_on(redis_server)
    request = TrackRequest(length_s=60.0, mood="chill", seed=11)
    job = asyncio.create_task(maker.make_track(request, tmp_path / "out"))
    # wait until a worker reports progress on the job, then kill that worker's whole process
    backend, victim, t0 = maker.app.backend, None, time.monotonic()
    while victim is None and time.monotonic() - t0 < 120:
        for key in backend.client.keys("celery-task-meta-*"):
            meta = backend.get_task_meta(key.decode().removeprefix("celery-task-meta-"))
            if meta["status"] == PROGRESS:
                victim = first if meta["result"]["pid"] == first.pid else second
        await asyncio.sleep(0.05)
    assert victim is not None, "no worker reported progress"
    victim.sigkill()
    survivor = second if victim is first else first
    try:
        result = await asyncio.wait_for(job, timeout=240)
    except Exception as exc:  # say what the survivor did: the failure is otherwise a bare timeout
        raise AssertionError(f"{exc!r}; survivor log:\n{survivor.output()[-3000:]}") from exc
    assert result.files.mp3.is_file() and result.files.duration_s == pytest.approx(60.0, abs=1.0)
    # the survivor took it after the redelivery time and made it once (a job logs its start and its end)
    assert survivor.output().count(": made ") == 1 and ": made " not in victim.output()


async def test_a_broker_killed_and_restarted_loses_no_accepted_job(redis_server, workers, tmp_path):
    maker = maker_on(redis_server)
    job = asyncio.create_task(maker.make_track(TrackRequest(20.0, "sunny", 5), tmp_path / "out"))
    while not maker.app.backend.client.llen("lofi.tracks"):  # accepted: it is in the queue
        await asyncio.sleep(0.05)
    redis_server.kill()  # SIGKILL: nothing is flushed at exit; only what the append-only file holds survives
    await asyncio.sleep(1.0)  # the bot keeps waiting for its result meanwhile
    redis_server.start()
    workers("late")  # no worker was running when the job was accepted
    result = await asyncio.wait_for(job, timeout=240)
    assert result.files.mp3.is_file()
