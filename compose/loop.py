"""The one generation loop: every track, variation, extension and radio piece is composed here.

Each step asks every member once for all active sequences (TF Serving's own way to amortise a call: a batch
of rows in one Predict request), combines their predictions and samples a token for each. A sequence that
arrives while a batch runs joins it at the next step; sequences beyond `max_batch` wait for a seat. A
sequence's tokens do not depend on who it shared a batch with: each has its own random generator and the
models see each row alone. An extension joins like any other sequence, with the earlier piece replayed as its
prefix, so only its continuation is sampled.

The bounds live here once and hold on every path: a sequence stops with GenerationError after its step
budget (`plan.n_bars * (max_bar_tokens + 64) + 64`, counted from its prefix) or its wall time
(`SamplingOptions.max_seconds`, counted from its request, so waiting for a seat counts); a pinned model version
that vanishes mid-batch restarts the batch once on the new versions, and fails it the second time.

The ensemble is pinned when a batch starts (the loop was idle) and kept while any sequence is in flight, so
each sequence is made by one version of every member from start to end; a retrain is picked up by the batch
that starts after the loop next runs dry.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from compose.continuation import split_tokens
from compose.ensemble import Ensemble, pin_ensemble
from compose.errors import GenerationError
from compose.sampler import (
    SamplingOptions,
    SequenceState,
    TokenMasks,
    constrain,
    forced,
    pad_rows,
    push,
    sample,
    windows,
)
from music.request import TrackPlan
from music.tokens import Representation
from serving import contract
from serving.backend import Backend
from serving.errors import ContractError, ModelNotFound

log = logging.getLogger(__name__)

MAX_BATCH = 32
STEP_MARGIN = (
    64  # tokens a bar may take past `max_bar_tokens` (the forced BAR, a copied bar) in the step budget
)

ProgressCallback = Callable[[float], object]


@dataclass
class Generation:
    """The result of generation: tokens per sequence and how they were made."""

    tokens: list[list[int]]  # per sequence: header + body + EOS, decodable by Representation.decode
    versions: dict[str, int]  # member name -> pinned version
    manifests: dict[str, contract.Manifest]
    steps: int = 0
    seconds: float = 0.0
    step_seconds: list[float] = field(default_factory=list)  # time of each ensemble call (all members; steps
    # where every token was forced make none)


@dataclass(eq=False)
class _Request:
    """One sequence asked of the loop, and its progress."""

    plan: TrackPlan
    seed: int
    row: int
    opts: SamplingOptions
    prefix: tuple[int, ...]  # body tokens to replay before sampling (an extension), empty for a new piece
    on_bar: ProgressCallback | None
    future: asyncio.Future[Generation]
    seq: SequenceState | None = None
    start_bars: int = 0  # bars the prefix already had
    reported: int = 0
    step_seconds: list[float] = field(default_factory=list)
    t0: float = field(default_factory=time.perf_counter)

    @property
    def step_budget(self) -> int:
        """Steps this sequence may take before it is stopped as runaway."""
        bars = self.plan.n_bars - self.start_bars
        return bars * (self.opts.max_bar_tokens + STEP_MARGIN) + STEP_MARGIN

    def fail(self, exc: BaseException) -> None:
        """End the request with `exc` (if its caller still waits)."""
        if not self.future.done():
            self.future.set_exception(exc)


class GenerationLoop:
    """One generation loop over a backend that any number of sequences join (see the module docstring).

    Made and closed by its owner (the entry point that owns the backend); `close` fails what is in flight.
    """

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
        self._masks = TokenMasks(self.rep)
        self._waiting: list[_Request] = []
        self._active: list[_Request] = []
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.steps = 0
        self.batch_sizes: list[int] = []  # sequences in each step (for benchmarks; forced ones ask no model)

    @property
    def in_flight(self) -> int:
        """Sequences being generated or waiting for a seat."""
        return len(self._active) + len(self._waiting)

    async def generate(
        self,
        plan: TrackPlan,
        *,
        seed: int | None = None,
        row: int = 0,
        options: SamplingOptions | None = None,
        on_bar: ProgressCallback | None = None,
        prefix: Sequence[int] | None = None,
    ) -> Generation:
        """One sequence for `plan`, generated in the shared batch.

        Args:
            plan: what to compose (bars, key, tempo, form, sampling defaults).
            seed: the random seed (default: the request's); `row` tells apart several sequences of one seed.
            options: sampler knobs and bounds (default: `SamplingOptions()`).
            on_bar: called with the fraction of the new bars written, each time a bar starts.
            prefix: an earlier piece's tokens (header + body, EOS optional) to continue to `plan.n_bars`
                bars: they are replayed, not sampled, and come out unchanged.
        Returns:
            A Generation with one sequence (the prefix's tokens first, when given).
        Raises:
            GenerationError: a bound was reached, the prefix does not fit the plan, or the loop was closed.
        """
        if self._closed:
            raise GenerationError("the generation loop is closed")
        body: tuple[int, ...] = ()
        if prefix is not None:
            header, tail = split_tokens(prefix, plan, self.rep)
            if header != self.rep.vocab.ids(list(plan.header)):
                # the stored header wins (a tempo bucket or density the plan would spell differently)
                plan = dataclasses.replace(plan, header=tuple(self.rep.vocab.tokens[i] for i in header))
            body = tuple(int(t) for t in tail)
        loop = asyncio.get_running_loop()
        request = _Request(
            plan,
            plan.request.seed if seed is None else seed,
            row,
            options or SamplingOptions(),
            body,
            on_bar,
            loop.create_future(),
        )
        self._waiting.append(request)
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run(), name="lofi-generation-loop")
        try:
            return await asyncio.shield(request.future)
        except asyncio.CancelledError:
            request.future.cancel()  # the loop drops it at the next step
            raise

    async def close(self) -> None:
        """Stop the loop; sequences in flight fail with GenerationError."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._fail_all(self._active + self._waiting, GenerationError("the generation loop was closed"))

    def _fail_all(self, requests: list[_Request], exc: BaseException) -> None:
        for r in requests:
            r.fail(exc)
        for r in list(requests):
            for queue in (self._active, self._waiting):
                if r in queue:
                    queue.remove(r)

    def _start(self, r: _Request) -> None:
        """A fresh sequence for `r`, its prefix replayed (again, after a restart)."""
        s = SequenceState(self.rep, r.plan, r.seed, r.row, r.opts)
        try:
            for tok in r.prefix:
                push(s, tok, self._masks)
        except Exception as exc:
            raise GenerationError(f"the prefix does not follow the grammar: {exc}") from exc
        if s.g.bars >= r.plan.n_bars:
            raise GenerationError(f"the prefix already has {s.g.bars} bars; the plan has {r.plan.n_bars}")
        r.seq, r.start_bars, r.reported, r.step_seconds = s, s.g.bars, s.g.bars, []

    def _seat(self) -> None:
        while self._waiting and len(self._active) < self.max_batch:
            r = self._waiting.pop(0)
            if r.future.done():
                continue
            try:
                self._start(r)
            except GenerationError as exc:
                r.fail(exc)
                continue
            self._active.append(r)

    def _enforce_wall_time(self) -> None:
        now = time.perf_counter()
        for r in self._active + self._waiting:
            if now - r.t0 > r.opts.max_seconds:
                steps = r.seq.steps if r.seq is not None else 0
                r.fail(
                    GenerationError(
                        f"generation stopped after {r.opts.max_seconds:g} s of wall time ({steps} steps done)"
                    )
                )
        self._active = [r for r in self._active if not r.future.done()]
        self._waiting = [r for r in self._waiting if not r.future.done()]

    async def _run(self) -> None:
        try:
            await self._batches()
        finally:  # whatever stopped the loop, no caller is left waiting
            why = "was closed" if self._closed else "stopped"
            self._fail_all(self._active + self._waiting, GenerationError(f"the generation loop {why}"))

    async def _batches(self) -> None:
        ens: Ensemble | None = None
        restarted = False
        while (
            self._active or self._waiting
        ):  # run dry: the next sequence starts a batch on the newest versions
            try:
                if not self._active:
                    try:
                        ens = await pin_ensemble(self.backend, self.rep, self.members)
                    except Exception as exc:  # nothing to generate with: every waiting sequence fails with it
                        self._fail_all(list(self._waiting), exc)
                        continue
                    restarted = False
                self._seat()
                self._enforce_wall_time()
                if not self._active:
                    continue
                assert ens is not None
                seqs = [r.seq for r in self._active if r.seq is not None]  # every seated request has one
                seconds = await step(self.backend, ens, self._masks, self.rep, seqs)
            except ModelNotFound as exc:
                if restarted:
                    self._fail_all(list(self._active), exc)
                    continue
                # a pinned version went away mid-batch: every sequence in it starts again on the new versions
                log.warning(
                    "a pinned model version went away (%s); restarting the batch on the new ones. "
                    "Keep two versions loaded (latest { num_versions: 2 }) to avoid this.",
                    exc,
                )
                ens, restarted = None, True
                try:
                    ens = await pin_ensemble(self.backend, self.rep, self.members)
                    for r in self._active:
                        self._start(r)
                except Exception as again:
                    self._fail_all(list(self._active), again)
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a failed step fails every sequence in the batch, each with the error
                self._fail_all(list(self._active), exc)
                continue
            self.steps += 1
            self.batch_sizes.append(len(self._active))
            self._active = [r for r in self._active if not self._after_step(r, ens, seconds)]

    def _after_step(self, r: _Request, ens: Ensemble, seconds: float | None) -> bool:
        """Record the step for `r`, report progress, and finish it if it is done or out of steps; True when
        it left the batch."""
        s = r.seq
        assert s is not None
        if seconds is not None:
            r.step_seconds.append(seconds)
        bars = min(s.g.bars, s.plan.n_bars)
        if r.on_bar is not None and bars > r.reported:
            r.reported = bars
            try:
                r.on_bar((bars - r.start_bars) / max(s.plan.n_bars - r.start_bars, 1))
            except Exception:
                log.exception("progress callback failed")
        if s.done:
            gen = Generation([s.header + s.body], dict(ens.versions), ens.manifests, steps=s.steps)
            gen.seconds, gen.step_seconds = time.perf_counter() - r.t0, r.step_seconds
            if not r.future.done():
                r.future.set_result(gen)
            return True
        if s.steps >= r.step_budget:
            r.fail(GenerationError(f"no EOS after {s.steps} steps"))
            return True
        return r.future.done()  # its caller gave up


async def step(
    backend: Backend, ens: Ensemble, mk: TokenMasks, rep: Representation, active: list[SequenceState]
) -> float | None:
    """One step of every sequence in `active`: one call per member for those with a choice, combine, mask,
    sample.

    A sequence whose mask leaves one token (a returning bar being copied, a forced BAR or tonic: 30-46 % of
    the steps of a 2-minute track) takes it without asking the models. Returns the seconds the ensemble call
    took (all members in parallel), or None when no sequence needed it.
    """
    masks = []
    for s in active:  # the models' inputs (window, cond, aux) do not depend on the mask: it can come first
        mask = constrain(s, mk, s.opts)
        if not mask.any():
            raise GenerationError(f"every token is masked out after {s.g._describe()}")
        masks.append(mask)
    asked = [i for i, m in enumerate(masks) if np.count_nonzero(m) > 1]
    seconds, combined = None, {}
    if asked:
        seqs = [active[i] for i in asked]
        cond = np.stack([s.cond for s in seqs])
        aux = np.asarray([s.aux.row() for s in seqs], np.int32)
        by_width = {w: windows(seqs, w) for w in set(ens.windows.values())}
        rows = contract.padded_batch(len(seqs))
        if rows > len(seqs):  # copies of the first row: every row is computed alone, so they change nothing
            pad = rows - len(seqs)
            cond, aux = pad_rows(cond, pad), pad_rows(aux, pad)
            by_width = {w: pad_rows(x, pad) for w, x in by_width.items()}
        ts = time.perf_counter()
        probs = await asyncio.gather(
            *(
                backend.predict(name, ens.versions[name], by_width[ens.windows[name]], cond, aux)
                for name in ens.names
            )
        )
        seconds = time.perf_counter() - ts
        for p in probs:
            if p.shape != (rows, len(rep.vocab)):
                raise ContractError(
                    f"a member returned probabilities of shape {p.shape}, expected {(rows, len(rep.vocab))}"
                )
        combined = dict(zip(asked, ens.combine([p[: len(seqs)] for p in probs]), strict=True))
    for i, (s, mask) in enumerate(zip(active, masks, strict=True)):
        tok = sample(combined[i], mask, s, mk, s.opts) if i in combined else forced(mask, s)
        push(s, tok, mk)
        s.steps += 1
    return seconds


async def generate(
    backend: Backend,
    plan: TrackPlan,
    *,
    n: int = 1,
    seed: int | None = None,
    options: SamplingOptions | None = None,
    members: list[str] | None = None,
    rep: Representation | None = None,
) -> Generation:
    """`n` sequences of one plan (rows 0..n-1 of the seed) through a loop of their own, closed after: for
    benchmarks, tests and offline tools. A long-lived front end shares its Composer's loop instead."""
    loop = GenerationLoop(backend, members=members, rep=rep)
    try:
        gens = await asyncio.gather(
            *(loop.generate(plan, seed=seed, row=row, options=options) for row in range(n))
        )
    finally:
        await loop.close()
    first = gens[0]
    return Generation(
        [g.tokens[0] for g in gens],
        first.versions,
        first.manifests,
        steps=max(g.steps for g in gens),
        seconds=max(g.seconds for g in gens),
        step_seconds=first.step_seconds,
    )
