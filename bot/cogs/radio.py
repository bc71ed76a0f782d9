"""`/lofi-radio start [mood]`, `mood`, `stop`, `sleep`, `24-7`: an endless LoFi stream in a voice channel.

The cog validates and replies; `bot.radio.service.RadioService` does the work. Each piece is a track made by
the same pipeline as `/lofi` (recorded like one), so the now-playing message's button can post it as an MP3
with its MIDI, and votes on that post count like votes on a `/lofi` track.
"""

from __future__ import annotations

import contextlib
import logging
import re
from concurrent.futures import Executor
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.checks import is_admin
from bot.error_handler import describe, send_error
from bot.radio.service import LiveRadio, RadioError, RadioService
from bot.radio.station import RadioConfig
from bot.radio.worker import RenderWorker
from bot.services import Requester, TrackService
from music.durations import parse_duration
from music.request import TrackRequest, mood_names

log = logging.getLogger(__name__)

MOOD_CHOICES = [app_commands.Choice(name=m, value=m) for m in mood_names()][:25]
SLEEP_MIN_S, SLEEP_MAX_S = 60.0, 24 * 3600.0
VOTE_EMOJI = ("👍", "👎")


def radio_config(bot: commands.Bot) -> RadioConfig:
    """The bot's radio configuration: `bot.radio_config` when given, else from its settings."""
    given = getattr(bot, "radio_config", None)
    if isinstance(given, RadioConfig):
        return given
    s = bot.settings
    return RadioConfig(
        piece_length_s=float(getattr(s, "radio_piece_length_s", 120.0)),
        crossfade_s=float(getattr(s, "radio_crossfade_s", 4.0)),
        ahead_s=float(getattr(s, "radio_ahead_s", 45.0)),
    )


def _fmt(seconds: float) -> str:
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{s}s" if s or not (h or m) else "")


def now_playing_embed(radio: LiveRadio, meta: dict[str, Any], note: str | None = None) -> discord.Embed:
    """The now-playing message: title, mood, key, tempo, seed."""
    embed = discord.Embed(
        title=f"📻 {meta.get('title', 'lofi radio')}",
        colour=discord.Colour.from_rgb(90, 110, 170),
        description=f"Composed live for <#{radio.voice_channel_id}>" + (f"\n{note}" if note else ""),
    )
    embed.add_field(name="Mood", value=str(meta.get("mood", radio.mood)))
    embed.add_field(name="Key", value=str(meta.get("key", "?")))
    bpm = meta.get("bpm")
    embed.add_field(name="Tempo", value=f"{bpm:.0f} bpm" if isinstance(bpm, int | float) else "?")
    embed.add_field(name="Seed", value=str(meta.get("seed", "?")))
    footer = "24/7" if radio.always_on else "stops when everyone leaves"
    if radio.stop_at is not None:
        footer += f" · sleeps at {radio.stop_at:%H:%M} UTC"
    if radio.mood != meta.get("mood") and radio.mood != "random":
        footer += f" · next: {radio.mood}"
    embed.set_footer(text=f"Track #{meta.get('track_id', '?')} · {footer}")
    return embed


