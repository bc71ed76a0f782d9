"""`lofi worker`: make tracks for the bot's job queue (Celery on the Redis at BROKER_URL).

A worker needs the broker and the models: the model server at SERVING_ADDRESS (TF Serving or `lofi serve`),
or, unset, the members under MODELS_DIR loaded in this process. It needs no database and no Discord token.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
import sys
from typing import TYPE_CHECKING

from lofi.settings import Settings, get_settings

if TYPE_CHECKING:
    from compose.pipeline import Composer

log = logging.getLogger(__name__)


class NoModels(Exception):
    """Neither a model server nor members that load."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `lofi worker`."""
    p = subparsers.add_parser("worker", help="make tracks for the bot's job queue (needs BROKER_URL)")
    p.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="jobs run at once, sharing one generation batch (default: WORKER_CONCURRENCY, 4)",
    )
    p.add_argument("--name", default=None, help="the worker's name in logs (default: lofi@host-pid)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """`lofi worker` from parsed arguments: exit 2 with one line when the broker or the models are missing."""
    settings = get_settings()
    if not settings.broker_url:
        print("lofi worker: BROKER_URL is not set (e.g. redis://127.0.0.1:6379/0)", file=sys.stderr)
        return 2
    from jobs.celery_app import broker_problem, make_celery_app
    from jobs.worker import EngineThread, register_track_task

    problem = broker_problem(settings.broker_url)
    if problem:
        print(f"lofi worker: {problem}", file=sys.stderr)
        return 2
    concurrency = args.concurrency or settings.worker_concurrency
    try:
        engine = EngineThread(lambda stack: open_engine(stack, settings)).start()
    except NoModels as exc:
        print(f"lofi worker: {exc}", file=sys.stderr)
        return 2
    app = make_celery_app(settings.broker_url, redeliver_s=settings.job_redeliver_s)
    register_track_task(app, engine)
    # Celery logs each result at INFO, and a result holds the track's files: the job logs its own line instead
    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
    name = args.name or f"lofi@{socket.gethostname()}-{os.getpid()}"
    try:
        app.worker_main(
            ["worker", "--pool=threads", f"--concurrency={concurrency}", f"--hostname={name}",
             "--loglevel=INFO", "--without-gossip", "--without-mingle", f"--queues={app.conf.task_default_queue}"]
        )  # fmt: skip
    finally:
        engine.stop()
    return 0


async def open_engine(stack: contextlib.AsyncExitStack, settings: Settings) -> Composer:
    """The worker's composing engine, what it opened registered on `stack`: the model-server backend, the
    render pool (one render per core) and the `Composer` over them."""
    from lofi.model_server import one_shot_backend
    from lofi.warm import open_composer

    backend = await stack.enter_async_context(
        one_shot_backend(settings.serving_address, settings.models_dir, settings.serving_timeout_s)
    )
    if backend is None:
        raise NoModels(
            f"no model server at SERVING_ADDRESS and no members that load under {settings.models_dir}"
        )
    return open_composer(stack, backend, settings)  # type: ignore[arg-type]
