"""The radio's render worker: one low-priority process, started again if it dies (a crashed FluidSynth or an
out-of-memory kill must not silence a 24/7 radio for good)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from music.childenv import secrets_hidden_from_children

T = TypeVar("T")


def background_priority() -> None:
    """Worker initializer: a lower CPU priority (nice +10, inherited by FluidSynth), so on a busy machine the
    scheduler prefers the bot's audio thread, which must send a packet every 20 ms."""
    with contextlib.suppress(OSError, AttributeError):
        os.nice(10)


class RenderWorker(Executor):
    """A one-process pool (spawned: the bot has gRPC and TF threads, unsafe to fork) that is replaced when it
    breaks; usable wherever an Executor is (`loop.run_in_executor`).

    The pool starts its process inside a `submit`, which is where the environment is inherited: every submit
    runs with the secrets hidden (`music.childenv`), so the worker never holds the token or a password."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self.restarts = 0

    def _fresh(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=background_priority
        )

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        with self._lock, secrets_hidden_from_children():
            if self._pool is None:
                self._pool = self._fresh()
            elif getattr(self._pool, "_broken", False):
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._fresh()
                self.restarts += 1
            try:
                return self._pool.submit(fn, *args, **kwargs)
            except BrokenProcessPool:
                self._pool = self._fresh()
                self.restarts += 1
                return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)
                self._pool = None
