"""The bot application: long-lived resources are made in `setup_hook` and closed in `close`.

Usage (what `lofi bot` does)::

    bot = LofiBot(settings, pipeline=make_track)   # pipeline and serving client factory are injectable
    await bot.start(settings.discord_token.get_secret_value())
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import discord
import yarl
from discord.ext import commands
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import BotSettings
from bot.error_handler import on_app_command_error
from bot.options import interaction_check as check_interaction_options
from bot.queue import JobQueue
from bot.services import (
    BrowseService,
    Pipeline,
    RetrainService,
    StatusService,
    TrackService,
    VoteService,
    default_pipeline,
)
from db import repository as repo
from db.engine import make_engine, make_sessionmaker, upgrade_engine

log = logging.getLogger(__name__)

EXTENSIONS = ("bot.cogs.lofi", "bot.cogs.votes", "bot.cogs.browse", "bot.cogs.admin", "bot.cogs.radio")

ClientFactory = Callable[[BotSettings], Awaitable[Any]]


def configure_endpoints(api_base: str | None, gateway_url: str | None) -> None:
    """Point discord.py at another HTTP API base and gateway (a self-hosted or test Discord).

    discord.py builds every REST URL (interaction webhooks included) from `Route.BASE`, and a non-sharded
    client opens its first gateway connection at `DiscordWebSocket.DEFAULT_GATEWAY` (later resumes use the
    `resume_gateway_url` the gateway sends in READY). Both are class attributes, so this is process-wide.
    """
    if api_base:
        discord.http.Route.BASE = api_base.rstrip("/")
    if gateway_url:
        url = yarl.URL(gateway_url)
        if url.scheme not in ("ws", "wss"):
            raise ValueError(f"gateway URL must be ws:// or wss://, not {gateway_url!r}")
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = url


def _warm_render_stack(options: dict) -> None:
    try:
        from music.track import warm_up

        warm_up(**options)
    except Exception as exc:  # a real problem (no soundfont, say) is reported by the first track itself
        log.warning("could not load the audio stack ahead of the first track: %s", exc)


def render_pool_size(configured: int = 0) -> int:
    """Tracks that render at once: `configured`, or one per CPU core when it is 0."""
    return configured if configured > 0 else max(1, os.cpu_count() or 1)


def default_intents() -> discord.Intents:
    """Guilds (channels, slash commands), guild reactions (votes) and voice states (who is in which voice
    channel, for the radio); nothing privileged."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_reactions = True
    intents.voice_states = True
    return intents


async def default_client_factory(settings: BotSettings) -> Any:
    """The real serving client for `settings.serving_address` (the embedded server's port when unset)."""
    from serving.client import ServingClient

    address = settings.serving_address or f"127.0.0.1:{settings.serving_port}"
    return ServingClient(address, timeout_s=settings.serving_timeout_s)


