"""Generation shared by concurrent tracks: one loop steps every active sequence together.

Each step asks every member once for all active tracks (TF Serving's own way to amortise a call: a batch of
rows in one Predict request). A track that arrives while a batch runs joins it at the next step; tracks beyond
`max_batch` wait for a seat. A track's tokens do not depend on who it shared a batch with: every sequence has
its own random generator (seeded as the one-by-one path seeds it, row 0) and the models see each row alone.

The ensemble is pinned when a batch starts (the loop was idle) and kept while any track is in flight, so each
track is still made by one version of every member from start to end; a retrain is picked up by the batch
that starts after the loop next runs dry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from music.request import TrackPlan
from music.tokens import Representation
from serving.backend import Backend
from serving.errors import GenerationError, ModelNotFound
from serving.generate import Generation, SamplingOptions, _Masks, _Sequence, pin_ensemble, step

log = logging.getLogger(__name__)

MAX_BATCH = 32


@dataclass(eq=False)
class _Entry:
    plan: TrackPlan
    seed: int
    opts: SamplingOptions
    on_bar: Callable[[float], object] | None
    future: asyncio.Future
    seq: _Sequence | None = None
    t0: float = field(default_factory=time.perf_counter)
    reported: int = 0
    step_seconds: list[float] = field(default_factory=list)
    joined_at: int = 0  # the batch step at which it joined (for the record)


class SharedGenerator:
    """One generation loop over a backend that any number of tracks join (see the module docstring)."""

    def __init__(
        self,
        backend: Backend,
        *,
        members: list[str] | None = None,
        rep: Representation | None = None,
        max_batch: int = MAX_BATCH,
    ):
        self.backend = backend
        self.members = members
        self.rep = rep or Representation()
        self.max_batch = max(1, max_batch)
        self._waiting: list[_Entry] = []
        self._active: list[_Entry] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._loop = asyncio.get_running_loop()
        self.steps = 0
        self.batch_sizes: list[int] = []  # tracks in each step (for benchmarks; forced ones ask no model)

    @property
    def in_flight(self) -> int:
        """Tracks being generated or waiting for a seat."""
        return len(self._active) + len(self._waiting)

    async def generate(
        self,
        plan: TrackPlan,
        *,
        seed: int | None = None,
        options: SamplingOptions | None = None,
        on_bar: Callable[[float], object] | None = None,
    ) -> Generation:
        """One sequence for `plan` (seed defaults to the request's), generated in the shared batch."""
        entry = _Entry(
            plan,
            plan.request.seed if seed is None else seed,
            options or SamplingOptions(),
            on_bar,
            self._loop.create_future(),
        )
        self._waiting.append(entry)
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = self._loop.create_task(self._run(), name="lofi-shared-generation")
        try:
            return await asyncio.shield(entry.future)
        except asyncio.CancelledError:
            entry.future.cancel()  # the loop drops it at the next step
            raise

    async def close(self) -> None:
        """Stop the loop; tracks in flight fail with GenerationError."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._fail(self._active + self._waiting, GenerationError("the generator was closed"))

    @staticmethod
    def _fail(entries: list[_Entry], exc: BaseException) -> None:
        for e in entries:
            if not e.future.done():
                e.future.set_exception(exc)
        entries.clear()

    def _seat(self, mk: _Masks) -> None:
        while self._waiting and len(self._active) < self.max_batch:
            e = self._waiting.pop(0)
            if e.future.done():
                continue
            e.seq = _Sequence(self.rep, e.plan, e.seed, 0, e.opts)
            e.joined_at = self.steps
            self._active.append(e)

    async def _run(self) -> None:
        try:
            await self._loop_steps()
        finally:  # whatever stopped the loop, no caller is left waiting
            if self._active or self._waiting:
                self._fail(self._active + self._waiting, GenerationError("the generation loop stopped"))

    async def _loop_steps(self) -> None:
        ens = None
        mk = _Masks(self.rep)
        restarted = False
        while True:
            if not self._active and not self._waiting:
                return  # run dry: the next track starts a new batch on the newest versions
            try:
                if not self._active:
                    try:
                        ens = await pin_ensemble(self.backend, self.rep, self.members)
                    except Exception as exc:  # nothing to generate with: every waiting track fails with it
                        self._fail(self._waiting, exc)
                        continue
                    restarted = False
                self._seat(mk)
                self._active = [e for e in self._active if not e.future.done()]  # callers that gave up
                if not self._active:
                    continue
                seqs = [e.seq for e in self._active]
                seconds = await step(self.backend, ens, mk, self.rep, seqs)
            except ModelNotFound as exc:
                if restarted:
                    self._fail(self._active, exc)
                    continue
                # a pinned version went away mid-batch: every track in it starts again on the new versions
                log.warning(
                    "a pinned model version went away (%s); restarting the batch on the new ones", exc
                )
                ens = await pin_ensemble(self.backend, self.rep, self.members)
                for e in self._active:
                    e.seq, e.step_seconds, e.reported = _Sequence(self.rep, e.plan, e.seed, 0, e.opts), [], 0
                restarted = True
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a failed step fails every track in the batch, each with the error
                self._fail(self._active, exc)
                continue
            self.steps += 1
            self.batch_sizes.append(len(seqs))
            still = []
            for e in self._active:
                s = e.seq
                if seconds is not None:
                    e.step_seconds.append(seconds)
                if e.on_bar is not None:
                    bars = min(s.g.bars, s.plan.n_bars)
                    if bars > e.reported:
                        e.reported = bars
                        try:
                            e.on_bar(bars / s.plan.n_bars)
                        except Exception:
                            log.exception("progress callback failed")
                limit = s.plan.n_bars * (s.opts.max_bar_tokens + 64) + 64
                if s.done:
                    gen = Generation([s.header + s.body], dict(ens.versions), ens.manifests, steps=s.steps)
                    gen.seconds, gen.step_seconds = time.perf_counter() - e.t0, e.step_seconds
                    if not e.future.done():
                        e.future.set_result(gen)
                elif s.steps >= limit:
                    if not e.future.done():
                        e.future.set_exception(GenerationError(f"no EOS after {s.steps} steps"))
                else:
                    still.append(e)
            self._active = still


_SHARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def shared_generator(backend: Backend) -> SharedGenerator:
    """The generator every track on `backend` shares (one per backend and event loop)."""
    loop = asyncio.get_running_loop()
    try:
        gen = _SHARED.get(backend)
    except TypeError:  # not weak-referenceable: no sharing, but still correct
        return SharedGenerator(backend)
    if gen is None or gen._loop is not loop:
        gen = SharedGenerator(backend)
        _SHARED[backend] = gen
    return gen