class RadioPostButton(discord.ui.DynamicItem[discord.ui.Button], template=r"lofi:radio:(?P<track_id>\d+)"):
    """Post the piece the radio played as an MP3 with its MIDI, where people can vote on it."""

    def __init__(self, track_id: int):
        self.track_id = track_id
        super().__init__(
            discord.ui.Button(
                label="Post this piece",
                emoji="💾",
                style=discord.ButtonStyle.primary,
                custom_id=f"lofi:radio:{track_id}",
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str]
    ) -> RadioPostButton:
        return cls(int(match["track_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            await interaction.client.get_cog("Radio").post_piece(interaction, self.track_id)
        except Exception as exc:
            await send_error(interaction, describe(exc))


def _radio_view(track_id: int | None) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    if track_id is not None:
        view.add_item(RadioPostButton(int(track_id)))
    return view


class Radio(commands.GroupCog, group_name="lofi-radio", group_description="LoFi radio in a voice channel"):
    """The radio commands and the listeners that keep it in the right state."""

    def __init__(self, bot: commands.Bot, service: RadioService, executor: Executor | None = None):
        self.bot = bot
        self.service = service
        self._executor = executor
        self._resumed = False
        super().__init__()

    async def cog_unload(self) -> None:
        await self.service.shutdown()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ commands

    @app_commands.command(name="start", description="Join your voice channel and play LoFi composed live")
    @app_commands.describe(mood="The mood to start with (default: chill)")
    @app_commands.choices(mood=MOOD_CHOICES)
    @app_commands.guild_only()
    async def start(
        self, interaction: discord.Interaction, mood: app_commands.Choice[str] | None = None
    ) -> None:
        """Start the radio in the caller's voice channel."""
        guild = interaction.guild
        voice = getattr(interaction.user, "voice", None)
        if guild is None or voice is None or voice.channel is None:
            raise RadioError("Join a voice channel first, then run `/lofi-radio start` again.")
        channel = voice.channel
        me = guild.me
        perms = channel.permissions_for(me) if me is not None else None
        if perms is not None and not (perms.connect and perms.speak):
            raise RadioError(f"I need the Connect and Speak permissions in {channel.mention}.")
        if self.service.get(guild.id) is not None:
            raise RadioError(
                "The radio is already playing here; use `/lofi-radio mood` or `/lofi-radio stop`."
            )
        chosen = mood.value if mood is not None else "chill"
        await interaction.response.defer(thinking=True)
        await self.service.start(
            guild,
            channel,
            interaction.channel_id,
            chosen,
            user_id=interaction.user.id,
            user_name=str(interaction.user),
        )
        await interaction.followup.send(f"📻 LoFi radio on in {channel.mention}, mood **{chosen}**.")

    @app_commands.command(name="mood", description="Change the radio's mood at the next transition")
    @app_commands.describe(mood="The new mood")
    @app_commands.choices(mood=MOOD_CHOICES)
    @app_commands.guild_only()
    async def mood(self, interaction: discord.Interaction, mood: app_commands.Choice[str]) -> None:
        """Change the mood."""
        soon = await self.service.set_mood(interaction.guild_id, mood.value)
        when = "at the next transition" if soon else "after the next piece (it is already composed)"
        await interaction.response.send_message(f"🎚️ Mood **{mood.value}** {when}.")

    @app_commands.command(name="stop", description="Stop the radio and leave the voice channel")
    @app_commands.guild_only()
    async def stop(self, interaction: discord.Interaction) -> None:
        """Stop the radio."""
        await interaction.response.defer(thinking=True)
        if not await self.service.stop(interaction.guild_id, f"stopped by {interaction.user.display_name}"):
            raise RadioError("The radio is not playing here.")
        await interaction.followup.send("⏹️ Radio stopped.")

    @app_commands.command(name="sleep", description="Stop the radio after a while (e.g. 30m, 1h)")
    @app_commands.describe(after="How long until it stops: 30m, 1h, 1h30m")
    @app_commands.guild_only()
    async def sleep(self, interaction: discord.Interaction, after: str) -> None:
        """Set the sleep timer."""
        try:
            seconds = parse_duration(after)
        except ValueError as exc:
            raise RadioError(f"Bad duration: {exc}.") from None
        if not SLEEP_MIN_S <= seconds <= SLEEP_MAX_S:
            raise RadioError("The sleep timer goes from 1m to 24h.")
        at = await self.service.sleep(interaction.guild_id, seconds)
        await interaction.response.send_message(f"😴 The radio stops in {_fmt(seconds)} (at {at:%H:%M} UTC).")

    @app_commands.command(name="24-7", description="Server managers: keep the radio on around the clock")
    @app_commands.describe(enabled="On: reconnects after restarts and drops, stays when the channel empties")
    @app_commands.guild_only()
    async def always_on(self, interaction: discord.Interaction, enabled: bool) -> None:
        """Turn 24/7 mode on or off."""
        if not is_admin(interaction.user, self.bot.settings, getattr(interaction, "permissions", None)):
            raise RadioError("Only server managers or configured admins may change 24/7 mode.")
        await self.service.set_always_on(interaction.guild_id, enabled)
        await interaction.response.send_message(
            "🔁 24/7 mode on: the radio stays, and comes back after a restart or a dropped connection."
            if enabled
            else "24/7 mode off: the radio stops when everyone leaves."
        )

    # ------------------------------------------------------------------ the post button

    async def post_piece(self, interaction: discord.Interaction, track_id: int) -> None:
        """Post a radio piece (MP3 + MIDI) publicly, with vote reactions that count like on a /lofi track."""
        from bot.cogs.lofi import track_embed
        from bot.views import track_view

        info = await _track_info(self.bot, track_id)
        await interaction.response.defer(thinking=True)
        files = [discord.File(p, filename=p.name) for p in (info.mp3, info.midi)]
        embed = track_embed(info, interaction.user)
        embed.description = (
            f"A **{info.mood}** piece from the LoFi radio, posted by {interaction.user.mention}"
        )
        message = await interaction.followup.send(
            embed=embed, files=files, view=track_view(track_id), wait=True
        )
        with contextlib.suppress(Exception):
            await self.bot.tracks.set_message(
                track_id, message_id=message.id, channel_id=message.channel.id, guild_id=interaction.guild_id
            )
        for emoji in VOTE_EMOJI:
            with contextlib.suppress(discord.HTTPException):
                await message.add_reaction(emoji)

    # ------------------------------------------------------------------ announcements

    async def announce(self, radio: LiveRadio, kind: str, data: dict[str, Any]) -> None:
        """The radio's messages in its text channel (now playing is one message, edited at each piece)."""
        channel = self.bot.get_channel(radio.text_channel_id) if radio.text_channel_id else None
        if channel is None:
            return
        if kind == "now_playing":
            meta = data["piece"].meta
            embed = now_playing_embed(radio, meta)
            view = _radio_view(meta.get("track_id"))
            if radio.message is not None:
                try:
                    radio.message = await radio.message.edit(embed=embed, view=view)
                    return
                except discord.HTTPException:
                    radio.message = None
            radio.message = await channel.send(embed=embed, view=view)
            return
        text = {
            "down": "⚠️ The music model is not answering ({error}); the radio plays its buffer "
            "({buffered}) and picks up again when the model is back.",
            "up": "✅ The music model is back; the radio composes again.",
            "drained": "🔇 The buffer ran out; the radio is silent until the model answers again.",
            "stopped": "⏹️ Radio stopped: {reason}.",
            "resumed": "📻 Radio back on after a restart (mood **{mood}**).",
            "reconnected": "🔌 Voice connection was lost; the radio reconnected.",
        }.get(kind)
        if text is None:
            return
        error = data.get("error")
        await channel.send(
            text.format(
                error=type(error).__name__ if error is not None else "?",
                buffered=_fmt(float(data.get("buffered_s", 0.0))),
                reason=data.get("reason", ""),
                mood=radio.mood,
            )
        )

    # ------------------------------------------------------------------ listeners

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        """After (re)connecting to Discord, bring back the radios that were playing."""
        if self._resumed:
            return
        self._resumed = True
        try:
            await self.service.resume_saved()
        except Exception:
            log.exception("could not resume the saved radios")

    @commands.Cog.listener()
    async def on_voice_state_update(
        self, member: discord.Member, before: discord.VoiceState, after: discord.VoiceState
    ) -> None:
        """Someone joined or left a channel: an emptied radio channel stops (unless 24/7)."""
        if member.guild is not None:
            self.service.channel_changed(member.guild.id)


async def _track_info(bot: commands.Bot, track_id: int) -> Any:
    """A finished track's TrackInfo from the database (TrackGone if its files are missing)."""
    from pathlib import Path

    from bot.errors import TrackGone
    from bot.services import TrackInfo
    from db.models import Track, TrackStatus

    async with bot.sessionmaker() as s:
        t = await s.get(Track, track_id)
    if t is None or t.status is not TrackStatus.done or not t.mp3_path or not Path(t.mp3_path).is_file():
        raise TrackGone()
    return TrackInfo(
        track_id=t.id,
        mp3=Path(t.mp3_path),
        midi=Path(t.midi_path),
        cover=Path(t.cover_path) if t.cover_path else None,
        title=t.title or f"lofi #{t.id}",
        mood=t.mood or t.mood_requested,
        length_s=float(t.length_s or t.length_requested_s),
        bpm=float(t.bpm or 0),
        key=t.key or "?",
        seed=int(t.seed),
        versions=dict(t.versions or {}),
    )


async def setup(bot: commands.Bot) -> None:
    """Load the cog: a radio service over its own track service and its own render process.

    The render (FluidSynth, effects, mastering, MP3) and the decoding to PCM run in a worker *process*, not a
    thread: measured here, numpy/scipy/pedalboard stages held the GIL long enough (100-800 ms) to delay
    discord.py's audio thread, an audible gap in the stream; the process also runs at a lower priority.
    Generation stays in the bot (async gRPC). Its own worker also keeps the radio composing while `/lofi`
    jobs hold the bot's workers.
    """
    config = radio_config(bot)
    executor = RenderWorker()
    tracks = TrackService(
        bot.sessionmaker, bot.tracks.pipeline, bot.tracks.client_provider, bot.tracks.out_dir, executor
    )
    size_limit = bot.settings.upload_limit_bytes

    async def compose(request: TrackRequest, who: Requester) -> Any:
        track_id = await tracks.create(request, who)
        return await tracks.run(track_id, request, size_limit=size_limit)

    service = RadioService(
        bot,
        bot.sessionmaker,
        compose,
        config,
        executor=executor,
        requester=Requester,
        request_factory=TrackRequest,
    )
    cog = Radio(bot, service, executor)
    service.announce = cog.announce
    bot.radio = service
    bot.add_dynamic_items(RadioPostButton)
    await bot.add_cog(cog)
