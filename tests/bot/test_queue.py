"""The job queue: bounded, one active job per user, per-user cooldown, positions, failures."""

from __future__ import annotations

import asyncio

import pytest

from bot.errors import AlreadyQueued, OnCooldown, QueueFull
from bot.queue import JobQueue


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _blocker():
    gate = asyncio.Event()

    async def job():
        await gate.wait()
        return "done"

    return gate, job


async def test_runs_job_and_returns_result():
    q = JobQueue(maxsize=2, workers=1)
    q.start()
    try:

        async def job():
            return 42

        assert await q.submit(1, job) == 42
    finally:
        await q.stop()


async def test_one_active_job_per_user():
    q = JobQueue(maxsize=5, workers=1)
    q.start()
    gate, job = _blocker()
    try:
        first = q.submit(1, job)
        with pytest.raises(AlreadyQueued):
            q.submit(1, job)
        q.submit(2, job)  # others are not affected
        gate.set()
        assert await first == "done"
        q.submit(1, job)  # allowed again once finished
    finally:
        gate.set()
        await q.stop()


async def test_full_queue_refuses():
    q = JobQueue(maxsize=2, workers=1)  # not started: nothing leaves the queue
    gate, job = _blocker()
    q.submit(1, job)
    q.submit(2, job)
    with pytest.raises(QueueFull) as err:
        q.submit(3, job)
    assert "try again" in str(err.value)
    assert len(q) == 2
    await q.stop()


async def test_cooldown_per_user():
    clock = Clock()
    q = JobQueue(maxsize=5, workers=1, cooldown_s=20, clock=clock)
    q.start()
    try:

        async def job():
            return None

        await q.submit(1, job)
        await asyncio.sleep(0)
        clock.now += 5
        with pytest.raises(OnCooldown) as err:
            q.submit(1, job)
        assert err.value.retry_after == pytest.approx(15)
        await q.submit(2, job)  # another user is not cooled down
        clock.now += 15.1
        await q.submit(1, job)
    finally:
        await q.stop()


async def test_positions_move_up():
    q = JobQueue(maxsize=5, workers=1)
    gate, job = _blocker()
    seen: list[int] = []
    running = q.submit(1, job)
    second = q.submit(2, job)
    third = q.submit(3, job, on_position=seen.append)
    assert (running.position, second.position, third.position) == (1, 2, 3)
    q.start()
    for _ in range(5):
        await asyncio.sleep(0)
    assert running.position == 0 and second.position == 1 and seen == [2]
    gate.set()
    await asyncio.gather(running, second, third)
    assert seen == [2, 1, 0]
    await q.stop()


async def test_worker_survives_a_failing_job():
    q = JobQueue(maxsize=5, workers=1)
    q.start()
    try:

        async def bad():
            raise RuntimeError("boom")

        async def good():
            return "ok"

        with pytest.raises(RuntimeError):
            await q.submit(1, bad)
        assert await q.submit(1, good) == "ok"
    finally:
        await q.stop()


async def test_workers_run_in_parallel():
    q = JobQueue(maxsize=5, workers=2)
    q.start()
    started = 0
    both = asyncio.Event()

    async def job():
        nonlocal started
        started += 1
        if started == 2:
            both.set()
        await asyncio.wait_for(both.wait(), 2)

    try:
        await asyncio.gather(q.submit(1, job), q.submit(2, job))
    finally:
        await q.stop()


async def test_stop_cancels_waiting_jobs():
    q = JobQueue(maxsize=5, workers=1)
    gate, job = _blocker()
    waiting = q.submit(1, job)
    await q.stop()
    with pytest.raises(asyncio.CancelledError):
        await waiting
