"""`lofi generate`: one track from the terminal (the bot's composing engine, `compose.pipeline.Composer`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from lofi.settings import Settings, get_settings
from lofi.warm import warm_render_stack

log = logging.getLogger(__name__)

DEFAULT_MAX_SECONDS = 600.0  # wall-time bound on composing one track (the sampler also bounds its steps)
LOOP_BARS = (4, 8)  # music.seamless.LOOP_BARS (not imported here: `lofi --help` stays quick)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `generate` to the `lofi` command."""
    s = get_settings()
    g = subparsers.add_parser("generate", help="make one track (the bot's pipeline, from the terminal)")
    g.add_argument("--length", default="2m", help="2m, 90s, 1m30s, 1:30 or 120 (default %(default)s)")
    g.add_argument(
        "--max-length",
        help=f"allow lengths up to this (default: the bot's limit, {s.max_length_s:.0f} s)",
    )
    g.add_argument(
        "--max-seconds",
        type=float,
        default=DEFAULT_MAX_SECONDS,
        help="give up composing after this many seconds of wall time (default %(default)s)",
    )
    g.add_argument("--mood", default="random", help="a mood from music/moods.toml, or random (default)")
    g.add_argument("--seed", type=int, help="random seed (default: a random one)")
    g.add_argument("--bpm", type=float, help="tempo (default: drawn from the mood)")
    g.add_argument(
        "--key",
        help='key, e.g. "A minor", "Eb major", "F#m"; a note alone takes the mood\'s mode (default: drawn)',
    )
    g.add_argument("--out", type=Path, help="write the MP3 here (the MIDI and cover go beside it)")
    g.add_argument(
        "--stems",
        action="store_true",
        help="also write the stems (keys, bass, melody, drums, ambience: 24-bit WAV, aligned) and each part's MIDI",
    )
    g.add_argument(
        "--loop",
        type=int,
        choices=LOOP_BARS,
        metavar="BARS",
        help="also write a seamless loop of the main section, 4 or 8 bars (WAV and MIDI)",
    )
    g.add_argument("--json", action="store_true", help="print the result (files, versions, timings) as JSON")
    g.add_argument("--serving", help="HOST:PORT of TF Serving (default: settings, else an embedded server)")
    g.add_argument("--models", type=Path, default=s.models_dir, help="models folder for the embedded server")
    g.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """`lofi generate` from parsed arguments."""
    return generate(
        get_settings(),
        length=args.length,
        mood=args.mood,
        seed=args.seed,
        bpm=args.bpm,
        key=args.key,
        out=args.out,
        as_json=args.json,
        serving=args.serving,
        models=Path(args.models),
        max_length=args.max_length,
        max_seconds=args.max_seconds,
        stems=args.stems,
        loop=args.loop,
    )


def generate(
    settings: Settings,
    *,
    length: str,
    mood: str,
    seed: int | None,
    bpm: float | None = None,
    key: str | None = None,
    out: Path | None = None,
    as_json: bool = False,
    serving: str | None = None,
    models: Path | None = None,
    max_length: str | None = None,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    stems: bool = False,
    loop: int | None = None,
) -> int:
    """Make one track (with `stems`, its stems; with `loop`, a seamless loop of that many bars); prints where it went (or JSON with `as_json`). 0 done, 1 failed, 2 bad input.

    Every argument and the output folder are checked before any work: the length within the bot's limits
    (`max_length` widens the upper one), the seed and tempo in range, the output folder writable.
    """
    from music.durations import parse_duration, parse_length
    from music.limits import SEED_MAX
    from music.request import TrackRequest

    started = time.monotonic()  # --max-seconds bounds the whole job from here
    try:
        longest = settings.max_length_s
        if max_length is not None:
            longest = max(longest, parse_duration(max_length))
        if not (isinstance(max_seconds, int | float) and 0 < max_seconds < float("inf")):
            raise ValueError(f"--max-seconds must be a positive number of seconds, not {max_seconds}")
        request = TrackRequest(
            length_s=parse_length(length, settings.min_length_s, longest),
            mood=mood,
            seed=seed if seed is not None else random.randint(0, SEED_MAX),
            bpm=bpm,
            key=key,
        )
        _check_loop(request, loop)
        out_dir = _writable_out_dir(out, Path(settings.out_dir) / f"cli-{request.seed}")
    except ValueError as exc:
        print(f"lofi generate: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(
        _generate(
            settings,
            request,
            out,
            out_dir,
            as_json,
            serving or settings.serving_address,
            models or settings.models_dir,
            max_seconds,
            started,
            (stems, loop),
        )
    )


def _check_loop(request, bars: int | None) -> None:
    """ValueError before any work when the track will be too short for a `bars`-bar loop."""
    from music.request import plan_track

    if bars is None:
        return
    if bars not in LOOP_BARS:
        raise ValueError(f"--loop is 4 or 8 bars, not {bars}")
    n_bars = plan_track(request).n_bars
    if n_bars < bars:
        raise ValueError(f"--loop {bars}: a track this long has {n_bars} bars; make it longer or loop 4")


