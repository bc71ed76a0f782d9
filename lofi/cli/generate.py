"""`lofi generate`: one track from the terminal (the bot's pipeline, `serving.track.make_track`)."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import sys
from pathlib import Path

from lofi.settings import Settings, get_settings


def register(subparsers) -> None:
    """Add `generate` to the `lofi` command."""
    s = get_settings()
    g = subparsers.add_parser("generate", help="make one track (the bot's pipeline, from the terminal)")
    g.add_argument("--length", default="2m", help="2m, 90s, 1m30s, 1:30 or 120 (default %(default)s)")
    g.add_argument("--mood", default="random", help="a mood from music/moods.toml, or random (default)")
    g.add_argument("--seed", type=int, help="random seed (default: a random one)")
    g.add_argument("--bpm", type=float, help="tempo (default: drawn from the mood)")
    g.add_argument("--out", type=Path, help="write the MP3 here (the MIDI and cover go beside it)")
    g.add_argument("--json", action="store_true", help="print the result (files, versions, timings) as JSON")
    g.add_argument("--serving", help="HOST:PORT of TF Serving (default: settings, else an embedded server)")
    g.add_argument("--models", type=Path, default=s.models_dir, help="models folder for the embedded server")
    g.set_defaults(func=generate_main)


def generate_main(args) -> int:
    """`lofi generate` from parsed arguments."""
    return generate(
        get_settings(),
        length=args.length,
        mood=args.mood,
        seed=args.seed,
        bpm=args.bpm,
        out=args.out,
        as_json=args.json,
        serving=args.serving,
        models=Path(args.models),
    )


def generate(
    settings: Settings,
    *,
    length: str,
    mood: str,
    seed: int | None,
    bpm: float | None = None,
    out: Path | None = None,
    as_json: bool = False,
    serving: str | None = None,
    models: Path | None = None,
) -> int:
    """Make one track; prints where it went (or JSON with `as_json`). 0 done, 1 failed, 2 bad input."""
    from music.durations import parse_duration
    from music.limits import SEED_MAX
    from music.request import TrackRequest

    try:
        request = TrackRequest(
            length_s=parse_duration(length),
            mood=mood,
            seed=seed if seed is not None else random.randint(0, SEED_MAX),
            bpm=bpm,
        )
    except ValueError as exc:
        print(f"lofi generate: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(
        _generate(
            settings,
            request,
            out,
            as_json,
            serving or settings.serving_address,
            models or settings.models_dir,
        )
    )


async def _generate(
    settings: Settings, request, out: Path | None, as_json: bool, address, models: Path
) -> int:
    from lofi.model_server import model_server
    from music.errors import MusicError
    from serving.errors import ServingError

    try:
        with model_server(address, models, long_lived=False) as address:
            if address is None:
                print(
                    f"lofi generate: no models under {models}; train some first (lofi train) "
                    "or pass --serving HOST:PORT",
                    file=sys.stderr,
                )
                return 2
            from serving.client import ServingClient
            from serving.track import make_track

            out_dir = out.parent if out else Path(settings.out_dir) / f"cli-{request.seed}"
            async with ServingClient(address, timeout_s=settings.serving_timeout_s) as client:

                def progress(stage, *rest, **_):
                    if not as_json and stage != "composing":
                        print(f"  {stage}...", file=sys.stderr)

                result = await make_track(
                    request,
                    client,
                    out_dir,
                    progress=progress,
                    size_limit=settings.upload_limit_bytes,
                    **settings.render_options(),
                )
    except (ServingError, MusicError) as exc:
        print(f"lofi generate: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    _report(result, request, out, as_json)
    return 0


def _report(result, request, out: Path | None, as_json: bool) -> None:
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
    }
    if as_json:
        print(json.dumps(summary, indent=1, default=str))
    else:
        print(
            f"{summary['title']} ({files.mood}, {files.key}, {files.bpm:.0f} bpm, {files.duration_s:.0f}s) -> {mp3}"
        )
        print("versions: " + ", ".join(f"{k}=v{v}" for k, v in result.versions.items()))
        print("timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items()))
