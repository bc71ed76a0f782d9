"""One track from request to files: plan -> generate (versions pinned) -> decode -> render (in a worker).

`Composer` is the composing engine every front end uses (`/lofi`, variations, Extend, the radio,
`lofi generate`, the benchmarks): it owns the one generation loop, so concurrent tracks share its batch, and
the render configuration. Its owner (the entry point that made the backend) closes it.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import functools
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from compose.continuation import extended_plan
from compose.loop import MAX_BATCH, Generation, GenerationLoop
from compose.sampler import SamplingOptions
from music.progress import Progress, Stage
from music.render_config import RenderConfig
from music.request import TrackPlan, TrackRequest, plan_track
from music.tokens import Representation
from serving.backend import Backend

if TYPE_CHECKING:
    from music.producer_files import ExportFiles
    from music.track import TrackFiles


@dataclass
class TrackResult:
    """A made track: its files, tokens, member versions, stage timings and the plan it followed."""

    files: TrackFiles
    tokens: list[int]
    versions: dict[str, int]
    plan: TrackPlan
    timings: dict[str, float] = field(default_factory=dict)


class Composer:
    """The composing engine over one backend: the shared generation loop and the render configuration.

    Args:
        backend: the model server (`serving.client.ServingClient`, or `serving.local.LocalBackend` in the
            process that embeds the server).
        render: soundfont, grooves and the MP3 size limit for every track.
        executor: where the blocking renders run (default: the event loop's default executor).
        max_batch: sequences generated together in one step; more wait for a seat.
    """

    def __init__(
        self,
        backend: Backend,
        render: RenderConfig | None = None,
        *,
        executor: Executor | None = None,
        max_batch: int = MAX_BATCH,
        members: list[str] | None = None,
    ):
        self.backend = backend
        self.render = render or RenderConfig()
        self.executor = executor
        self.rep = Representation()
        self.loop = GenerationLoop(backend, members=members, rep=self.rep, max_batch=max_batch)

    def rendering_in(self, executor: Executor) -> Composer:
        """This engine with its renders in `executor` (the radio renders in a worker process of its own).

        The generation loop is the same one, so its sequences share the batch with every other track's; close
        the original engine only.
        """
        view = copy.copy(self)
        view.executor = executor
        return view

    async def close(self) -> None:
        """Stop the generation loop (what is in flight fails); the backend and executor are the owner's."""
        await self.loop.close()

    async def make_track(
        self,
        request: TrackRequest,
        out_dir: Path,
        *,
        progress: Progress | None = None,
        options: SamplingOptions | None = None,
        size_limit: int | None = None,
    ) -> TrackResult:
        """Plan, generate (each member pinned to one version), decode and render one track into `out_dir`.

        Args:
            request: what was asked for (length, mood, seed, tempo).
            out_dir: where the MP3, MIDI and cover go.
            progress: called with (Stage.COMPOSING, fraction) during generation, then the render stages.
            options: sampler knobs and bounds (default: the mood's).
            size_limit: the largest MP3 in bytes for this track (default: the render configuration's).
        Returns:
            The track's files, tokens, versions per member and timings per stage (seconds).
        """
        t0 = time.perf_counter()
        plan = plan_track(request, self.rep)
        timings = {"plan": time.perf_counter() - t0}
        return await self._compose_and_render(plan, out_dir, None, progress, options, size_limit, timings, t0)

    async def extend_track(
        self,
        request: TrackRequest,
        out_dir: Path,
        *,
        prefix: Sequence[int],
        base: TrackRequest,
        progress: Progress | None = None,
        options: SamplingOptions | None = None,
        size_limit: int | None = None,
    ) -> TrackResult:
        """A longer version of the track that `base` asked for and `prefix` holds: `base`'s plan lengthened
        to `request.length_s`, the music continuing `prefix` (its bars unchanged), rendered as `make_track`
        renders."""
        t0 = time.perf_counter()
        plan = extended_plan(base, request.length_s, self.rep)
        timings = {"plan": time.perf_counter() - t0}
        return await self._compose_and_render(
            plan, out_dir, prefix, progress, options, size_limit, timings, t0
        )

    async def render_stems(
        self, tokens: Sequence[int], facts: TrackRequest, out_dir: Path, *, size_limit: int | None = None
    ) -> ExportFiles:
        """The stems of a finished track (its tokens; `facts`: see `compose.exports.replay_plan`) into
        `out_dir`: WAV, or MP3 past `size_limit` (None: no limit), with each part's MIDI."""
        from compose.exports import render_stems_files

        job = functools.partial(
            render_stems_files, tokens, facts, Path(out_dir), self.render, size_limit, self.rep
        )
        return await asyncio.get_running_loop().run_in_executor(self.executor, job)

    async def render_loop(
        self,
        tokens: Sequence[int],
        facts: TrackRequest,
        bars: int,
        out_dir: Path,
        *,
        size_limit: int | None = None,
    ) -> ExportFiles:
        """A `bars`-bar seamless loop of a finished track's main section into `out_dir` (WAV and MIDI)."""
        from compose.exports import render_loop_files

        job = functools.partial(
            render_loop_files, tokens, facts, bars, Path(out_dir), self.render, size_limit, self.rep
        )
        return await asyncio.get_running_loop().run_in_executor(self.executor, job)

    async def _compose_and_render(
        self,
        plan: TrackPlan,
        out_dir: Path,
        prefix: Sequence[int] | None,
        progress: Progress | None,
        options: SamplingOptions | None,
        size_limit: int | None,
        timings: dict[str, float],
        started: float,
    ) -> TrackResult:
        report: Progress = progress or (lambda *_: None)
        report(Stage.COMPOSING, 0.0)
        t = time.perf_counter()
        gen = await self.loop.generate(
            plan, options=options, prefix=prefix, on_bar=lambda f: report(Stage.COMPOSING, f)
        )
        timings["generate"] = time.perf_counter() - t
        render = (
            self.render if size_limit is None else dataclasses.replace(self.render, size_limit=size_limit)
        )
        return await self._render(gen, plan, out_dir, render, progress, timings, started)

    async def _render(
        self,
        gen: Generation,
        plan: TrackPlan,
        out_dir: Path,
        render: RenderConfig,
        progress: Progress | None,
        timings: dict[str, float],
        started: float,
    ) -> TrackResult:
        """Decode the sequence and render it in the executor; `timings` gets decode, render (and its stages)
        and total."""
        from music.track import render_track  # imported here: it pulls in the audio stack

        tokens = gen.tokens[0]
        t = time.perf_counter()
        score = self.rep.decode(tokens, tonic=plan.tonic, bpm=plan.bpm)
        timings["decode"] = time.perf_counter() - t

        t = time.perf_counter()
        job = functools.partial(
            render_track,
            score,
            plan,
            Path(out_dir),
            render=render,
            progress=progress,
        )
        files = await asyncio.get_running_loop().run_in_executor(self.executor, job)
        timings["render"] = time.perf_counter() - t
        for stage, seconds in files.timings.items():
            timings.setdefault(f"render.{stage}", seconds)
        timings["total"] = time.perf_counter() - started
        return TrackResult(
            files=files, tokens=list(tokens), versions=dict(gen.versions), plan=plan, timings=timings
        )
