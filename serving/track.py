"""One track from request to files: plan -> generate (versions pinned) -> decode -> render (in a worker).

The bot and `lofi generate` both call `make_track`; only the front end differs.
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from music.export import UPLOAD_LIMIT_BYTES
from music.progress import Progress, Stage
from music.render import DEFAULT_SOUNDFONT
from music.request import TrackPlan, TrackRequest, plan_track
from music.tokens import Representation
from serving.backend import Backend
from serving.batcher import SharedGenerator, shared_generator
from serving.generate import SamplingOptions

if TYPE_CHECKING:
    from music.track import TrackFiles


@dataclass
class TrackResult:
    """A made track: its files, tokens, member versions, stage timings and the plan it followed."""

    files: TrackFiles
    tokens: list[int]
    versions: dict[str, int]
    timings: dict[str, float] = field(default_factory=dict)
    plan: TrackPlan | None = None


async def make_track(
    request: TrackRequest,
    client: Backend,
    out_dir: Path,
    *,
    progress: Progress | None = None,
    executor=None,
    size_limit: int = UPLOAD_LIMIT_BYTES,
    soundfont: Path = DEFAULT_SOUNDFONT,
    options: SamplingOptions | None = None,
    groove_dir: Path | None = None,
    cache_dir: Path | None = None,
    generator: SharedGenerator | None = None,
) -> TrackResult:
    """Plan, generate (each member pinned to one version), decode and render one track into `out_dir`.

    Args:
        request: what was asked for (length, mood, seed, tempo).
        client: a `serving.backend.Backend` (the gRPC client, or the in-process backend).
        out_dir: where the MP3, MIDI and cover go.
        progress: called with (Stage.COMPOSING, fraction) during generation, then the render stages.
        executor: where the blocking render runs (default: the loop's default executor).
        size_limit: maximum MP3 size in bytes (default: Discord's 10 MiB).
        soundfont, groove_dir, cache_dir: passed to `music.track.render_track`.
        generator: the shared generation loop (default: the one every track on `client` shares, so
            concurrent tracks are generated in one batch; the tokens are the same as alone).
    Returns:
        The track's files, tokens, versions per member and timings per stage (seconds).
    """

    report = progress or (lambda *_: None)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    rep = Representation()
    plan = plan_track(request, rep)
    timings["plan"] = time.perf_counter() - t0

    report(Stage.COMPOSING, 0.0)
    t = time.perf_counter()
    shared = generator or shared_generator(client)
    gen = await shared.generate(plan, options=options, on_bar=lambda f: report(Stage.COMPOSING, f))
    timings["generate"] = time.perf_counter() - t
    return await render_generation(
        gen,
        plan,
        out_dir,
        rep=rep,
        timings=timings,
        started=t0,
        executor=executor,
        progress=progress,
        size_limit=size_limit,
        soundfont=soundfont,
        groove_dir=groove_dir,
        cache_dir=cache_dir,
    )


async def render_generation(
    gen,
    plan: TrackPlan,
    out_dir: Path,
    *,
    rep: Representation,
    timings: dict[str, float],
    started: float,
    executor=None,
    progress: Progress | None = None,
    size_limit: int = UPLOAD_LIMIT_BYTES,
    soundfont: Path = DEFAULT_SOUNDFONT,
    groove_dir: Path | None = None,
    cache_dir: Path | None = None,
) -> TrackResult:
    """Decode the first sequence of `gen` and render it in `executor`: the second half of a track, shared by
    `make_track` and the Extend pipeline. `timings` gets decode, render (and its stages) and total."""
    from music.track import render_track  # imported here: it pulls in the audio stack

    tokens = gen.tokens[0]
    t = time.perf_counter()
    score = rep.decode(tokens, tonic=plan.tonic, bpm=plan.bpm)
    timings["decode"] = time.perf_counter() - t

    t = time.perf_counter()
    render = functools.partial(
        render_track,
        score,
        plan,
        Path(out_dir),
        soundfont=soundfont,
        size_limit=size_limit,
        progress=progress,
        groove_dir=groove_dir,
        cache_dir=cache_dir,
    )
    files = await asyncio.get_running_loop().run_in_executor(executor, render)
    timings["render"] = time.perf_counter() - t
    for stage, seconds in files.timings.items():
        timings.setdefault(f"render.{stage}", seconds)
    timings["total"] = time.perf_counter() - started
    return TrackResult(
        files=files, tokens=list(tokens), versions=dict(gen.versions), timings=timings, plan=plan
    )
