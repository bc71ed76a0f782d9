"""The buttons under a posted track. They are DynamicItems whose custom_id holds the track id, so they keep
working after a restart (registered once with `bot.add_dynamic_items`, no per-message state)."""

from __future__ import annotations

import random
import re
from typing import Any

import discord

from bot.error_handler import describe, send_error
from bot.interactions import lofi_bot
from bot.services import extra_lengths
from music.limits import SEED_MAX

Button = discord.ui.Button[discord.ui.View]
Select = discord.ui.Select[discord.ui.View]


class VariationButton(discord.ui.DynamicItem[Button], template=r"lofi:var:(?P<track_id>\d+)"):
    """Same request as the track, new seed."""

    def __init__(self, track_id: int):
        self.track_id = track_id
        super().__init__(
            discord.ui.Button(
                label="Variation",
                emoji="🎲",
                style=discord.ButtonStyle.primary,
                custom_id=f"lofi:var:{track_id}",
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> VariationButton:
        return cls(int(match["track_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            bot = lofi_bot(interaction)
            request = await bot.tracks.request_of(self.track_id, random.randint(0, SEED_MAX))
            await bot.poster.make_and_post(interaction, request)
        except Exception as exc:
            await send_error(interaction, describe(exc))


class MidiButton(discord.ui.DynamicItem[Button], template=r"lofi:midi:(?P<track_id>\d+)"):
    """Send the track's MIDI file to whoever clicks (ephemeral)."""

    def __init__(self, track_id: int):
        self.track_id = track_id
        super().__init__(
            discord.ui.Button(
                label="Download MIDI",
                emoji="🎹",
                style=discord.ButtonStyle.secondary,
                custom_id=f"lofi:midi:{track_id}",
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> MidiButton:
        return cls(int(match["track_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            path = await lofi_bot(interaction).tracks.midi_of(self.track_id)
            await interaction.response.send_message(
                file=discord.File(path, filename=path.name), ephemeral=True
            )
        except Exception as exc:
            await send_error(interaction, describe(exc))


class ExtendButton(discord.ui.DynamicItem[Button], template=r"lofi:ext:(?P<track_id>\d+)"):
    """Make a longer version of the track that continues its music: offers the lengths (ephemeral menu)."""

    def __init__(self, track_id: int):
        self.track_id = track_id
        super().__init__(
            discord.ui.Button(
                label="Extend",
                emoji="⏩",
                style=discord.ButtonStyle.secondary,
                custom_id=f"lofi:ext:{track_id}",
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> ExtendButton:
        return cls(int(match["track_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            bot = lofi_bot(interaction)
            info = await bot.tracks.request_of(self.track_id, 0)
            options = extra_lengths(info.length_s, bot.settings.max_length_s)
            if not options:
                await send_error(interaction, "This track is already as long as a track can be.")
                return
            view = discord.ui.View(timeout=None)
            view.add_item(ExtendSelect(self.track_id, options))
            await interaction.response.send_message(
                "How much longer? The new version keeps this one and continues its music.",
                view=view,
                ephemeral=True,
            )
        except Exception as exc:
            await send_error(interaction, describe(exc))


class ExtendSelect(discord.ui.DynamicItem[Select], template=r"lofi:extlen:(?P<track_id>\d+)"):
    """The length menu of Extend: queues the longer version and posts it like a new track."""

    def __init__(self, track_id: int, options: list[tuple[str, float]] | None = None):
        self.track_id = track_id
        super().__init__(
            discord.ui.Select(
                custom_id=f"lofi:extlen:{track_id}",
                placeholder="Extend by…",
                options=[
                    discord.SelectOption(label=label, value=str(int(extra)))
                    for label, extra in (options or [])
                ]
                or [discord.SelectOption(label="+1 min", value="60")],
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> ExtendSelect:
        return cls(int(match["track_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            data = interaction.data
            values = data.get("values") if data is not None else None
            if not isinstance(values, list) or not values:
                raise ValueError("the length menu sent no length")
            extra = float(values[0])
            bot = lofi_bot(interaction)
            request, extension = await bot.tracks.extension_of(
                self.track_id, extra, bot.settings.max_length_s
            )
            await bot.poster.make_and_post(interaction, request, extension=extension)
        except Exception as exc:
            await send_error(interaction, describe(exc))


class RadioPostButton(discord.ui.DynamicItem[Button], template=r"lofi:radio:(?P<track_id>\d+)"):
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
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> RadioPostButton:
        return cls(int(match["track_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            await lofi_bot(interaction).poster.post_piece(interaction, self.track_id)
        except Exception as exc:
            await send_error(interaction, describe(exc))


def radio_view(track_id: int | None) -> discord.ui.View:
    """The view under the radio's now-playing message (a post button for the piece, when it has a track)."""
    view = discord.ui.View(timeout=None)
    if track_id is not None:
        view.add_item(RadioPostButton(track_id))
    return view


DYNAMIC_ITEMS = (VariationButton, MidiButton, ExtendButton, ExtendSelect, RadioPostButton)


def track_view(track_id: int) -> discord.ui.View:
    """The persistent view posted with a track."""
    view = discord.ui.View(timeout=None)
    view.add_item(VariationButton(track_id))
    view.add_item(MidiButton(track_id))
    view.add_item(ExtendButton(track_id))
    return view
