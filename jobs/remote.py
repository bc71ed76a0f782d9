"""The bot's side of the broker: a `bot.resources.TrackMaker` whose tracks `lofi worker` processes make.

The bot keeps everything a user sees (the bounded queue, cooldowns, the database record, posting); only the
engine's call crosses the broker. Each call is one Celery task with an id of its own; the bot waits for that
id's result and posts once, so a job that a second worker ran again (its first worker killed) is still posted
exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from celery import Celery

from compose.pipeline import TrackResult
from jobs.celery_app import TRACK_QUEUE, TRACK_TASK
from jobs.errors import JobFailed, JobTimedOut, QueueUnavailable
from jobs.exports import ExportJob, export_from_wire
from jobs.wire import TrackJob, Wire, failure_of, result_from_wire
from music.producer_files import ExportFiles
from music.progress import Progress, Stage
from music.request import TrackRequest

log = logging.getLogger(__name__)

# Celery's states, as its result store writes them (PROGRESS is the workers' own, see jobs.worker)
SUCCESS, FAILURE, PROGRESS = "SUCCESS", "FAILURE", "PROGRESS"


class BrokerTrackMaker:
    """Makes tracks on the workers behind `app`'s broker.

    Args:
        app: the Celery application (`jobs.celery_app.make_celery_app`).
        deadline_s: how long a job may take from sending to result, waiting for a free worker and one
            redelivery included; past it the job is revoked and JobTimedOut raised.
        poll_s: how often the result store is read (a GET of one key on loopback or the LAN).
    """

    def __init__(self, app: Celery, *, deadline_s: float, poll_s: float = 0.25):
        self.app = app
        self.deadline_s = deadline_s
        self.poll_s = poll_s

    async def make_track(
        self,
        request: TrackRequest,
        out_dir: Path,
        *,
        progress: Progress | None = None,
        size_limit: int | None = None,
    ) -> TrackResult:
        """A new track for `request`, made by a worker, its files written into `out_dir`."""
        return await self.run(TrackJob(request, size_limit), Path(out_dir), progress)

    async def extend_track(
        self,
        request: TrackRequest,
        out_dir: Path,
        *,
        prefix: Sequence[int],
        base: TrackRequest,
        progress: Progress | None = None,
        size_limit: int | None = None,
    ) -> TrackResult:
        """A longer version of the track `base` asked for and `prefix` holds, made by a worker."""
        job = TrackJob(request, size_limit, tuple(int(t) for t in prefix), base)
        return await self.run(job, Path(out_dir), progress)

    async def worker_status(self) -> dict[str, int]:
        """Each worker that answered within a second, with the number of tracks it is making (`/lofi-status`);
        QueueUnavailable when the broker cannot be asked."""
        inspect = self.app.control.inspect(timeout=1.0)
        try:
            active = await asyncio.to_thread(inspect.active)
        except Exception as exc:
            raise _unreachable(exc) from exc
        return {str(name): len(jobs) for name, jobs in (active or {}).items()}

    async def render_stems(
        self, tokens: Sequence[int], facts: TrackRequest, out_dir: Path, *, size_limit: int | None = None
    ) -> ExportFiles:
        """The stems of a finished track, rendered by a worker, written into `out_dir`."""
        return await self.export(ExportJob("stems", tuple(tokens), facts, None, size_limit), Path(out_dir))

    async def render_loop(
        self,
        tokens: Sequence[int],
        facts: TrackRequest,
        bars: int,
        out_dir: Path,
        *,
        size_limit: int | None = None,
    ) -> ExportFiles:
        """A seamless loop of a finished track, rendered by a worker, written into `out_dir`."""
        return await self.export(ExportJob("loop", tuple(tokens), facts, bars, size_limit), Path(out_dir))

    async def run(self, job: TrackJob, out_dir: Path, progress: Progress | None = None) -> TrackResult:
        """Send `job`, wait for its result within the deadline, write its files into `out_dir`."""
        data = await self._round_trip(job.to_wire(), "track", progress)
        return await asyncio.to_thread(result_from_wire, data, job, out_dir)

    async def export(self, job: ExportJob, out_dir: Path) -> ExportFiles:
        """Send the stems or loop `job`, wait for its files within the deadline, write them into `out_dir`."""
        data = await self._round_trip(job.to_wire(), job.kind, None)
        return await asyncio.to_thread(export_from_wire, data, out_dir)

    async def _round_trip(self, payload: Wire, kind: str, progress: Progress | None) -> Mapping[str, Any]:
        task_id = f"{kind}-{uuid.uuid4().hex}"
        await self._send(payload, task_id)
        try:
            data = await self._wait(task_id, progress)
        except asyncio.CancelledError:
            # the bot is stopping: no worker should spend minutes on a track nobody will post
            with contextlib.suppress(Exception):
                self.app.control.revoke(task_id)
            raise
        finally:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.app.backend.forget, task_id)  # the files leave the broker
        error = failure_of(data)
        if error is not None:
            raise error
        return data

    async def _send(self, payload: Wire, task_id: str) -> None:
        try:
            await asyncio.to_thread(
                self.app.send_task,
                TRACK_TASK,
                args=[payload],
                task_id=task_id,
                queue=TRACK_QUEUE,
                retry=True,
                retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5},
            )
        # kombu's OperationalError and redis's connection errors, whatever wraps them
        except Exception as exc:
            raise _unreachable(exc) from exc

    async def _wait(self, task_id: str, progress: Progress | None) -> Mapping[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.deadline_s
        reported: object = None
        broker_down = False
        while True:
            try:
                meta = await asyncio.to_thread(self.app.backend.get_task_meta, task_id)
                if broker_down:
                    log.info("the broker answers again; job %s is still awaited", task_id)
                broker_down = False
            except Exception as exc:  # a broker restarting: it keeps what it accepted, so keep waiting
                if not broker_down:
                    log.warning("cannot read job %s from the broker (%s); still waiting", task_id, exc)
                broker_down, meta = True, {}
            status, info = meta.get("status"), meta.get("result")
            if status == SUCCESS and isinstance(info, Mapping):
                return info
            if status == FAILURE:
                raise JobFailed(f"the worker failed: {info}")
            if status == PROGRESS and progress is not None and info != reported and isinstance(info, Mapping):
                reported = info
                fraction = info.get("fraction")
                progress(Stage(str(info["stage"])), None if fraction is None else float(fraction))
            if loop.time() >= deadline:
                with contextlib.suppress(Exception):
                    self.app.control.revoke(task_id)
                raise JobTimedOut(f"no worker finished the track within {self.deadline_s:.0f} s")
            await asyncio.sleep(self.poll_s)


def _unreachable(exc: BaseException) -> QueueUnavailable:
    """What the bot says when the broker cannot be asked, named by the error (never its text: it may hold the
    broker's address with a password)."""
    return QueueUnavailable(f"the job queue is not reachable ({type(exc).__name__})")
