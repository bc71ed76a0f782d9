"""`/lofi length mood [seed] [tempo] [key]`: validate, then the bot's poster queues, shows progress and posts."""

from __future__ import annotations

import random

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import LofiBot
from bot.format import MOOD_CHOICES
from bot.interactions import anywhere
from bot.transformers import Duration, Key
from music.limits import MAX_BPM, MIN_BPM, SEED_MAX
from music.request import TrackRequest


class Lofi(commands.Cog):
    """Track requests."""

    def __init__(self, bot: LofiBot):
        self.bot = bot

    @anywhere  # a user who installed the app can ask in any server, DM or group DM
    @app_commands.command(name="lofi", description="Compose a LoFi track")
    @app_commands.describe(
        length="How long: 2m, 90s, 1m30s, 1:30 or 120",
        mood="The mood of the track",
        seed="Same seed, same track (optional)",
        tempo="Beats per minute (optional)",
        key='Key, e.g. "A minor" or "Eb major"; a note alone takes the mood\'s mode (optional)',
    )
    @app_commands.choices(mood=MOOD_CHOICES)
    async def lofi(
        self,
        interaction: discord.Interaction,
        length: Duration,
        mood: app_commands.Choice[str],
        seed: app_commands.Range[int, 0, SEED_MAX] | None = None,
        tempo: app_commands.Range[int, MIN_BPM, MAX_BPM] | None = None,
        key: Key | None = None,
    ) -> None:
        """Compose a track for the caller."""
        request = TrackRequest(
            length_s=length,
            mood=mood.value,
            seed=seed if seed is not None else random.randint(0, SEED_MAX),
            bpm=float(tempo) if tempo is not None else None,
            key=key,
        )
        await self.bot.poster.make_and_post(interaction, request)


async def setup(bot: LofiBot) -> None:
    """Load the cog."""
    await bot.add_cog(Lofi(bot))
