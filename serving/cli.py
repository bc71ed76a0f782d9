"""`lofi serve` (the embedded TF-Serving-compatible server) and `lofi generate` (one track from the terminal).

Nothing here imports TensorFlow at module import time, so `lofi --help` stays fast.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import shutil
import signal
import sys
import threading
from pathlib import Path

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    """Add `serve` and `generate` to the `lofi` command."""
    from lofi.settings import get_settings

    s = get_settings()
    p = subparsers.add_parser(
        "serve",
        help="serve the ensemble over TF Serving's gRPC API (embedded server)",
        description="A TF-Serving-compatible gRPC server (PredictionService, ModelService) over SavedModels. "
        "Takes TF Serving's flags; without any model flags it serves every lofi_member_* under --models.",
    )
    p.add_argument("--port", type=int, default=s.serving_port, help="gRPC port (default %(default)s)")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default %(default)s; 0.0.0.0: every interface)"
    )
    p.add_argument(
        "--enable_model_config_reload",
        action="store_true",
        help="accept HandleReloadConfigRequest (unauthenticated: anyone who reaches the port can reload)",
    )
    p.add_argument("--model_name", "--model-name", help="serve one model under this name")
    p.add_argument("--model_base_path", "--model-base-path", help="folder with integer version subfolders")
    p.add_argument(
        "--model_config_file", "--model-config-file", help="models.config (ModelServerConfig text)"
    )
    p.add_argument(
        "--model_config_file_poll_wait_seconds",
        type=float,
        default=0.0,
        help="re-read --model_config_file this often (0: never)",
    )
    p.add_argument(
        "--file_system_poll_wait_seconds",
        "--file-system-poll-wait-seconds",
        type=float,
        default=1.0,
        help="look for new model versions this often (default %(default)s; 0: never)",
    )
    p.add_argument(
        "--rest_api_port", type=int, default=0, help="accepted for compatibility; only 0 (no REST)"
    )
    p.add_argument(
        "--tensor_content",
        action="store_true",
        help="answer with raw tensor_content (faster) instead of float_val like TF Serving",
    )
    p.add_argument("--models", type=Path, default=s.models_dir, help="models folder (default %(default)s)")
    p.set_defaults(func=serve_main)

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


def _server_config(args):
    from serving.server import config_for_models_dir, config_from_flags, read_config_file

    if args.model_config_file:
        return read_config_file(args.model_config_file)
    if args.model_name or args.model_base_path:
        if not (args.model_name and args.model_base_path):
            raise SystemExit("--model_name and --model_base_path go together")
        return config_from_flags(args.model_name, args.model_base_path)
    return config_for_models_dir(args.models)


def serve_main(args) -> int:
    """Run the embedded server until SIGTERM or SIGINT."""
    from serving.server import EmbeddedServer

    if args.rest_api_port:
        log.warning("--rest_api_port=%d ignored: the embedded server speaks gRPC only", args.rest_api_port)
    config = _server_config(args)
    if not config.model_config_list.config:
        log.warning("no models configured (looked in %s); serving nothing until a config reload", args.models)
    server = EmbeddedServer(
        config,
        port=args.port,
        host=args.host,
        poll_s=args.file_system_poll_wait_seconds,
        config_file=Path(args.model_config_file) if args.model_config_file else None,
        config_poll_s=args.model_config_file_poll_wait_seconds,
        tensor_content=args.tensor_content,
        models_dir=None if args.model_config_file or args.model_name else args.models,
        allow_config_reload=args.enable_model_config_reload,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    for mc in config.model_config_list.config:
        log.info(
            "model %s from %s: versions %s",
            mc.name,
            mc.base_path,
            sorted(server.store.models.get(mc.name, {})) or "none yet",
        )
    stop.wait()
    log.info("shutting down")
    server.stop(grace=5.0)
    return 0


def generate_main(args) -> int:
    """Make one track; prints where it went (or JSON with --json)."""
    return asyncio.run(_generate(args))


async def _generate(args) -> int:
    from lofi.settings import get_settings
    from music.durations import parse_duration
    from music.errors import MusicError
    from music.request import TrackRequest
    from serving.errors import ServingError

    settings = get_settings()
    try:
        length = parse_duration(args.length)
        request = TrackRequest(
            length_s=length,
            mood=args.mood,
            seed=args.seed if args.seed is not None else random.randrange(2**31),
            bpm=args.bpm,
        )
    except ValueError as exc:
        print(f"lofi generate: {exc}", file=sys.stderr)
        return 2
    server = None
    address = args.serving or settings.serving_address
    try:
        if address is None:
            server = _embedded_server(Path(args.models))
            if server is None:
                print(
                    f"lofi generate: no models under {args.models}; train some first (lofi train) "
                    "or pass --serving HOST:PORT",
                    file=sys.stderr,
                )
                return 2
            address = server.address
        from serving.client import ServingClient
        from serving.pipeline import make_track

        out_dir = args.out.parent if args.out else Path(settings.out_dir) / f"cli-{request.seed}"
        async with ServingClient(address, timeout_s=settings.serving_timeout_s) as client:
            quiet = args.json

            def progress(stage, *rest, **_):
                if not quiet and stage != "composing":
                    print(f"  {stage}...", file=sys.stderr)

            result = await make_track(request, client, out_dir, progress=progress)
    except (ServingError, MusicError) as exc:
        print(f"lofi generate: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        if server is not None:
            server.stop(grace=0)
    files = result.files
    mp3 = Path(files.mp3)
    if args.out and args.out.resolve() != mp3.resolve():
        shutil.move(mp3, args.out)
        mp3 = args.out
    summary = {
        "mp3": str(mp3),
        "midi": str(files.midi),
        "cover": str(files.cover) if files.cover else None,
        "title": getattr(files, "title", None),
        "mood": files.mood,
        "key": files.key,
        "bpm": files.bpm,
        "duration_s": files.duration_s,
        "seed": request.seed,
        "versions": result.versions,
        "tokens": len(result.tokens),
        "timings": {k: round(v, 4) for k, v in result.timings.items()},
    }
    if args.json:
        print(json.dumps(summary, indent=1, default=str))
    else:
        print(
            f"{summary['title']} ({files.mood}, {files.key}, {files.bpm:.0f} bpm, {files.duration_s:.0f}s) -> {mp3}"
        )
        print("versions: " + ", ".join(f"{k}=v{v}" for k, v in result.versions.items()))
        print("timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items()))
    return 0


def _embedded_server(models_dir: Path):
    """An embedded server on a free loopback port over `models_dir`, or None if it holds no members."""
    from serving.server import EmbeddedServer, config_for_models_dir

    config = config_for_models_dir(models_dir)
    if not config.model_config_list.config:
        return None
    server = EmbeddedServer(config, port=0, host="127.0.0.1", poll_s=0, tensor_content=True)
    server.start()
    if not any(server.store.models.values()):
        server.stop(grace=0)
        return None
    return server