def _writable_out_dir(out: Path | None, default: Path) -> Path:
    """The folder the track will be written to, made and proven writable; ValueError naming it otherwise."""
    if out is not None:
        if out.is_dir():
            raise ValueError(f"--out {out} is a folder; give the MP3 file's path, e.g. {out / 'track.mp3'}")
        if out.suffix.lower() != ".mp3":
            raise ValueError(f"--out {out} must end in .mp3")
    folder = out.parent if out is not None else default
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".lofi-write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        target = f"--out {out}" if out is not None else f"the output folder {folder}"
        raise ValueError(
            f"cannot write {target}: cannot create files in {folder} ({exc.strerror or exc})"
        ) from None
    return folder


async def _generate(
    settings: Settings,
    request,
    out: Path | None,
    out_dir: Path,
    as_json: bool,
    address,
    models: Path,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    started: float | None = None,
    exports: tuple[bool, int | None] = (False, None),
) -> int:
    deadline = (started if started is not None else time.monotonic()) + max_seconds
    try:
        # loading the models, composing and rendering: all within --max-seconds of the start
        async with asyncio.timeout(max(deadline - time.monotonic(), 0.0)):
            return await _make(settings, request, out, out_dir, as_json, address, models, deadline, exports)
    except TimeoutError:
        print(f"lofi generate: gave up after --max-seconds {max_seconds:g} s", file=sys.stderr)
        return 1


async def _make(
    settings: Settings,
    request,
    out: Path | None,
    out_dir: Path,
    as_json: bool,
    address,
    models: Path,
    deadline: float,
    exports: tuple[bool, int | None] = (False, None),
) -> int:
    from lofi.model_server import one_shot_backend
    from music.errors import MusicError
    from serving.errors import ServingError

    # the audio stack (imports, soundfont, grooves) loads on the other core while the models load and compose
    threading.Thread(
        target=warm_render_stack, args=(settings.render_config(),), name="warm-render", daemon=True
    ).start()
    try:
        async with one_shot_backend(address, models, settings.serving_timeout_s) as backend:
            if backend is None:
                print(
                    f"lofi generate: no models under {models}; train some first (lofi train) "
                    "or pass --serving HOST:PORT",
                    file=sys.stderr,
                )
                return 2
            from compose.pipeline import Composer
            from compose.sampler import SamplingOptions

            def progress(stage, *rest, **_):
                if not as_json and stage != "composing":
                    print(f"  {stage}...", file=sys.stderr)

            composer = Composer(backend, settings.render_config())
            try:
                left = max(deadline - time.monotonic(), 0.001)
                result = await composer.make_track(
                    request, out_dir, progress=progress, options=SamplingOptions(max_seconds=left)
                )
                extra = await _render_exports(composer, result, request, out_dir, *exports)
            finally:
                await composer.close()
    except (ServingError, MusicError) as exc:
        print(f"lofi generate: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    _report(result, request, out, as_json, extra)
    return 0


async def _render_exports(composer, result, request, out_dir: Path, stems: bool, loop: int | None) -> dict:
    """The stems and the loop asked for, rendered from the track just made (its tokens and facts), beside it;
    WAV whatever the size (no upload limit here)."""
    from music.request import TrackRequest

    if not stems and loop is None:
        return {}
    f = result.files
    facts = TrackRequest(f.duration_s, f.mood, request.seed, f.bpm, f.key)
    extra: dict = {"notes": []}
    if stems:
        made = await composer.render_stems(result.tokens, facts, out_dir)
        extra["stems"], extra["notes"] = [str(p) for p in made.files], extra["notes"] + made.notes
    if loop is not None:
        made = await composer.render_loop(result.tokens, facts, loop, out_dir)
        extra["loop"], extra["notes"] = [str(p) for p in made.files], extra["notes"] + made.notes
    return extra


def _report(result, request, out: Path | None, as_json: bool, extra: dict | None = None) -> None:
    files = result.files
    mp3 = Path(files.mp3)
    if out and out.resolve() != mp3.resolve():
        shutil.move(mp3, out)
        mp3 = out
    summary = {
        "mp3": str(mp3),
        "midi": str(files.midi),
        "cover": str(files.cover) if files.cover else None,
        "title": files.title,
        "mood": files.mood,
        "key": files.key,
        "bpm": files.bpm,
        "duration_s": files.duration_s,
        "seed": request.seed,
        "versions": result.versions,
        "tokens": len(result.tokens),
        "timings": {k: round(v, 4) for k, v in result.timings.items()},
        **(extra or {}),
    }
    if as_json:
        print(json.dumps(summary, indent=1, default=str))
    else:
        print(
            f"{summary['title']} ({files.mood}, {files.key}, {files.bpm:.0f} bpm, {files.duration_s:.0f}s) -> {mp3}"
        )
        print("versions: " + ", ".join(f"{k}=v{v}" for k, v in result.versions.items()))
        print("timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items()))
        for label in ("stems", "loop"):
            for path in summary.get(label, []):
                print(f"{label}: {path}")
        for note in summary.get("notes", []):
            print(f"note: {note}")
