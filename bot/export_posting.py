"""Sending a track's stems or loop to whoever clicked: the render waits in the job queue like any track (it
is FluidSynth over the whole track), and the files go out ephemerally, packed into as few follow-ups as
Discord takes: at most 10 attachments and the upload limit per message."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import discord

from bot.config import BotSettings
from bot.error_handler import describe, fit
from bot.queue import JobQueue
from bot.services.common import Viewer
from bot.services.exports import ExportService, ExportSource
from music.producer_files import ExportFiles

MAX_FILES = 10  # Discord's attachments per message

STEMS_TEXT = (
    "🎛️ **{title}** as stems: keys, bass, melody, drums and ambience, each the track's full length (drop them "
    "all at bar 1), summing to the mix before mastering; with each part's MIDI."
)
LOOP_TEXT = "🔁 **{title}**: a {bars}-bar seamless loop of its main section (it plays round without a click), with its MIDI."


def pack(
    paths: Sequence[Path], limit: int, max_files: int = MAX_FILES
) -> tuple[list[list[Path]], list[Path]]:
    """`paths` in order, grouped into messages of at most `max_files` files and `limit` bytes together; and
    the files over `limit` on their own (none can be sent)."""
    groups: list[list[Path]] = []
    too_big: list[Path] = []
    size = 0
    for path in paths:
        n = path.stat().st_size
        if n > limit:
            too_big.append(path)
            continue
        if not groups or len(groups[-1]) >= max_files or size + n > limit:
            groups.append([])
            size = 0
        groups[-1].append(path)
        size += n
    return groups, too_big


class ExportPoster:
    """The Stems and Loop buttons' work: check, queue, render, send (see the module docstring)."""

    def __init__(self, settings: BotSettings, exports: ExportService, queue: JobQueue):
        self.settings = settings
        self.exports = exports
        self.queue = queue

    async def stems(self, interaction: discord.Interaction, track_id: int) -> None:
        """Send the stems of track `track_id` (and each part's MIDI) to whoever clicked."""
        source = await self.exports.source(track_id, Viewer(interaction.user.id, interaction.guild_id))

        async def render(limit: int) -> tuple[str, ExportFiles]:
            return STEMS_TEXT.format(title=source.title), await self.exports.stems_of(
                source, size_limit=limit
            )

        await self._queue_and_send(interaction, source, "the stems", render)

    async def loop(self, interaction: discord.Interaction, track_id: int) -> None:
        """Send a seamless loop of track `track_id`'s main section (and its MIDI) to whoever clicked."""
        source = await self.exports.source(track_id, Viewer(interaction.user.id, interaction.guild_id))

        async def render(limit: int) -> tuple[str, ExportFiles]:
            bars, files = await self.exports.loop_of(source, size_limit=limit)
            return LOOP_TEXT.format(title=source.title, bars=bars), files

        await self._queue_and_send(interaction, source, "a loop", render)

    async def _queue_and_send(
        self,
        interaction: discord.Interaction,
        source: ExportSource,
        what: str,
        render: Callable[[int], Awaitable[tuple[str, ExportFiles]]],
    ) -> None:
        self.queue.check(interaction.user.id)  # refuse (ephemerally) before deferring
        await interaction.response.defer(ephemeral=True, thinking=True)
        limit = self.settings.upload_limit_bytes
        limit = min(limit, getattr(interaction, "filesize_limit", None) or limit)
        job = self.queue.submit(interaction.user.id, lambda: render(limit))
        waiting = f"⏳ Position {job.position} in the queue" if self.queue.busy and job.position else ""
        # The first follow-up would replace a still-"thinking" response: show progress there first.
        with contextlib.suppress(discord.HTTPException):
            await interaction.edit_original_response(
                content=waiting or f"🎧 Rendering {what} of **{source.title}**…"
            )
        try:
            text, files = await job
        except Exception as exc:
            with contextlib.suppress(discord.HTTPException):
                await interaction.edit_original_response(content=fit("❌ " + describe(exc)))
            return
        try:
            sent = await self._send(interaction, text, source.title, files, limit)
        finally:
            # posted, they live on Discord; the render is made again on the next click
            for folder in {p.parent for p in files.files}:
                await asyncio.to_thread(shutil.rmtree, folder, True)
        with contextlib.suppress(discord.HTTPException):
            await interaction.edit_original_response(
                content=f"✅ {what.capitalize()} of **{source.title}**: {sent} files below."
            )

    async def _send(
        self, interaction: discord.Interaction, text: str, title: str, files: ExportFiles, limit: int
    ) -> int:
        groups, too_big = pack(files.files, limit)
        notes = list(files.notes) + [
            f"`{p.name}` is over the upload limit and was left out." for p in too_big
        ]
        content = "\n".join([text, *(f"⚠️ {note}" for note in notes)])
        for i, group in enumerate(groups):
            part = f" ({i + 1}/{len(groups)})" if len(groups) > 1 else ""
            await interaction.followup.send(
                content=fit(content + part if i == 0 else f"**{title}**{part}"),
                files=[discord.File(p, filename=p.name) for p in group],
                ephemeral=True,
            )
        if not groups:
            await interaction.followup.send(content=fit(content), ephemeral=True)
        return sum(len(g) for g in groups)
