"""`/lofi length mood [seed] [tempo]`: validate, queue, show progress, post the track with its buttons."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.error_handler import describe, fit, send_error
from bot.format import DOWN, UP, VOTE_EMOJI, clock, jump_url
from bot.services import Requester, TrackInfo
from bot.transformers import Duration
from bot.views import ExtendButton, ExtendSelect, MidiButton, VariationButton, track_view
from music.limits import MAX_BPM, MIN_BPM, SEED_MAX
from music.request import TrackRequest, mood_names

log = logging.getLogger(__name__)

STAGES = {
    "queued": "⏳ Starting",
    "composing": "🎼 Composing",
    "generating": "🎼 Composing",
    "arranging": "🎹 Arranging",
    "rendering": "🎧 Rendering",
    "effects": "🎛️ Adding effects",
    "mastering": "🎚️ Mastering",
    "encoding": "💾 Encoding",
    "cover": "🖼️ Drawing the cover",
    "uploading": "📤 Uploading",
}
MOOD_CHOICES = [app_commands.Choice(name=m, value=m) for m in mood_names()][:25]


fmt_length = clock  # `2:05`


def track_embed(info: TrackInfo, user: discord.abc.User) -> discord.Embed:
    """The embed posted with a track."""
    embed = discord.Embed(
        title=info.title,
        colour=discord.Colour.from_rgb(120, 100, 180),
        description=f"A **{info.mood}** LoFi track for {user.mention}",
    )
    embed.add_field(name="Mood", value=info.mood)
    embed.add_field(name="Length", value=fmt_length(info.length_s))
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
    """Edits the original (ephemeral) response as stages change; edits are coalesced so a chatty pipeline
    cannot hit Discord's rate limits, and they never block the pipeline."""

    def __init__(self, interaction: discord.Interaction, prefix: str):
        self.interaction = interaction
        self.prefix = prefix
        self.loop = asyncio.get_running_loop()
        self._latest: str | None = None
        self._shown: str | None = None
        self._task: asyncio.Task | None = None

    def __call__(self, stage: Any = None, *args: Any, **kwargs: Any) -> asyncio.Future | None:
        """The pipeline's `progress` callback: `progress("rendering")`, `progress("composing", 0.4)`, ..."""
        name = str(getattr(stage, "value", stage) or "")
        text = STAGES.get(name.lower(), f"⚙️ {name.capitalize()}" if name else "⚙️ Working")
        fraction = args[0] if args and isinstance(args[0], int | float) else kwargs.get("fraction")
        if isinstance(fraction, int | float) and 0 <= fraction <= 1:
            text += f" ({fraction:.0%})"
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self.show(text)
            done = self.loop.create_future()  # awaitable, for a pipeline that awaits its callback
            done.set_result(None)
            return done
        self.loop.call_soon_threadsafe(self.show, text)  # called from a worker thread
        return None

    def show(self, text: str) -> None:
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
        self._latest = None
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


