"""The one place a track is posted: `/lofi`, the Variation and Extend buttons and the radio's "Post this piece"
button all call `TrackPoster` (queue, progress, the post with its files, buttons and vote reactions)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import discord

from bot.config import BotSettings
from bot.error_handler import describe, fit, send_error
from bot.format import DOWN, UP, VOTE_EMOJI, clock, jump_url
from bot.interactions import bot_is_member
from bot.queue import JobQueue
from bot.services import Extension, Requester, TrackInfo, TrackService
from bot.views import track_view
from bot.vote_buttons import voted_view
from db.repository import Interrupted
from music.progress import Stage
from music.request import TrackRequest

log = logging.getLogger(__name__)

STAGES = {
    "queued": "⏳ Starting",
    "composing": "🎼 Composing",
    "arranging": "🎹 Arranging",
    "rendering": "🎧 Rendering",
    "mastering": "🎚️ Mastering",
    "encoding": "💾 Encoding",
    "uploading": "📤 Uploading",
}


def track_embed(info: TrackInfo, user: discord.abc.User) -> discord.Embed:
    """The embed posted with a track."""
    embed = discord.Embed(
        title=info.title,
        colour=discord.Colour.from_rgb(120, 100, 180),
        description=f"A **{info.mood}** LoFi track for {user.mention}",
    )
    embed.add_field(name="Mood", value=info.mood)
    embed.add_field(name="Length", value=clock(info.length_s))
    embed.add_field(name="Tempo", value=f"{info.bpm:.0f} bpm")
    embed.add_field(name="Key", value=info.key)
    embed.add_field(name="Seed", value=str(info.seed))
    if info.versions:
        embed.add_field(
            name="Models",
            value=", ".join(f"{k} v{v}" for k, v in sorted(info.versions.items()))[:1024],
            inline=False,
        )
    if info.cover is not None:
        embed.set_image(url=f"attachment://{info.cover.name}")
    embed.set_footer(text=f"Track #{info.track_id} · asked by {user.display_name} · vote with {UP} / {DOWN}")
    return embed


class ProgressReporter:
    """Edits the original (ephemeral) response as stages change; edits are coalesced so a chatty engine
    cannot hit Discord's rate limits, and they never block it. A `music.progress.Progress`."""

    def __init__(self, interaction: discord.Interaction, prefix: str):
        self.interaction = interaction
        self.prefix = prefix
        self.loop = asyncio.get_running_loop()
        self._latest: str | None = None
        self._shown: str | None = None
        self._task: asyncio.Task[None] | None = None

    def __call__(self, stage: Stage | str, fraction: float | None = None, /) -> None:
        """`progress(Stage.RENDERING)`, `progress(Stage.COMPOSING, 0.4)`: from the loop or a worker thread."""
        name = str(stage)
        text = STAGES.get(name.lower(), f"⚙️ {name.capitalize()}" if name else "⚙️ Working")
        if isinstance(fraction, int | float) and 0 <= fraction <= 1:
            text += f" ({fraction:.0%})"
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self.show(text)
        else:
            self.loop.call_soon_threadsafe(self.show, text)  # called from a worker thread

    def show(self, text: str) -> None:
        """Show `text` (soon; the latest wins)."""
        self._latest = text
        if self._task is None or self._task.done():
            self._task = self.loop.create_task(self._flush())

    async def _flush(self) -> None:
        while self._latest is not None and self._latest != self._shown:
            text = self._shown = self._latest
            try:
                await self.interaction.edit_original_response(content=f"{self.prefix}\n{text}…")
            except discord.HTTPException as exc:
                log.debug("progress edit failed: %s", exc)
            await asyncio.sleep(1.0)

    async def close(self) -> None:
        """Stop editing."""
        self._latest = None
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def _attachments(info: TrackInfo, *, cover: bool = True) -> list[discord.File]:
    # discord.py closes the files after a send, so every attempt needs fresh ones.
    paths = [info.mp3, info.midi] + ([info.cover] if cover and info.cover is not None else [])
    return [discord.File(p, filename=p.name) for p in paths]


