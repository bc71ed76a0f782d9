"""Admin commands: `/lofi-retrain [epochs] [include_votes]` and `/lofi-status`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import LofiBot
from bot.checks import is_admin_here, require_admin
from bot.format import DOWN, UP
from bot.interactions import anywhere, servers_only
from bot.services import Requester, RetrainOutcome, StatusReport
from bot.services.retrain import MusicUpload, check_upload
from db.models import RetrainStatus

log = logging.getLogger(__name__)

EDIT_EVERY_S = 2.0
EVENTS = {
    "evaluate_old": "scoring the served models",
    "train_start": "training",
    "member_start": "starting a member",
    "evaluate_new": "scoring the new models",
    "done": "publishing",
    "reading_upload": "reading your music",
}


def progress_text(run_id: int, event: dict[str, Any]) -> str:
    """One status line from a training progress event (epoch, loss, ... whatever the trainer sent)."""
    parts = []
    if "member" in event:
        parts.append(f"member {event['member']}")
    if "epoch" in event:
        total = event.get("epochs") or event.get("total_epochs")
        parts.append(f"epoch {event['epoch']}" + (f"/{total}" if total else ""))
    for key in ("loss", "val_loss", "val_acc"):
        value = event.get(key)
        if isinstance(value, int | float):
            parts.append(f"{key} {value:.4f}")
    if event.get("event") == "upload":
        parts.append(upload_summary(event))
    if not parts:
        kind = str(event.get("event") or "")
        parts.append(EVENTS.get(kind) or str(event.get("message") or kind or "working"))
    return f"🛠️ Retrain #{run_id} running: " + ", ".join(parts)


def upload_summary(report: dict[str, Any]) -> str:
    """What was read of an attachment: "read 12 pieces from your zip, skipped 2 (song3.mid: ...; ...)"."""
    read, skipped = int(report.get("read") or 0), int(report.get("skipped") or 0)
    text = f"read {read} piece{'s' if read != 1 else ''} from your {report.get('kind') or 'file'}"
    if skipped:
        reasons = "; ".join(f"{where}: {why}" for where, why in report.get("reasons") or [])
        text += f", skipped {skipped}" + (f" ({reasons}{'; ...' if skipped > 5 else ''})" if reasons else "")
    return text


def outcome_text(outcome: RetrainOutcome) -> str:
    """The final line of a retrain (and what it read of an attached file)."""
    read = outcome.upload if outcome.upload and "read" in outcome.upload else None
    music = f"\n📥 {upload_summary(read)}" if read else ""
    if outcome.status is RetrainStatus.promoted:
        head = f"✅ Retrain #{outcome.run_id}: new version {outcome.new_version} promoted. {outcome.message}"
    elif outcome.status is RetrainStatus.kept:
        head = f"↩️ Retrain #{outcome.run_id}: the current models stay (new ones were not better). {outcome.message}"
    else:
        head = f"❌ Retrain #{outcome.run_id} failed; serving is unchanged. {outcome.message}"
    return (head[: 2000 - len(music)] + music)[:2000]


def workers_line(report: StatusReport, *, admin: bool) -> str:
    """Who makes the tracks when they are jobs on a broker: the workers that answered (named for admins)."""
    workers = report.workers or {}
    if not workers:
        reason = f" ({report.workers_detail})" if admin and report.workers_detail else ""
        return f"🔴 no worker answered{reason}: tracks wait in the queue until one starts"
    busy = sum(workers.values())
    line = f"🟢 {len(workers)} online, {busy} track{'s' if busy != 1 else ''} in progress"
    if admin:
        line += "\n" + "\n".join(f"`{name}`: {jobs}" for name, jobs in sorted(workers.items()))
    return line


def status_embed(report: StatusReport, *, admin: bool = False) -> discord.Embed:
    """The /lofi-status embed. Internals (the model server's address and raw errors, member states, retrain
    messages) are for admins; everyone else reads whether the model server is reachable."""
    colour = discord.Colour.green() if report.serving_ok else discord.Colour.red()
    embed = discord.Embed(title="LoFi bot status", colour=colour)
    if admin:
        serving = "🟢 up" if report.serving_ok else f"🔴 {report.serving_detail}"
        members = "\n".join(f"`{name}` {state}" for name, state in sorted(report.members.items()))
        serving += "\n" + members if members else ""
    else:
        serving = "🟢 model server: reachable" if report.serving_ok else "🔴 model server: not reachable"
    embed.add_field(name="Serving", value=serving[:1024], inline=False)
    if report.workers is not None:
        embed.add_field(name="Workers", value=workers_line(report, admin=admin)[:1024], inline=False)
    embed.add_field(name="Queue", value=f"{report.queue_waiting} waiting, {report.queue_running} running")
    embed.add_field(name="Tracks (24 h)", value=str(report.tracks_today))
    last = report.last_retrain if admin else report.last_retrain_public
    embed.add_field(name="Last retrain", value=(last or "never")[:1024], inline=False)
    votes = "\n".join(
        f"`{version}`: {v['score']:+d} ({UP}{v['up']} {DOWN}{v['down']}, {v['tracks']} tracks)"
        for version, v in sorted(report.votes_by_version.items())
    )
    embed.add_field(name="Votes per model version", value=(votes or "no tracks yet")[:1024], inline=False)
    return embed


class Admin(commands.Cog):
    """Retraining and status."""

    def __init__(self, bot: LofiBot):
        self.bot = bot
        self._tasks: set[asyncio.Task[None]] = set()

    async def cog_unload(self) -> None:
        for task in self._tasks:
            task.cancel()

    @app_commands.command(name="lofi-retrain", description="Retrain the models (admins only)")
    @app_commands.describe(
        epochs="Training epochs (default: the preset's)",
        include_votes="Learn from liked tracks and drop disliked ones",
        music="Your own music to learn from too: a zip or one MIDI/MusicXML file",
    )
    @app_commands.default_permissions(manage_guild=True)
    @servers_only
    @app_commands.check(require_admin)
    async def retrain(
        self,
        interaction: discord.Interaction,
        epochs: app_commands.Range[int, 1, 500] | None = None,
        include_votes: bool = True,
        music: discord.Attachment | None = None,
    ) -> None:
        """Start a retrain in its own process and report its progress in the reply."""
        who = Requester(
            interaction.user.id, str(interaction.user), interaction.guild_id, interaction.channel_id
        )
        # Checked before anything is recorded or downloaded: the declared size against this guild's limit.
        upload = (
            check_upload(
                music.filename,
                music.size,
                music.url,
                guild_limit=interaction.filesize_limit,
                max_bytes=self.bot.settings.retrain_upload_max_bytes,
            )
            if music is not None
            else None
        )
        run_id, params = await self.bot.retrains.start(
            who, epochs=epochs, include_votes=include_votes, upload=upload
        )
        log.info("retrain #%s started by %s (%s): %s", run_id, who.user_name, who.user_id, params)
        extra = f", music: `{upload.filename}` ({upload.size / 2**20:.1f} MiB)" if upload else ""
        await interaction.response.send_message(
            f"🛠️ Retrain #{run_id} started by {interaction.user.mention} "
            f"(epochs: {epochs or 'preset'}, votes: "
            f"{'yes' if include_votes else 'no'}{extra})."
        )
        task = asyncio.create_task(self._run(interaction, run_id, params, upload), name=f"retrain-{run_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(
        self,
        interaction: discord.Interaction,
        run_id: int,
        params: dict[str, Any],
        upload: MusicUpload | None = None,
    ) -> None:
        last_edit = 0.0

        async def on_progress(event: dict[str, Any]) -> None:
            nonlocal last_edit
            if time.monotonic() - last_edit < EDIT_EVERY_S:
                return
            last_edit = time.monotonic()
            with contextlib.suppress(discord.HTTPException):
                await interaction.edit_original_response(content=progress_text(run_id, event))

        outcome = await self.bot.retrains.run(run_id, params, on_progress, upload)
        text = outcome_text(outcome)
        try:
            await interaction.edit_original_response(content=text)
        except discord.HTTPException:
            # The interaction token lasts 15 minutes; a long retrain reports in the channel instead.
            channel = interaction.channel
            if isinstance(channel, discord.abc.Messageable):
                with contextlib.suppress(discord.HTTPException):
                    await channel.send(text)

    @anywhere  # what anyone may see; the internals only for admins (`is_admin_here`)
    @app_commands.command(name="lofi-status", description="Serving health, queue, tracks and retrains")
    async def status(self, interaction: discord.Interaction) -> None:
        """Serving health, queue, today's tracks, last retrain and votes per version (ephemeral; details for
        admins only)."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        report = await self.bot.status_service.report(self.bot.queue)
        await interaction.edit_original_response(embed=status_embed(report, admin=is_admin_here(interaction)))


async def setup(bot: LofiBot) -> None:
    """Load the cog."""
    await bot.add_cog(Admin(bot))
