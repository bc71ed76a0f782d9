"""Continuing a generated track: generation from a token prefix, and the pipeline that renders the longer
version (the "Extend" button).

`serving.generate` always starts from the header; this module adds the one missing piece, a `prefix`: the
original track's body tokens are replayed through the grammar (so bar counting, the repetition window and
the models' context all carry on from them) and sampling continues until the longer plan's last bar. Only
the continuation is sampled: the first bars come out exactly as they were. It reuses the generator's own
sequence, mask and sampling helpers rather than forking them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from music.arrange import plan_sections
from music.export import UPLOAD_LIMIT_BYTES
from music.form import plan_form
from music.render import DEFAULT_SOUNDFONT
from music.request import TrackPlan, TrackRequest, plan_track
from music.tokens import Representation
from serving.backend import Backend
from serving.errors import GenerationError
from serving.generate import Generation, SamplingOptions, _Masks, _push, _Sequence, pin_ensemble, step
from serving.track import TrackResult, render_generation


def extended_plan(base: TrackRequest, length_s: float, rep: Representation | None = None) -> TrackPlan:
    """The plan of `base` (the original request: its seed fixes key and tempo) lengthened to about
    `length_s` seconds in whole bars; everything else (key, tempo, header, sampling) stays the same."""
    plan = plan_track(base, rep)
    bar_s = plan.seconds / plan.n_bars
    n_bars = max(plan.n_bars + 1, round(length_s / bar_s))
    request = dataclasses.replace(base, length_s=n_bars * bar_s)
    # The written bars keep their plan; the new ones follow the longer track's form, whose returns point
    # back into the music already there (the loop and the theme come back in the extension too).
    longer = plan_form(plan_sections(n_bars), plan.density, base.seed)
    form = plan.form[: plan.n_bars] + longer[plan.n_bars :]
    return dataclasses.replace(plan, request=request, n_bars=n_bars, form=form)


def split_tokens(tokens: Sequence[int], plan: TrackPlan, rep: Representation) -> tuple[list[int], list[int]]:
    """(header, body) of a stored track's tokens, the final EOS dropped from the body."""
    n = len(plan.header)
    header, body = list(tokens[:n]), list(tokens[n:])
    eos = rep.vocab.id("EOS")
    while body and body[-1] == eos:
        body.pop()
    return header, body


async def generate_continuation(
    backend: Backend,
    plan: TrackPlan,
    prefix: Sequence[int],
    *,
    seed: int | None = None,
    options: SamplingOptions | None = None,
    members: list[str] | None = None,
    rep: Representation | None = None,
    on_bar: Callable[[float], object] | None = None,
) -> Generation:
    """Continue `prefix` (header + body tokens of an earlier piece, EOS optional) to `plan.n_bars` bars.

    Args:
        plan: the longer piece's plan (same mood, key, tempo and time signature as the prefix's).
        prefix: the earlier piece's tokens, as `Generation.tokens[0]` or `Track.tokens` hold them.
    Returns:
        A Generation whose tokens are the prefix's header and body followed by the continuation and EOS.
    Raises:
        GenerationError: the prefix does not follow the grammar, or already has `plan.n_bars` bars.
    """
    opts = options or SamplingOptions()
    rep = rep or Representation()
    header, body = split_tokens(prefix, plan, rep)
    if header != rep.vocab.ids(list(plan.header)):
        # the stored header wins (a tempo bucket or density the plan would spell differently)
        plan = dataclasses.replace(plan, header=tuple(rep.vocab.tokens[i] for i in header))
    t0 = time.perf_counter()
    ens = await pin_ensemble(backend, rep, members)
    mk = _Masks(rep)
    s = _Sequence(rep, plan, plan.request.seed if seed is None else seed, 0, opts)
    try:
        for tok in body:
            _push(s, int(tok), mk)
    except Exception as exc:
        raise GenerationError(f"the prefix does not follow the grammar: {exc}") from exc
    start_bars = s.g.bars
    if start_bars >= plan.n_bars:
        raise GenerationError(f"the prefix already has {start_bars} bars; the plan has {plan.n_bars}")
    gen = Generation([], dict(ens.versions), ens.manifests)
    limit = (plan.n_bars - start_bars) * (opts.max_bar_tokens + 64) + 64
    reported = start_bars
    while not s.done:
        if gen.steps >= limit:
            raise GenerationError(f"no EOS after {gen.steps} steps")
        if time.perf_counter() - t0 > opts.max_seconds:
            raise GenerationError(
                f"generation stopped after {opts.max_seconds:g} s of wall time ({gen.steps} steps done)"
            )
        seconds = await step(backend, ens, mk, rep, [s])
        if seconds is not None:
            gen.step_seconds.append(seconds)
        gen.steps += 1
        if on_bar is not None and s.g.bars > reported:
            reported = s.g.bars
            on_bar((reported - start_bars) / max(plan.n_bars - start_bars, 1))
    gen.tokens = [s.header + s.body]
    gen.seconds = time.perf_counter() - t0
    return gen


async def extend_track(
    request: TrackRequest,
    client: Backend,
    out_dir: Path,
    *,
    prefix: Sequence[int],
    base: TrackRequest,
    progress: Callable[..., object] | None = None,
    executor=None,
    size_limit: int = UPLOAD_LIMIT_BYTES,
    soundfont: Path = DEFAULT_SOUNDFONT,
    options: SamplingOptions | None = None,
    groove_dir: Path | None = None,
    cache_dir: Path | None = None,
) -> TrackResult:
    """`serving.track.make_track` for a longer version of the track that `base` asked for and `prefix` holds:
    the plan is `base`'s lengthened to `request.length_s`, the music continues `prefix`, then it is decoded and
    rendered the same way. Same result shape as make_track."""

    report = progress or (lambda *a, **k: None)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    rep = Representation()
    plan = extended_plan(base, request.length_s, rep)
    report("composing", 0.0)
    t = time.perf_counter()
    gen = await generate_continuation(
        client, plan, prefix, options=options, rep=rep, on_bar=lambda f: report("composing", f)
    )
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
