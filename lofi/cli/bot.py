"""`lofi bot`: run the Discord bot with settings from the environment."""

from __future__ import annotations

import argparse
import logging
import sys

from lofi.settings import Settings, get_settings

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


def run_bot(settings: Settings, *, sync: bool = True, embedded: bool = True) -> int:
    """Start the bot; exit 2 with a clear message when DISCORD_TOKEN is missing.

    With SERVING_ADDRESS unset (and `embedded`), an embedded model server serves MODELS_DIR meanwhile."""
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
    from lofi.logsafe import install_redaction

    install_redaction().add_secret(token)  # the exact token, whatever it looks like, never reaches a log
    from lofi.model_server import embedded_model_server

    with embedded_model_server(
        settings.serving_address,
        settings.models_dir,
        long_lived=True,
        port=settings.serving_port,
        embedded=embedded,
    ) as (address, server):
        factory = None
        if server is not None:  # the bot calls the store it embeds directly; other processes use gRPC
            from serving.local import LocalBackend

            async def factory(_settings):
                return LocalBackend(server.store)

        bot = LofiBot(
            settings.model_copy(update={"serving_address": address}),
            sync_commands=sync,
            client_factory=factory,
        )
        from lofi.collector import freeze_startup_objects

        freeze_startup_objects()  # the models (and discord.py, SQLAlchemy) are loaded: keep them out of gc
        try:
            # log_handler=None: logging is configured by `lofi` itself; discord.py never logs the token.
            bot.run(token, log_handler=None)
        except discord.LoginFailure:
            print(
                "lofi bot: Discord refused the token (DISCORD_TOKEN is wrong or was reset).", file=sys.stderr
            )
            return 2
        except DatabaseConfigError as exc:  # e.g. PostgreSQL not reachable, found in setup_hook
            print(f"lofi bot: {exc}", file=sys.stderr)
            return 2
        except discord.PrivilegedIntentsRequired:
            print(
                "lofi bot: Discord asked for privileged intents; this bot should need none.", file=sys.stderr
            )
            return 2
    return 0
