"""The bot application: it is given its resources (`bot.resources.BotResources`) by its entry point, builds
its services over them, and loads the cogs in `setup_hook`.

Usage (what `lofi bot` does, inside the `AsyncExitStack` that opened the resources)::

    async with LofiBot(settings, resources) as bot:
        await bot.start(settings.discord_token.get_secret_value())
"""

from __future__ import annotations

import asyncio
import logging
import os

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.ext import commands

from bot.config import BotSettings
from bot.error_handler import on_app_command_error
from bot.export_posting import ExportPoster
from bot.options import interaction_check as check_interaction_options
from bot.posting import TrackPoster, tell_interrupted
from bot.queue import JobQueue
from bot.radio.announce import RadioAnnouncer
from bot.radio.service import RadioService
from bot.radio.station import RadioConfig
from bot.resources import BotResources
from bot.services import (
    BrowseService,
    Requester,
    RetrainService,
    StatusService,
    TrackInfo,
    TrackService,
    VoteService,
)
from bot.services.exports import ExportService
from bot.views import DYNAMIC_ITEMS
from db import repository as repo
from music.request import TrackRequest

log = logging.getLogger(__name__)

# The names discord.py gives the tasks that run a slash command, a button or an event handler
HANDLER_TASKS = (
    "CommandTree-invoker",
    "discord-ui-view-dispatch-",
    "discord-ui-dynamic-item-",
    "discord.py: ",
)

EXTENSIONS = ("bot.cogs.lofi", "bot.cogs.votes", "bot.cogs.browse", "bot.cogs.admin", "bot.cogs.radio")


def configure_endpoints(api_base: str | None, gateway_url: str | None) -> None:
    """Point discord.py at another HTTP API base and gateway (a self-hosted or test Discord).

    discord.py builds every REST URL (interaction webhooks included) from `Route.BASE`. The sharded client
    opens its gateway connections at the `url` of `GET /gateway/bot` when it asks that route for the shard
    count, else (SHARD_COUNT set) at `DiscordWebSocket.DEFAULT_GATEWAY`; later resumes use the
    `resume_gateway_url` the gateway sends in READY. Both are class attributes, so this is process-wide.
    """
    if api_base:
        discord.http.Route.BASE = api_base.rstrip("/")
    if gateway_url:
        url = yarl.URL(gateway_url)
        if url.scheme not in ("ws", "wss"):
            raise ValueError(f"gateway URL must be ws:// or wss://, not {gateway_url!r}")
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = url


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


class LofiTree(app_commands.CommandTree["LofiBot"]):
    """The command tree: every option checked server-side, every error answered in one place."""

    async def interaction_check(self, interaction: discord.Interaction[LofiBot], /) -> bool:
        """Refuse a slash command whose options do not fit its declaration."""
        return await check_interaction_options(interaction)

    async def on_error(
        self, interaction: discord.Interaction[LofiBot], error: app_commands.AppCommandError, /
    ) -> None:
        """One clear ephemeral message per failure."""
        await on_app_command_error(interaction, error)


