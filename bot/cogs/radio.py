"""`/lofi-radio start [mood]`, `mood`, `stop`, `sleep`, `24-7`: an endless LoFi stream in a voice channel.

The cog validates and replies; the bot's `bot.radio.service.RadioService` does the work. Each piece is a track
made by the same engine as `/lofi` (recorded like one), so the now-playing message's button can post it as an
MP3 with its MIDI, and votes on that post count like votes on a `/lofi` track.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import LofiBot
from bot.checks import is_admin
from bot.format import MOOD_CHOICES, duration_text
from bot.radio.service import RadioError
from music.durations import parse_duration

log = logging.getLogger(__name__)

SLEEP_MIN_S, SLEEP_MAX_S = 60.0, 24 * 3600.0


def _guild_id(interaction: discord.Interaction) -> int:
    """The guild of a guild-only command."""
    if interaction.guild_id is None:
        raise RadioError("The radio plays in servers only.")
    return interaction.guild_id


class Radio(commands.GroupCog, group_name="lofi-radio", group_description="LoFi radio in a voice channel"):
    """The radio commands and the listeners that keep it in the right state."""

    def __init__(self, bot: LofiBot):
        self.bot = bot
        self.service = bot.radio
        self._resumed = False
        super().__init__()

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

    @app_commands.command(name="mood", description="Switch the radio to another mood's station")
    @app_commands.describe(mood="The new mood")
    @app_commands.choices(mood=MOOD_CHOICES)
    @app_commands.guild_only()
    async def mood(self, interaction: discord.Interaction, mood: app_commands.Choice[str]) -> None:
        """Tune to the mood's station: at once if it is on air, else after composing its first piece."""
        guild_id = _guild_id(interaction)
        if self.service.get(guild_id) is None:
            raise RadioError("The radio is not playing here; start it with `/lofi-radio start`.")
        if self.service.on_air(mood.value):
            await self.service.set_mood(guild_id, mood.value)
            await interaction.response.send_message(f"🎚️ Now playing the **{mood.value}** station.")
            return
        await interaction.response.defer(thinking=True)  # its first piece takes seconds to compose
        await self.service.set_mood(guild_id, mood.value)
        await interaction.followup.send(f"🎚️ Now playing the **{mood.value}** station.")

    @app_commands.command(name="stop", description="Stop the radio and leave the voice channel")
    @app_commands.guild_only()
    async def stop(self, interaction: discord.Interaction) -> None:
        """Stop the radio."""
        await interaction.response.defer(thinking=True)
        if not await self.service.stop(_guild_id(interaction), f"stopped by {interaction.user.display_name}"):
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
        at = await self.service.sleep(_guild_id(interaction), seconds)
        await interaction.response.send_message(
            f"😴 The radio stops in {duration_text(seconds)} (at {at:%H:%M} UTC)."
        )

    @app_commands.command(name="24-7", description="Server managers: keep the radio on around the clock")
    @app_commands.describe(enabled="On: reconnects after restarts and drops, stays when the channel empties")
    @app_commands.guild_only()
    async def always_on(self, interaction: discord.Interaction, enabled: bool) -> None:
        """Turn 24/7 mode on or off."""
        if not is_admin(interaction.user, self.bot.settings, getattr(interaction, "permissions", None)):
            raise RadioError("Only server managers or configured admins may change 24/7 mode.")
        await self.service.set_always_on(_guild_id(interaction), enabled)
        await interaction.response.send_message(
            "🔁 24/7 mode on: the radio stays, and comes back after a restart or a dropped connection."
            if enabled
            else "24/7 mode off: the radio stops when everyone leaves."
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


async def setup(bot: LofiBot) -> None:
    """Load the cog (the radio service and its worker process are the bot's, from its entry point)."""
    await bot.add_cog(Radio(bot))
