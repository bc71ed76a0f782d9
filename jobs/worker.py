"""The worker's side of the broker: the composing engine on an event loop of its own, and the one track task.

Celery runs each job on a thread of its pool (`--pool threads`); every job's call goes to the one engine, so
the jobs a worker runs at once share one generation batch, as the bot's own tracks do. A job's files are made
in a temporary folder and returned inside the result (`jobs.wire`): nothing is left on the worker's disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from celery import Celery, Task

from compose.pipeline import Composer, TrackResult
from jobs.celery_app import TRACK_TASK
from jobs.exports import ExportJob, export_to_wire, job_from_wire
from jobs.remote import PROGRESS
from jobs.wire import TrackJob, Wire, error_to_wire, result_to_wire
from music.producer_files import ExportFiles
from music.progress import Progress, Stage
from serving.errors import BadRequest

log = logging.getLogger(__name__)

T = TypeVar("T")

OpenEngine = Callable[[contextlib.AsyncExitStack], Coroutine[Any, Any, Composer]]


class EngineThread:
    """A `Composer` living on an event loop in a thread of its own; job threads call `run`.

    `open_engine(stack)` makes the engine inside that loop (a gRPC channel must be made in the loop that uses
    it) and registers what it opened on `stack`, which `stop` closes.
    """

    def __init__(self, open_engine: OpenEngine):
        self._open = open_engine
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="lofi-engine", daemon=True)
        self._stack = contextlib.AsyncExitStack()
        self._composer: Composer | None = None

    def start(self) -> EngineThread:
        """Start the loop and open the engine (raises what opening raised)."""
        self._thread.start()
        self._composer = self._call(self._open(self._stack))
        return self

    def run(self, job: TrackJob, out_dir: Path, progress: Progress | None = None) -> TrackResult:
        """Run `job` on the engine (blocking this thread until it is done)."""
        if self._composer is None:
            raise RuntimeError("the engine is not started")
        return self._call(job.run(self._composer, out_dir, progress))

    def export(self, job: ExportJob, out_dir: Path) -> ExportFiles:
        """Run the stems or loop `job` on the engine (blocking this thread until it is done)."""
        if self._composer is None:
            raise RuntimeError("the engine is not started")
        return self._call(job.run(self._composer, out_dir))

    def stop(self) -> None:
        """Close what the engine opened, then stop the loop."""
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self._call(self._stack.aclose())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()


class ProgressRelay:
    """A job's progress written to the result store, where the bot reads it: a write when the stage changes
    or composing has moved on by a tenth (not one per bar), from whichever thread reports it."""

    def __init__(self, task: Task[Any, Any], task_id: str):
        self._task, self._task_id = task, task_id  # the id now: the engine's threads have no task context
        self._last: tuple[Stage, float] | None = None
        self._lock = threading.Lock()

    def __call__(self, stage: Stage, fraction: float | None = None, /) -> None:
        with self._lock:
            done = -1.0 if fraction is None else float(fraction)
            if self._last is not None and self._last[0] == stage and done < self._last[1] + 0.1:
                return
            self._last = (stage, done)
        meta = {"stage": str(stage), "fraction": fraction, "at": time.time(), "pid": os.getpid()}
        try:
            self._task.backend.store_result(self._task_id, meta, PROGRESS)
        except Exception as exc:  # progress is a courtesy: a broker hiccup must not fail the track
            log.debug("could not report progress of %s: %s", self._task_id, exc)


def make_track_job(task: Task[Any, Any], payload: Wire, engine: EngineThread) -> Wire:
    """One job: the track's result with its files, or its error by name (returned, not raised: a job that
    failed for a reason would fail again, so it is acknowledged and not redelivered)."""
    task_id = str(task.request.id)
    try:
        job = job_from_wire(payload)
    except (KeyError, TypeError, ValueError) as exc:
        return error_to_wire(BadRequest(f"malformed track job: {exc}"))
    if isinstance(job, ExportJob):
        return export_job(task_id, job, engine)
    log.info("job %s: %s s %s, seed %s", task_id, job.request.length_s, job.request.mood, job.request.seed)
    with tempfile.TemporaryDirectory(prefix="lofi-job-") as tmp:
        try:
            t0 = time.perf_counter()
            result = engine.run(job, Path(tmp), ProgressRelay(task, task_id))
            log.info("job %s: made %s in %.1f s", task_id, result.files.mp3.name, time.perf_counter() - t0)
            return result_to_wire(result)
        except Exception as exc:
            log.warning("job %s failed: %s: %s", task_id, type(exc).__name__, exc)
            return error_to_wire(exc)


def export_job(task_id: str, job: ExportJob, engine: EngineThread) -> Wire:
    """A stems or loop job: its files, or its error by name (returned, like a track's)."""
    log.info("job %s: %s of %s tokens", task_id, job.kind, len(job.tokens))
    with tempfile.TemporaryDirectory(prefix="lofi-export-") as tmp:
        try:
            return export_to_wire(engine.export(job, Path(tmp)))
        except Exception as exc:
            log.warning("job %s failed: %s: %s", task_id, type(exc).__name__, exc)
            return error_to_wire(exc)


def register_track_task(app: Celery, engine: EngineThread) -> None:
    """Register the track task on `app`, running on `engine`."""

    def make_track(task: Task[Any, Any], payload: Wire) -> Wire:
        return make_track_job(task, payload, engine)

    app.task(name=TRACK_TASK, bind=True)(make_track)