class LofiBot(commands.Bot):
    """The LoFi bot. Construct with settings (`lofi.settings.Settings`) and optionally a fake pipeline,
    a serving client factory and a retrain command; then `await bot.start(token)` (or `bot.run(token)`)."""

    def __init__(
        self,
        settings: BotSettings,
        *,
        pipeline: Pipeline | None = None,
        client_factory: ClientFactory | None = None,
        retrain_command: list[str] | None = None,
        intents: discord.Intents | None = None,
        sync_commands: bool = True,
        radio_config: Any = None,
        **options: Any,
    ):
        self.settings = settings
        configure_endpoints(self.settings.discord_api_base, self.settings.discord_gateway_url)
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents or default_intents(),
            help_command=None,
            **options,
        )
        self._pipeline = pipeline
        self._client_factory = client_factory or default_client_factory
        self._retrain_command = retrain_command
        self._sync_commands = sync_commands
        self.radio_config = radio_config  # bot.radio.station.RadioConfig; None = from the settings
        self.engine: AsyncEngine | None = None
        self.sessionmaker: async_sessionmaker[AsyncSession] | None = None
        self.serving: Any = None
        self.executor: ThreadPoolExecutor | None = None
        self.queue: JobQueue | None = None
        self.tracks: TrackService
        self.votes: VoteService
        self.browse: BrowseService
        self.status_service: StatusService
        self.retrains: RetrainService

    async def setup_hook(self) -> None:
        """Open the database (migrated, interrupted jobs failed), the serving client, the queue; load cogs."""
        s = self.settings
        self.engine = make_engine(s.database_url)
        await upgrade_engine(self.engine)
        self.sessionmaker = make_sessionmaker(self.engine)
        async with self.sessionmaker.begin() as session:
            tracks = await repo.fail_interrupted(session)
            runs = await repo.fail_interrupted_retrains(session)
        if tracks or runs:
            log.warning(
                "marked %d track(s) and %d retrain(s) left unfinished by a restart as failed", tracks, runs
            )

        try:
            self.serving = await self._client_factory(s)
        except Exception:
            # The bot still starts: /lofi-status reports serving down and jobs fail with a clear message.
            log.exception("could not create the serving client")
            self.serving = None
        # rendering is bounded by the cores (FluidSynth, pedalboard, numpy and ffmpeg release the GIL), while
        # up to `workers` jobs are in flight and share one generation batch
        self.executor = ThreadPoolExecutor(
            max_workers=render_pool_size(getattr(s, "render_workers", 0)), thread_name_prefix="lofi-render"
        )
        if self._pipeline is None:  # the first track need not wait for the soundfont and grooves to load
            self.executor.submit(_warm_render_stack, s.render_options())
        pipeline = self._pipeline or default_pipeline(s)
        self.tracks = TrackService(self.sessionmaker, pipeline, self.serving_client, s.out_dir, self.executor)
        self.votes = VoteService(self.sessionmaker)
        self.browse = BrowseService(self.sessionmaker)
        self.status_service = StatusService(self.sessionmaker, self.serving_client, s.serving_timeout_s)
        self.retrains = RetrainService(self.sessionmaker, s, self._retrain_command)
        self.queue = JobQueue(maxsize=s.queue_size, workers=s.workers, cooldown_s=s.cooldown_s)
        self.queue.start()

        self.tree.on_error = on_app_command_error
        self.tree.interaction_check = check_interaction_options  # every option, server-side
        for ext in EXTENSIONS:
            await self.load_extension(ext)
        if self._sync_commands:
            await self.sync_app_commands()

    def serving_client(self) -> Any:
        """The serving client (None when it could not be created)."""
        if self.serving is None:
            from serving.errors import ServingUnavailable

            raise ServingUnavailable("no serving client")
        return self.serving

    async def sync_app_commands(self) -> list[Any]:
        """Sync slash commands to DISCORD_GUILD_ID (instant) if set, else globally."""
        if self.settings.discord_guild_id:
            guild = discord.Object(id=self.settings.discord_guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d commands to guild %s", len(synced), guild.id)
        else:
            synced = await self.tree.sync()
            log.info("synced %d global commands", len(synced))
        return synced

    async def on_ready(self) -> None:
        """Log who and where we are."""
        log.info(
            "logged in as %s (%s) in %d guild(s)", self.user, getattr(self.user, "id", "?"), len(self.guilds)
        )

    async def close(self) -> None:
        """Stop the queue, the retrain process, the serving client and the database, then disconnect."""
        if self.queue is not None:
            await self.queue.stop()
        proc = getattr(getattr(self, "retrains", None), "process", None)
        if proc is not None and proc.returncode is None:
            proc.terminate()
        if self.serving is not None:
            closer = getattr(self.serving, "close", None)
            if closer is not None:
                try:
                    result = closer()
                    if hasattr(result, "__await__"):
                        await result
                except Exception:
                    log.exception("closing the serving client failed")
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
        await super().close()
        if self.engine is not None:
            await self.engine.dispose()