class Lofi(commands.Cog):
    """Track requests."""

    def __init__(self, bot: commands.Bot):
        self.bot = bot

    @app_commands.command(name="lofi", description="Compose a LoFi track")
    @app_commands.describe(
        length="How long: 2m, 90s, 1m30s, 1:30 or 120",
        mood="The mood of the track",
        seed="Same seed, same track (optional)",
        tempo="Beats per minute (optional)",
    )
    @app_commands.choices(mood=MOOD_CHOICES)
    async def lofi(
        self,
        interaction: discord.Interaction,
        length: Duration,
        mood: app_commands.Choice[str],
        seed: app_commands.Range[int, 0, SEED_MAX] | None = None,
        tempo: app_commands.Range[int, MIN_BPM, MAX_BPM] | None = None,
    ) -> None:
        """Compose a track for the caller."""
        request = TrackRequest(
            length_s=length,
            mood=mood.value,
            seed=seed if seed is not None else random.randint(0, SEED_MAX),
            bpm=float(tempo) if tempo is not None else None,
        )
        await self.make_and_post(interaction, request)

    async def make_and_post(
        self, interaction: discord.Interaction, request: TrackRequest, *, tracks: Any = None
    ) -> None:
        """Queue the request, report progress, post the result (used by /lofi, the Variation and Extend
        buttons; Extend passes a track service whose pipeline continues the original track)."""
        bot = self.bot
        tracks = tracks or bot.tracks
        bot.queue.check(interaction.user.id)  # refuse (ephemerally) before deferring
        await interaction.response.defer(ephemeral=True, thinking=True)
        who = Requester(
            interaction.user.id, str(interaction.user), interaction.guild_id, interaction.channel_id
        )
        track_id = await tracks.create(request, who)
        prefix = f"**{request.mood}** track, {fmt_length(request.length_s)}, seed {request.seed}"
        progress = ProgressReporter(interaction, prefix)
        size_limit = min(
            bot.settings.upload_limit_bytes,
            getattr(interaction, "filesize_limit", None) or bot.settings.upload_limit_bytes,
        )

        def moved(position: int) -> None:
            if position > 0:
                progress.show(f"⏳ Position {position} in the queue")

        async def job() -> TrackInfo:
            return await tracks.run(track_id, request, size_limit=size_limit, progress=progress)

        try:
            queued = bot.queue.submit(interaction.user.id, job, on_position=moved)
        except Exception:
            await tracks.fail(track_id, "refused by the queue")
            raise
        if bot.queue.busy and queued.position > 0:
            progress.show(f"⏳ Position {queued.position} in the queue")
        else:
            progress.show(STAGES["queued"])
        try:
            info = await queued
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
            await self._post(interaction, info, track_id)
        except Exception as exc:
            await bot.tracks.fail(track_id, f"posting failed: {type(exc).__name__}: {exc}")
            raise

    async def _post(self, interaction: discord.Interaction, info: TrackInfo, track_id: int) -> None:
        def attachments() -> list[discord.File]:
            # discord.py closes the files after a send, so every attempt needs fresh ones.
            paths = [info.mp3, info.midi] + ([info.cover] if info.cover is not None else [])
            return [discord.File(p, filename=p.name) for p in paths]

        embed = track_embed(info, interaction.user)
        view = track_view(track_id)
        content = f"🎶 {interaction.user.mention}, your track is ready"
        # The first follow-up replaces a still-"thinking" deferred response and inherits its ephemeral
        # flag; editing the original first makes sure the track is posted publicly, where people can vote.
        with contextlib.suppress(discord.HTTPException):
            await interaction.edit_original_response(content=STAGES["uploading"] + "…")
        try:
            message = await interaction.followup.send(
                content=content, embed=embed, files=attachments(), view=view, wait=True
            )
        except discord.HTTPException as exc:
            if exc.status == 413:
                await self.bot.tracks.fail(track_id, f"upload refused: {exc}")
                await send_error(interaction, describe(exc))
                return
            # The interaction token lasts 15 minutes; a long queue can outlive it. Post with the bot instead.
            log.warning("follow-up failed (%s); posting to the channel directly", exc)
            message = await interaction.channel.send(
                content=content, embed=embed, files=attachments(), view=view
            )
        await self.bot.tracks.set_message(
            track_id, message_id=message.id, channel_id=message.channel.id, guild_id=interaction.guild_id
        )
        # A webhook message does not know its guild; build the link from the interaction's.
        link = jump_url(interaction.guild_id, message.channel.id, message.id)
        with contextlib.suppress(discord.HTTPException):
            await interaction.edit_original_response(content=f"✅ Done: {link}")
        for emoji in VOTE_EMOJI:
            try:
                await message.add_reaction(emoji)
            except discord.HTTPException as exc:
                log.warning("could not add %s to message %s: %s", emoji, message.id, exc)


async def setup(bot: commands.Bot) -> None:
    """Load the cog and register the persistent buttons."""
    bot.add_dynamic_items(VariationButton, MidiButton, ExtendButton, ExtendSelect)
    await bot.add_cog(Lofi(bot))
