"""`lofi serve`: the embedded TF-Serving-compatible server.

Nothing here imports TensorFlow at module import time, so `lofi --help` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

from lofi.settings import get_settings

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `serve` to the `lofi` command."""
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
    p.set_defaults(func=run)


def _server_config(args):
    from serving.server import config_for_models_dir, config_from_flags, read_config_file

    if args.model_config_file:
        return read_config_file(args.model_config_file)
    if args.model_name or args.model_base_path:
        if not (args.model_name and args.model_base_path):
            raise SystemExit("--model_name and --model_base_path go together")
        return config_from_flags(args.model_name, args.model_base_path)
    return config_for_models_dir(args.models)


def run(args: argparse.Namespace) -> int:
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
