"""`lofi bot`: run the Discord bot with settings from the environment.

This entry owns the bot's long-lived resources, as discord.py's `examples/advanced_startup.py` does: one
`async def` opens them in an `AsyncExitStack` (database, model-server backend, the composing engine over it,
the render pool, the radio's worker process), passes them to `LofiBot`, and closes them in reverse order once
the bot has stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from lofi.settings import Settings, get_settings
from lofi.warm import open_composer

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from bot.resources import BotResources, TrackMaker
    from jobs.remote import BrokerTrackMaker
    from serving.client import ServingClient
    from serving.local import LocalBackend

    Backend = ServingClient | LocalBackend

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `lofi bot`."""
    p = subparsers.add_parser("bot", help="run the Discord bot (needs DISCORD_TOKEN)")
    p.add_argument("--no-sync", action="store_true", help="do not sync slash commands at start")
    p.add_argument(
        "--no-embedded-serving",
        action="store_true",
        help="with SERVING_ADDRESS unset, do not start the embedded model server (jobs will fail)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """`lofi bot` from parsed arguments."""
    return run_bot(
        get_settings(), sync=not args.no_sync, embedded=not getattr(args, "no_embedded_serving", False)
    )


@contextlib.asynccontextmanager
async def open_database(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions over the database at `database_url`, migrated to the newest revision; the engine is disposed
    on exit. DatabaseConfigError when it cannot be reached."""
    from db.engine import make_engine, make_sessionmaker, upgrade_engine

    engine = make_engine(database_url)
    try:
        await upgrade_engine(engine)
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


def serving_backend(settings: Settings) -> ServingClient:
    """The gRPC client of the model server at `settings.serving_address` (the embedded port when unset)."""
    from serving.client import ServingClient

    address = settings.serving_address or f"127.0.0.1:{settings.serving_port}"
    return ServingClient(address, timeout_s=settings.serving_timeout_s)


async def open_resources(
    stack: contextlib.AsyncExitStack, settings: Settings, make_backend: Callable[[], Backend]
) -> BotResources:
    """Open what the bot uses, each closed by `stack` (in reverse order): the database, the backend from
    `make_backend` (inside the running loop: a gRPC channel must be), the radio's worker process and the
    composing engine (in-process with its render pool, or the broker's workers).

    A backend that cannot be made is logged and left out: the bot still starts, `/lofi-status` says the model
    server is down and jobs fail with a clear message.
    """
    from bot.radio.worker import RenderWorker
    from bot.resources import BotResources

    sessionmaker = await stack.enter_async_context(open_database(settings.database_url))
    backend: Backend | None
    try:
        backend = make_backend()
    except Exception as exc:
        log.warning("no model-server client (%s); /lofi-status will say so", exc)
        backend = None
    if backend is not None:
        stack.push_async_callback(backend.close)
    # The radio renders and decodes in a process: measured here, numpy/scipy/pedalboard stages held the GIL
    # long enough (100-800 ms) to delay discord.py's audio thread, an audible gap in the stream.
    radio_worker = RenderWorker()
    stack.callback(radio_worker.shutdown, wait=False, cancel_futures=True)
    composer: TrackMaker | None = None
    radio_composer: TrackMaker | None = None
    workers: BrokerTrackMaker | None = None
    if settings.broker_url:  # tracks and radio pieces are made by `lofi worker` processes
        composer = radio_composer = workers = broker_track_maker(stack, settings.broker_url, settings)
    elif backend is not None:  # only this bot renders: its pool and warm-up (with a broker, the workers')
        engine = open_composer(stack, backend, settings)
        composer = engine
        radio_composer = engine.rendering_in(radio_worker)  # one loop: the radio shares the batch
    return BotResources(
        sessionmaker=sessionmaker,
        composer=composer,
        radio_composer=radio_composer,
        models=backend,
        radio_worker=radio_worker,
        workers=workers,
    )


def no_model_server() -> Backend:
    """No model-server client: the bot was not told where one is (`/lofi-status` says so)."""
    raise RuntimeError("SERVING_ADDRESS is not set; the workers reach the model server")


def broker_track_maker(
    stack: contextlib.AsyncExitStack, broker_url: str, settings: Settings
) -> BrokerTrackMaker:
    """The engine's calls sent through the broker at `broker_url` to the workers (its connections closed by
    `stack`)."""
    from jobs.celery_app import make_celery_app
    from jobs.remote import BrokerTrackMaker

    app = make_celery_app(broker_url, redeliver_s=settings.job_redeliver_s)
    stack.callback(app.close)
    return BrokerTrackMaker(app, deadline_s=settings.job_timeout_s)


async def serve(settings: Settings, token: str, make_backend: Callable[[], Backend], *, sync: bool) -> None:
    """Open the resources, run the bot until it stops, close them."""
    from bot.app import LofiBot
    from lofi.collector import freeze_startup_objects

    async with contextlib.AsyncExitStack() as stack:
        resources = await open_resources(stack, settings, make_backend)
        bot = LofiBot(settings, resources, sync_commands=sync)
        freeze_startup_objects()  # the models (and discord.py, SQLAlchemy) are loaded: keep them out of gc
        async with bot:
            await bot.start(token)


def out_dir_problem(out_dir: Path) -> str | None:
    """Why tracks cannot be written to OUT_DIR (made if missing), or None: proven by creating a file there,
    since a read-only OUT_DIR would otherwise start a bot whose every track fails."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out_dir, prefix=".lofi-write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"OUT_DIR {out_dir} is not writable ({exc.strerror or exc}); the tracks are written there."
    return None


def _refusal(settings: Settings, token: str) -> str | None:
    """Why the bot cannot start with these settings (checked before logging in), or None."""
    if not token:
        return (
            "DISCORD_TOKEN is not set (environment or .env); create a bot at "
            "https://discord.com/developers/applications and export its token."
        )
    from db.engine import check_database_url
    from db.errors import DatabaseConfigError

    try:
        check_database_url(settings.database_url)  # a wrong URL or folder is one line, not a traceback
    except DatabaseConfigError as exc:
        return str(exc)
    problem = out_dir_problem(Path(settings.out_dir))
    if problem:
        return problem
    if settings.broker_url:
        from jobs.celery_app import broker_problem

        return broker_problem(settings.broker_url)
    return None


def _open_model_server(
    stack: contextlib.ExitStack, settings: Settings, *, embedded: bool
) -> tuple[str | None, object | None] | None:
    """(address, embedded server or None) for the bot, closed by `stack`; None, after one line on stderr,
    when SERVING_PORT is held by another process (with a broker, `embedded` is False: workers hold models)."""
    from lofi.model_server import embedded_model_server
    from serving.errors import PortUnavailable

    try:
        return stack.enter_context(
            embedded_model_server(
                settings.serving_address,
                settings.models_dir,
                long_lived=True,
                port=settings.serving_port,
                embedded=embedded,
            )
        )
    except PortUnavailable:  # never compose through a server this bot neither started nor was told to use
        print(
            f"lofi bot: SERVING_PORT {settings.serving_port} is held by another process; stop it, set "
            "SERVING_PORT to a free port, or set SERVING_ADDRESS to the model server to use.",
            file=sys.stderr,
        )
        return None


def run_bot(settings: Settings, *, sync: bool = True, embedded: bool = True) -> int:
    """Start the bot; exit 2 with a clear message when DISCORD_TOKEN is missing.

    With SERVING_ADDRESS unset (and `embedded`), an embedded model server serves MODELS_DIR meanwhile."""
    token = settings.discord_token.get_secret_value().strip() if settings.discord_token else ""
    refusal = _refusal(settings, token)
    if refusal:
        print(f"lofi bot: {refusal}", file=sys.stderr)
        return 2
    import discord

    from db.errors import DatabaseConfigError
    from lofi.logsafe import install_redaction

    install_redaction().add_secret(token)  # the exact token, whatever it looks like, never reaches a log
    with contextlib.ExitStack() as stack:
        opened = _open_model_server(stack, settings, embedded=embedded and not settings.broker_url)
        if opened is None:
            return 2
        address, server = opened
        settings = settings.model_copy(update={"serving_address": address})
        make_backend: Callable[[], Backend]
        if server is not None:  # the bot calls the store it embeds directly; other processes use gRPC
            from serving.local import LocalBackend

            store = server.store
            make_backend = lambda: LocalBackend(store)  # noqa: E731
        elif address is not None:
            make_backend = lambda: serving_backend(settings)  # noqa: E731
        else:  # a broker and no SERVING_ADDRESS: the workers reach the models, the bot has no status of them
            make_backend = no_model_server
        try:
            # logging is configured by `lofi` itself; discord.py never logs the token.
            asyncio.run(serve(settings, token, make_backend, sync=sync))
        except KeyboardInterrupt:
            return 0
        except discord.LoginFailure:
            print(
                "lofi bot: Discord refused the token (DISCORD_TOKEN is wrong or was reset).", file=sys.stderr
            )
            return 2
        except DatabaseConfigError as exc:  # e.g. PostgreSQL not reachable, found when opening it
            print(f"lofi bot: {exc}", file=sys.stderr)
            return 2
        except discord.PrivilegedIntentsRequired:
            print(
                "lofi bot: Discord asked for privileged intents; this bot should need none.", file=sys.stderr
            )
            return 2
        except discord.ConnectionClosed as exc:
            if exc.code not in SHARD_REFUSALS:
                raise
            print(f"lofi bot: {SHARD_REFUSALS[exc.code]}", file=sys.stderr)
            return 2
    return 0


# Gateway close codes that mean the shard settings are wrong (Discord's "Gateway Close Event Codes").
SHARD_REFUSALS = {
    4010: "Discord refused the shard (4010 Invalid shard): each of SHARD_IDS must be below SHARD_COUNT.",
    4011: (
        "Discord requires more shards (4011 Sharding required): raise SHARD_COUNT, or unset it to use "
        "the count Discord recommends."
    ),
}
