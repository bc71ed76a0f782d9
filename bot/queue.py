"""A bounded job queue: a fixed number of workers, one active job per user, a per-user cooldown, and a clear
refusal when full. Jobs are coroutines; the heavy work inside them runs in executors, never on the loop."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Generator
from typing import Any

from bot.errors import AlreadyQueued, OnCooldown, QueueFull

log = logging.getLogger(__name__)

PositionCallback = Callable[[int], Awaitable[None] | None]


class Job:
    """One submitted job. `position` is 1-based among the waiting jobs and 0 once a worker has taken it."""

    def __init__(self, user_id: int, run: Callable[[], Awaitable[Any]], on_position: PositionCallback | None):
        self.user_id = user_id
        self._run = run
        self._on_position = on_position
        self.position = 0
        self.future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def _notify(self, position: int) -> None:
        if position == self.position:
            return
        self.position = position
        if self._on_position is not None:
            try:
                result = self._on_position(position)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("position callback failed")

    def __await__(self) -> Generator[Any, None, Any]:
        return self.future.__await__()


class JobQueue:
    """`workers` workers over at most `maxsize` waiting jobs; see `submit`."""

    def __init__(
        self,
        *,
        maxsize: int,
        workers: int = 1,
        cooldown_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        if maxsize < 1 or workers < 1:
            raise ValueError("maxsize and workers must be at least 1")
        self.maxsize, self.workers, self.cooldown_s = maxsize, workers, cooldown_s
        self._clock = clock
        self._waiting: list[Job] = []
        self._active_users: set[int] = set()
        self._last_submit: dict[int, float] = {}
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.running = 0

    def __len__(self) -> int:
        """Jobs waiting (not counting the ones running)."""
        return len(self._waiting)

    @property
    def busy(self) -> bool:
        """True when every worker is running a job (a new job will wait)."""
        return self.running >= self.workers

    def start(self) -> None:
        """Start the workers (inside the running loop)."""
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._worker(i), name=f"lofi-worker-{i}") for i in range(self.workers)
            ]

    async def stop(self) -> None:
        """Stop the workers; waiting jobs are cancelled."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for job in self._waiting:
            job.future.cancel()
        self._waiting.clear()

    def check(self, user_id: int) -> None:
        """Raise what `submit` would raise for `user_id` (AlreadyQueued, OnCooldown, QueueFull), without queuing."""
        if user_id in self._active_users:
            raise AlreadyQueued()
        last = self._last_submit.get(user_id)
        if last is not None and self.cooldown_s > 0:
            left = last + self.cooldown_s - self._clock()
            if left > 0:
                raise OnCooldown(left)
        if len(self._waiting) >= self.maxsize:
            raise QueueFull(self.maxsize)

    def submit(
        self, user_id: int, run: Callable[[], Awaitable[Any]], *, on_position: PositionCallback | None = None
    ) -> Job:
        """Queue `run()` for `user_id`; returns the Job (await it for the result, read `position`).

        Raises AlreadyQueued if the user has a job waiting or running, OnCooldown if they submitted less than
        `cooldown_s` ago, QueueFull if `maxsize` jobs are waiting.
        """
        self.check(user_id)
        job = Job(user_id, run, on_position)
        self._waiting.append(job)
        job.position = len(self._waiting)
        self._active_users.add(user_id)
        self._last_submit[user_id] = self._clock()
        self._ready.set()
        return job

    async def _take(self) -> Job:
        while not self._waiting:
            self._ready.clear()
            await self._ready.wait()
        job = self._waiting.pop(0)
        for i, other in enumerate(self._waiting, start=1):
            await other._notify(i)
        return job

    async def _worker(self, index: int) -> None:
        while True:
            job = await self._take()
            self.running += 1
            await job._notify(0)
            try:
                result = await job._run()
            except asyncio.CancelledError:
                job.future.cancel()
                raise
            except Exception as exc:
                if not job.future.done():
                    job.future.set_exception(exc)
            else:
                if not job.future.done():
                    job.future.set_result(result)
            finally:
                self.running -= 1
                self._active_users.discard(job.user_id)