class TrackPoster:
    """Makes tracks for interactions and posts them (see the module docstring)."""

    def __init__(self, settings: BotSettings, tracks: TrackService, queue: JobQueue):
        self.settings = settings
        self.tracks = tracks
        self.queue = queue

    async def make_and_post(
        self, interaction: discord.Interaction, request: TrackRequest, *, extension: Extension | None = None
    ) -> None:
        """Queue the request, report progress, post the result (`extension`: continue that track)."""
        tracks, queue = self.tracks, self.queue
        queue.check(interaction.user.id)  # refuse (ephemerally) before deferring
        await interaction.response.defer(ephemeral=True, thinking=True)
        who = Requester(
            interaction.user.id, str(interaction.user), interaction.guild_id, interaction.channel_id
        )
        # the reply is kept with the track while it is made: a restart can then tell this user
        track_id = await tracks.create(request, who, reply=(interaction.application_id, interaction.token))
        prefix = f"**{request.mood}** track, {clock(request.length_s)}, seed {request.seed}"
        progress = ProgressReporter(interaction, prefix)
        limit = self.settings.upload_limit_bytes
        size_limit = min(limit, getattr(interaction, "filesize_limit", None) or limit)

        def moved(position: int) -> None:
            if position > 0:
                progress.show(f"⏳ Position {position} in the queue")

        async def job() -> TrackInfo:
            return await tracks.run(
                track_id, request, size_limit=size_limit, progress=progress, extension=extension
            )

        try:
            queued = queue.submit(interaction.user.id, job, on_position=moved)
        except Exception:
            await tracks.fail(track_id, "refused by the queue")
            raise
        if queue.busy and queued.position > 0:
            progress.show(f"⏳ Position {queued.position} in the queue")
        else:
            progress.show(STAGES["queued"])
        try:
            info: TrackInfo = await queued
        except Exception as exc:
            await progress.close()
            text = fit("❌ " + describe(exc))
            try:
                await interaction.edit_original_response(content=text)
            except discord.HTTPException:
                await send_error(interaction, text)
            return
        await progress.close()
        try:
            await self._post(interaction, info)
        except Exception as exc:
            await tracks.fail(track_id, f"posting failed: {type(exc).__name__}: {exc}")
            raise

    async def _post(self, interaction: discord.Interaction, info: TrackInfo) -> None:
        embed = track_embed(info, interaction.user)
        # Where the bot is not in the server (a DM, a group DM, a server where only the user installed the app)
        # it may not react nor post, and sees no reactions: votes are buttons and the webhook is the only way.
        member = bot_is_member(interaction)
        view = track_view(info.track_id) if member else voted_view(info.track_id)
        content = f"🎶 {interaction.user.mention}, your track is ready"
        # The first follow-up replaces a still-"thinking" deferred response and inherits its ephemeral
        # flag; editing the original first makes sure the track is posted publicly, where people can vote.
        with contextlib.suppress(discord.HTTPException):
            await interaction.edit_original_response(content=STAGES["uploading"] + "…")
        message: discord.Message
        try:
            message = await interaction.followup.send(
                content=content, embed=embed, files=_attachments(info), view=view, wait=True
            )
        except discord.HTTPException as exc:
            if exc.status == 413:
                await self.tracks.fail(info.track_id, f"upload refused: {exc}")
                await send_error(interaction, describe(exc))
                return
            channel = interaction.channel
            if not member or not isinstance(channel, discord.abc.Messageable):
                raise
            # The interaction token lasts 15 minutes; a long queue can outlive it. Post with the bot instead.
            log.warning("follow-up failed (%s); posting to the channel directly", exc)
            message = await channel.send(content=content, embed=embed, files=_attachments(info), view=view)
        await self.tracks.set_message(
            info.track_id, message_id=message.id, channel_id=message.channel.id, guild_id=interaction.guild_id
        )
        # A webhook message does not know its guild; build the link from the interaction's.
        link = jump_url(interaction.guild_id, message.channel.id, message.id)
        with contextlib.suppress(discord.HTTPException):
            await interaction.edit_original_response(content=f"✅ Done: {link}")
        if member:
            await _add_votes(message)

    async def post_piece(self, interaction: discord.Interaction, track_id: int) -> None:
        """Post a finished radio piece (MP3 + MIDI) publicly, with vote reactions that count like on /lofi."""
        info = await self.tracks.info(track_id)
        await interaction.response.defer(thinking=True)
        embed = track_embed(info, interaction.user)
        embed.description = (
            f"A **{info.mood}** piece from the LoFi radio, posted by {interaction.user.mention}"
        )
        message = await interaction.followup.send(
            embed=embed, files=_attachments(info, cover=False), view=track_view(track_id), wait=True
        )
        with contextlib.suppress(Exception):
            await self.tracks.set_message(
                track_id, message_id=message.id, channel_id=message.channel.id, guild_id=interaction.guild_id
            )
        await _add_votes(message)


# An interaction token edits its reply for 15 minutes; a margin for the clocks and the restart itself.
REPLY_LIFETIME = timedelta(minutes=14)
INTERRUPTED_TEXT = "❌ The bot restarted while making this track, so it was lost; please ask again."


async def tell_interrupted(client: discord.Client, interrupted: Sequence[Interrupted]) -> int:
    """Edit the reply of every track a restart interrupted (while Discord still accepts its token) to say so;
    returns how many were told. Failures are logged: the track is already marked failed."""
    told = 0
    now = datetime.now(UTC)
    for track in interrupted:
        if track.reply is None or now - track.created_at > REPLY_LIFETIME:
            continue
        application_id, token = track.reply
        webhook = discord.Webhook.partial(application_id, token, client=client)
        try:
            # "@original" is Discord's name for the interaction's own reply (the deferred "thinking" one)
            await webhook.edit_message("@original", content=INTERRUPTED_TEXT)  # type: ignore[call-overload]
            told += 1
        except discord.HTTPException as exc:
            log.info("could not tell the user of interrupted track %s: %s", track.track_id, exc)
    return told


async def _add_votes(message: discord.Message) -> None:
    for emoji in VOTE_EMOJI:
        try:
            await message.add_reaction(emoji)
        except discord.HTTPException as exc:
            log.warning("could not add %s to message %s: %s", emoji, message.id, exc)
