"""`/lofi-top [period]` and `/lofi-history [user]`."""

from __future__ import annotations

from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import LofiBot
from bot.format import DOWN, UP, clock
from bot.interactions import anywhere
from bot.services import TrackLine


def _fmt(i: int, line: TrackLine, show_user: bool) -> str:
    seconds = round(line.length_s)
    where = f" · [jump]({line.jump_url})" if line.jump_url else ""
    who = f" by {line.user_name}" if show_user else ""
    status = "" if line.status == "done" else f" · *{line.status}*"
    return (
        f"**{i}.** {line.title} — {line.mood}, {clock(seconds)}, "
        f"**{line.score:+d}** ({UP}{line.up} {DOWN}{line.down}){who}{status}{where}"
    )


class Browse(commands.Cog):
    """Listings of tracks."""

    def __init__(self, bot: LofiBot):
        self.bot = bot

    @anywhere
    @app_commands.command(name="lofi-top", description="The best tracks by votes")
    @app_commands.describe(period="Over which period (default: week)")
    async def top(
        self, interaction: discord.Interaction, period: Literal["day", "week", "month", "all"] = "week"
    ) -> None:
        """The best tracks of the period by net score, with jump links."""
        lines = await self.bot.browse.top(period, interaction.guild_id, interaction.user.id)
        title = f"Top LoFi tracks — {'all time' if period == 'all' else 'this ' + period}"
        body = (
            "\n".join(_fmt(i, line, True) for i, line in enumerate(lines, 1)) or "No tracks yet: try `/lofi`."
        )
        await interaction.response.send_message(embed=discord.Embed(title=title, description=body[:4096]))

    @anywhere
    @app_commands.command(name="lofi-history", description="Someone's latest tracks")
    @app_commands.describe(user="Whose tracks (default: yours)")
    async def history(self, interaction: discord.Interaction, user: discord.User | None = None) -> None:
        """A user's latest tracks (ephemeral)."""
        target = user or interaction.user
        lines = await self.bot.browse.history(target.id, interaction.guild_id, interaction.user.id)
        # An option Discord sent without its resolved user is a bare Object (no name): the tracks know it.
        name = getattr(target, "display_name", None) or (lines[0].user_name if lines else f"user {target.id}")
        body = (
            "\n".join(_fmt(i, line, False) for i, line in enumerate(lines, 1))
            or f"{name} has no tracks here yet."
        )
        embed = discord.Embed(title=f"Tracks by {name}", description=body[:4096])
        await interaction.response.send_message(embed=embed, ephemeral=True)


async def setup(bot: LofiBot) -> None:
    """Load the cog."""
    await bot.add_cog(Browse(bot))
