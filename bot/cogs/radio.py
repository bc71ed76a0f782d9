"""`/lofi-radio start [mood]`, `mood`, `stop`, `sleep`, `24-7`, `stations`, `station-create`, `station-delete`:
an endless LoFi stream in a voice channel, tuned to a mood's station or to one of the server's custom stations (a
named mood, tempo and key an admin creates; `start` and `mood` offer both, `stations` lists them).

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
from bot.interactions import servers_only
from bot.radio.errors import RadioError
from bot.radio.recipes import NAME_MAX, Recipe
from bot.transformers import Key
from music.durations import parse_duration
from music.limits import MAX_BPM, MIN_BPM
from music.request import mood_names

log = logging.getLogger(__name__)

SLEEP_MIN_S, SLEEP_MAX_S = 60.0, 24 * 3600.0


def _guild_id(interaction: discord.Interaction) -> int:
    """The guild of a guild-only command."""
    if interaction.guild_id is None:
        raise RadioError("The radio plays in servers only.")
    return interaction.guild_id


@servers_only  # a voice channel of a server that added the bot: never offered in DMs or user installs
class Radio(commands.GroupCog, group_name="lofi-radio", group_description="LoFi radio in a voice channel"):
    """The radio commands and the listeners that keep it in the right state."""

    def __init__(self, bot: LofiBot):
        self.bot = bot
        self.service = bot.radio
        self._resumed = False
        super().__init__()

    # ------------------------------------------------------------------ commands

    def _require_admin(self, interaction: discord.Interaction, what: str) -> None:
        if not is_admin(interaction.user, self.bot.settings, getattr(interaction, "permissions", None)):
            raise RadioError(f"Only server managers or configured admins may {what}.")

    async def _stations(self, interaction: discord.Interaction, typed: str) -> list[app_commands.Choice[str]]:
        """Autocomplete: the moods and this server's custom stations."""
        offered = await self.service.custom.choices(interaction.guild_id, typed)
        return [app_commands.Choice(name=label[:100], value=value) for label, value in offered]

    @app_commands.command(name="start", description="Join your voice channel and play LoFi composed live")
    @app_commands.describe(mood="A mood or one of this server's stations (default: chill)")
    @app_commands.guild_only()
    async def start(
        self, interaction: discord.Interaction, mood: app_commands.Range[str, 1, 100] | None = None
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
        # a bad choice is told before deferring
        tuning = await self.service.resolve(guild.id, mood or "chill")
        await interaction.response.defer(thinking=True)
        await self.service.start(
            guild,
            channel,
            interaction.channel_id,
            tuning,
            user_id=interaction.user.id,
            user_name=str(interaction.user),
        )
        await interaction.followup.send(f"📻 LoFi radio on in {channel.mention}, station **{tuning.label}**.")

    @start.autocomplete("mood")
    async def start_mood(
        self, interaction: discord.Interaction, typed: str
    ) -> list[app_commands.Choice[str]]:
        return await self._stations(interaction, typed)

    @app_commands.command(
        name="mood", description="Switch the radio to another mood's or this server's station"
    )
    @app_commands.describe(mood="A mood or one of this server's stations")
    @app_commands.guild_only()
    async def mood(self, interaction: discord.Interaction, mood: app_commands.Range[str, 1, 100]) -> None:
        """Tune to the station: at once if it is on air, else after composing its first piece."""
        guild_id = _guild_id(interaction)
        if self.service.get(guild_id) is None:
            raise RadioError("The radio is not playing here; start it with `/lofi-radio start`.")
        tuning = await self.service.resolve(guild_id, mood)
        if self.service.on_air(tuning):
            await self.service.set_mood(guild_id, tuning)
            await interaction.response.send_message(f"🎚️ Now playing the **{tuning.label}** station.")
            return
        await interaction.response.defer(thinking=True)  # its first piece takes seconds to compose
        await self.service.set_mood(guild_id, tuning)
        await interaction.followup.send(f"🎚️ Now playing the **{tuning.label}** station.")

    @mood.autocomplete("mood")
    async def mood_mood(self, interaction: discord.Interaction, typed: str) -> list[app_commands.Choice[str]]:
        return await self._stations(interaction, typed)

    @app_commands.command(
        name="stations", description="The stations this server can tune to, and what is on air"
    )
    @app_commands.guild_only()
    async def stations(self, interaction: discord.Interaction) -> None:
        """List the moods' stations and this server's own, marking those on air and the one playing here."""
        guild_id = _guild_id(interaction)
        playing = self.service.get(guild_id)
        # what plays here: one of this server's stations (by name), or a mood's
        here_name = playing.tuning.name if playing is not None and playing.tuning is not None else None
        here_mood = playing.mood if playing is not None and here_name is None else None

        def marks(on_air: bool, playing_here: bool) -> str:
            return " (playing here)" if playing_here else " (on air)" if on_air else ""

        moods = ", ".join(
            f"{mood}{marks(self.service.on_air(mood), mood == here_mood)}" for mood in mood_names()
        )
        lines = ["📻 **Radio stations**", f"Moods: {moods}."]
        customs = await self.service.custom.in_guild(guild_id)
        if customs:
            lines.append("This server's stations:")
            lines += [
                f"- **{c.name}**: {c.recipe.describe()}"
                f"{marks(self.service.on_air(c.tuning), c.name == here_name)}"
                for c in customs
            ]
        else:
            lines.append(
                "This server has no stations of its own; server managers add them with "
                "`/lofi-radio station-create`."
            )
        if playing is None:
            lines.append("The radio is not playing here: `/lofi-radio start [mood]`.")
        await interaction.response.send_message("\n".join(lines), ephemeral=True)

    @app_commands.command(
        name="station-create", description="Server managers: a station of a mood, tempo and key"
    )
    @app_commands.describe(
        name=f"Its name (letters, digits, spaces, hyphens; at most {NAME_MAX})",
        mood="The mood of its pieces",
        tempo="Beats per minute (optional; default: the mood's)",
        key='Key, e.g. "A minor" or "Eb major"; a note alone takes the mood\'s mode (optional)',
    )
    @app_commands.choices(mood=MOOD_CHOICES)
    @app_commands.guild_only()
    async def station_create(
        self,
        interaction: discord.Interaction,
        name: app_commands.Range[str, 1, 100],
        mood: app_commands.Choice[str],
        tempo: app_commands.Range[int, MIN_BPM, MAX_BPM] | None = None,
        key: Key | None = None,
    ) -> None:
        """Create a custom station for this server."""
        self._require_admin(interaction, "create radio stations")
        made = await self.service.custom.create(
            _guild_id(interaction), name, Recipe(mood.value, tempo, key), interaction.user.id
        )
        await interaction.response.send_message(
            f"📻 Station **{made.name}** created ({made.recipe.describe()}); "
            f"tune in with `/lofi-radio start` or `/lofi-radio mood`."
        )

    @app_commands.command(
        name="station-delete", description="Server managers: delete one of this server's stations"
    )
    @app_commands.describe(name="The station to delete (a radio playing it goes back to its mood)")
    @app_commands.guild_only()
    async def station_delete(
        self, interaction: discord.Interaction, name: app_commands.Range[str, 1, 100]
    ) -> None:
        """Delete a custom station; a radio tuned to it moves to the station's mood."""
        self._require_admin(interaction, "delete radio stations")
        guild_id = _guild_id(interaction)
        if await self.service.custom.find(guild_id, name) is None:  # told at once, not after a deferral
            raise RadioError(f"This server has no station called **{name[:40]}**.")
        # moving a radio to the mood may compose its first piece
        await interaction.response.defer(thinking=True)
        gone, moved = await self.service.delete_station(guild_id, name)
        note = f" The radio here went back to the **{gone.recipe.mood}** station." if moved else ""
        await interaction.followup.send(f"🗑️ Station **{gone.name}** deleted.{note}")

    @station_delete.autocomplete("name")
    async def station_names(
        self, interaction: discord.Interaction, typed: str
    ) -> list[app_commands.Choice[str]]:
        customs = await self.service.custom.in_guild(interaction.guild_id) if interaction.guild_id else []
        typed = " ".join(typed.split()).lower()
        return [app_commands.Choice(name=c.name, value=c.name) for c in customs if typed in c.name][:25]

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
