"""`lofi bot`: run the Discord bot with settings from the environment."""

from __future__ import annotations

import argparse
import logging
import sys

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
    """Start the bot; exit 2 with a clear message when DISCORD_TOKEN is missing."""
    from lofi.settings import get_settings

    settings = get_settings()
    token = settings.discord_token.get_secret_value().strip() if settings.discord_token else ""
    if not token:
        print(
            "lofi bot: DISCORD_TOKEN is not set (environment or .env); create a bot at "
            "https://discord.com/developers/applications and export its token.",
            file=sys.stderr,
        )
        return 2
    from db.engine import check_database_url
    from db.errors import DatabaseConfigError

    try:
        check_database_url(settings.database_url)  # before logging in: a wrong URL or folder is one line
    except DatabaseConfigError as exc:
        print(f"lofi bot: {exc}", file=sys.stderr)
        return 2

    import discord

    from bot.app import LofiBot

    server = None
    if not settings.serving_address and not getattr(args, "no_embedded_serving", False):
        server = _start_embedded_server(settings)
        if server is not None:
            settings = settings.model_copy(update={"serving_address": server.address})

    bot = LofiBot(settings, sync_commands=not args.no_sync)
    try:
        # log_handler=None: logging is configured by `lofi` itself; discord.py never logs the token.
        bot.run(token, log_handler=None)
    except discord.LoginFailure:
        print("lofi bot: Discord refused the token (DISCORD_TOKEN is wrong or was reset).", file=sys.stderr)
        return 2
    except DatabaseConfigError as exc:  # e.g. PostgreSQL not reachable, found in setup_hook
        print(f"lofi bot: {exc}", file=sys.stderr)
        return 2
    except discord.PrivilegedIntentsRequired:
        print("lofi bot: Discord asked for privileged intents; this bot should need none.", file=sys.stderr)
        return 2
    finally:
        if server is not None:
            server.stop()
    return 0


def _start_embedded_server(settings):
    """SERVING_ADDRESS unset: serve `models_dir` in this process (the same gRPC API as TF Serving)."""
    try:
        from serving.server import EmbeddedServer, config_for_models_dir

        server = EmbeddedServer(
            config_for_models_dir(settings.models_dir),
            port=settings.serving_port,
            poll_s=1.0,
            models_dir=settings.models_dir,
        ).start()
    except Exception:
        log.exception("could not start the embedded model server; tracks will fail until serving is up")
        return None
    log.info("embedded model server for %s on %s", settings.models_dir, server.address)
    return server
