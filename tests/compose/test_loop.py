"""Shared generation: concurrent tracks are stepped in one batch and get exactly the one-by-one tokens."""

from __future__ import annotations

import asyncio

import pytest

from compose.errors import GenerationError
from compose.loop import GenerationLoop, generate
from compose.sampler import SamplingOptions
from music.request import TrackRequest, plan_track
from serving import contract

REQUESTS = [(20, "rainy", 3), (16, "sunny", 8), (24, "night", 5), (18, "chill", 1)]


class CountingBackend:
    """Delegates to a backend, recording the rows of every Predict call."""

    def __init__(self, backend):
        self.backend = backend
        self.rows: list[int] = []

    def __getattr__(self, name):
        return getattr(self.backend, name)

    async def predict(self, name, version, tokens, cond, aux):
        self.rows.append(len(tokens))
        return await self.backend.predict(name, version, tokens, cond, aux)


async def test_batched_tracks_equal_the_one_by_one_tracks_same_seeds(tiny_backend):
    plans = [plan_track(TrackRequest(*r)) for r in REQUESTS]
    backend = CountingBackend(tiny_backend)
    alone = [(await generate(backend, p)).tokens[0] for p in plans]
    calls_alone = len(backend.rows)
    backend.rows.clear()

    shared = GenerationLoop(backend)
    first = [asyncio.create_task(shared.generate(p)) for p in plans[:3]]
    while shared.steps < 5:  # the fourth arrives late and joins the running batch
        await asyncio.sleep(0)
    late = asyncio.create_task(shared.generate(plans[3]))
    together = [(await t).tokens[0] for t in [*first, late]]

    assert together == alone
    assert max(shared.batch_sizes) == 4  # all four in one step at some point
    assert len(backend.rows) < calls_alone  # fewer calls than one track after another
    # three in flight are sent as four rows (a copy of the first): every call has a size the warm-up compiled
    assert 3 in shared.batch_sizes and set(backend.rows) <= set(contract.BATCH_SIZES)


async def test_each_track_keeps_its_own_sampling_options(tiny_backend):
    plan_a, plan_b = (plan_track(TrackRequest(*r)) for r in REQUESTS[:2])
    opts = SamplingOptions(temperature=1.3, top_k=12, form=False)
    backend = tiny_backend
    alone_a = (await generate(backend, plan_a)).tokens[0]
    alone_b = (await generate(backend, plan_b, options=opts)).tokens[0]
    shared = GenerationLoop(backend)
    a, b = await asyncio.gather(shared.generate(plan_a), shared.generate(plan_b, options=opts))
    assert a.tokens[0] == alone_a and b.tokens[0] == alone_b
    assert a.versions == b.versions


async def test_progress_reports_each_tracks_own_bars(tiny_backend):
    plan = plan_track(TrackRequest(*REQUESTS[0]))
    seen: list[float] = []
    await GenerationLoop(tiny_backend).generate(plan, on_bar=seen.append)
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0) and len(seen) == plan.n_bars


async def test_a_cap_on_the_batch_seats_the_rest_as_others_finish(tiny_backend):
    plans = [plan_track(TrackRequest(*r)) for r in REQUESTS]
    backend = CountingBackend(tiny_backend)
    shared = GenerationLoop(backend, max_batch=2)
    gens = await asyncio.gather(*(shared.generate(p) for p in plans))
    assert max(shared.batch_sizes) == 2 and all(g.tokens[0][-1] for g in gens)
    assert [g.tokens[0] for g in gens] == [(await generate(backend, p)).tokens[0] for p in plans]


async def test_a_failing_server_fails_every_track_in_the_batch_and_the_loop_recovers(tiny_backend):
    class Flaky(CountingBackend):
        fail = True

        async def predict(self, *a):
            if self.fail:
                raise RuntimeError("server fell over")
            return await super().predict(*a)

    backend = Flaky(tiny_backend)
    shared = GenerationLoop(backend)
    plans = [plan_track(TrackRequest(*r)) for r in REQUESTS[:2]]
    results = await asyncio.gather(*(shared.generate(p) for p in plans), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    backend.fail = False
    assert (await shared.generate(plans[0])).tokens[0] == (await generate(backend, plans[0])).tokens[0]


async def test_closing_fails_what_is_in_flight(tiny_backend):
    shared = GenerationLoop(tiny_backend)
    task = asyncio.create_task(shared.generate(plan_track(TrackRequest(60, "rainy", 2))))
    while shared.steps < 2:
        await asyncio.sleep(0)
    await shared.close()
    with pytest.raises(GenerationError):
        await task