class LofiBot(commands.AutoShardedBot):
    """The LoFi bot over `resources` (opened and closed by its owner); `retrain_command` replaces
    `python -m training.runner`, `radio_config` the radio's settings. Then `await bot.start(token)`.

    It is sharded (discord.py's `AutoShardedBot`): `settings.shard_count` shards (unset: as many as Discord
    recommends), of which this process runs `settings.shard_ids` (unset: all), one gateway connection each.
    Nothing here holds one connection: a guild's voice goes through its own shard's connection
    (`guild.shard_id`), replies go over HTTP, and `latency` is the shards' mean.
    """

    def __init__(
        self,
        settings: BotSettings,
        resources: BotResources,
        *,
        retrain_command: list[str] | None = None,
        intents: discord.Intents | None = None,
        sync_commands: bool = True,
        radio_config: RadioConfig | None = None,
        connector: aiohttp.BaseConnector | None = None,
    ):
        self.settings = settings
        configure_endpoints(settings.discord_api_base, settings.discord_gateway_url)
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents or default_intents(),
            help_command=None,
            connector=connector,
            tree_cls=LofiTree,
            shard_count=settings.shard_count,
            # None (all shards) is discord.py's own default; its typed options name only a list
            shard_ids=settings.shard_ids,  # type: ignore[arg-type]
        )
        self.resources = resources
        self._sync_commands = sync_commands
        sessionmaker = self.sessionmaker = resources.sessionmaker
        self.queue = JobQueue(
            maxsize=settings.queue_size, workers=settings.workers, cooldown_s=settings.cooldown_s
        )
        self.tracks = TrackService(sessionmaker, resources.composer, settings.out_dir, settings.out_max_bytes)
        self.poster = TrackPoster(settings, self.tracks, self.queue)
        exports = ExportService(sessionmaker, resources.composer, settings.out_dir)
        self.exporter = ExportPoster(settings, exports, self.queue)  # the Stems and Loop buttons
        self._interrupted_notice: asyncio.Task[int] | None = None
        self.votes = VoteService(sessionmaker)
        self.browse = BrowseService(sessionmaker)
        self.status_service = StatusService(
            sessionmaker, resources.models, settings.serving_timeout_s, workers=resources.workers
        )
        self.retrains = RetrainService(sessionmaker, settings, retrain_command)
        # the radio renders in its own worker process: same engine, a separate service over it
        radio_tracks = TrackService(
            sessionmaker, resources.radio_composer, settings.out_dir, settings.out_max_bytes
        )
        size_limit = settings.upload_limit_bytes

        failing = False  # the radio's pieces fail: an outage is recorded by its first failed piece only

        async def compose_piece(request: TrackRequest, who: Requester) -> TrackInfo:
            nonlocal failing
            track_id = await radio_tracks.create(request, who)
            try:
                info = await radio_tracks.run(track_id, request, size_limit=size_limit)
            except Exception:
                if failing:  # each station retries every few seconds: 5-6 failed rows per outage otherwise
                    await radio_tracks.discard(track_id)
                failing = True
                raise
            failing = False
            return info

        self.radio = RadioService(
            self,
            sessionmaker,
            compose_piece,
            radio_config or RadioConfig.of_settings(settings),
            executor=resources.radio_worker,
            announce=RadioAnnouncer(self).announce,
        )

    async def setup_hook(self) -> None:
        """Fail the jobs a restart interrupted, start the queue, register the buttons, load the cogs."""
        interrupted = await self.tracks.fail_interrupted(
            shard_count=self.settings.shard_count, shard_ids=self.settings.shard_ids
        )
        async with self.sessionmaker.begin() as session:
            runs = await repo.fail_interrupted_retrains(session)
        if interrupted or runs:
            log.warning(
                "marked %d track(s) and %d retrain(s) left unfinished by a restart as failed",
                len(interrupted),
                runs,
            )
        # their users still read "Rendering…": tell them (in the background: Discord may be slow to answer)
        self._interrupted_notice = asyncio.create_task(tell_interrupted(self, interrupted))
        self.queue.start()
        self.add_dynamic_items(*DYNAMIC_ITEMS)
        for ext in EXTENSIONS:
            await self.load_extension(ext)
        if self._sync_commands:
            await self.sync_app_commands()

    async def sync_app_commands(self) -> list[discord.app_commands.AppCommand]:
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
        """Log who and where we are (every shard of this process is ready by now)."""
        user = self.user
        log.info(
            "logged in as %s (%s) in %d guild(s), shard(s) %s of %s",
            user,
            user.id if user else "?",
            len(self.guilds),
            sorted(self.shards),
            self.shard_count,
        )

    async def on_shard_ready(self, shard_id: int) -> None:
        """Log each shard as its guilds arrive."""
        count = sum(1 for g in self.guilds if g.shard_id == shard_id)
        log.info("shard %d of %s ready with %d guild(s)", shard_id, self.shard_count, count)

    async def _finish_handlers(self, timeout_s: float = 5.0) -> None:
        """Let the interaction and event handlers still running finish, and cancel what is left after
        `timeout_s`: their database sessions are then back in the pool before the owner disposes of the
        engine (a handler the closing loop cancelled later left a connection nobody returned)."""
        current = asyncio.current_task()
        running = [
            t for t in asyncio.all_tasks() if t is not current and t.get_name().startswith(HANDLER_TASKS)
        ]
        if not running:
            return
        _, pending = await asyncio.wait(running, timeout=timeout_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def close(self) -> None:
        """Stop the queue, the radios and the retrain process, then disconnect (the resources are the owner's)."""
        if self._interrupted_notice is not None:
            self._interrupted_notice.cancel()
        await self.queue.stop()
        await self.radio.shutdown()
        await self.votes.close()
        self.retrains.terminate()
        await self._finish_handlers()
        if not isinstance(self.loop, asyncio.AbstractEventLoop):
            # never entered nor logged in: the sharded client's close needs the event queue its setup makes
            await self._async_setup_hook()
        await super().close()
