"""The buttons under a posted track. They are DynamicItems whose custom_id holds the track id, so they keep
working after a restart (registered once with `bot.add_dynamic_items`, no per-message state)."""

from __future__ import annotations

import random
import re
from typing import Any

import discord

from bot.error_handler import describe, send_error
from bot.errors import BadButton, BadOption
from bot.interactions import lofi_bot
from bot.services import Viewer, extra_lengths
from bot.services.tracks import EXTRA_LENGTHS
from music.limits import SEED_MAX, quoted

Button = discord.ui.Button[discord.ui.View]
Select = discord.ui.Select[discord.ui.View]


# The templates take any id: a forged or damaged one (`abc`, 40 digits) is answered by the callback (BadButton)
# instead of matching nothing, which leaves the user with Discord's "This interaction failed".
ANY_ID = r"(?P<track_id>.*)"
_ID_MAX = 2**63 - 1  # the largest row id PostgreSQL's BIGINT and SQLite's INTEGER hold


def track_id_of(text: str) -> int | None:
    """The track id a custom id carries: plain digits of a positive 64-bit integer, else None."""
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    value = int(text)
    return value if 0 < value <= _ID_MAX else None


def _checked(track_id: int | None) -> int:
    if track_id is None:
        raise BadButton()
    return track_id


def viewer_of(interaction: discord.Interaction) -> Viewer:
    """Who clicked, and where (a guild, or a DM or group DM)."""
    return Viewer(interaction.user.id, interaction.guild_id, interaction.channel_id)


def extra_seconds(values: object) -> float:
    """The seconds the Extend menu sent: one of the lengths it offers (`EXTRA_LENGTHS`), else BadOption."""
    offered = {str(int(extra)): extra for _, extra in EXTRA_LENGTHS}
    value = values[0] if isinstance(values, list) and len(values) == 1 else None
    if not isinstance(value, str) or value not in offered:
        choices = ", ".join(label for label, _ in EXTRA_LENGTHS)
        raise BadOption(f"The Extend menu sends one of {choices}; {quoted(value)} is not one of them.")
    return offered[value]


class VariationButton(discord.ui.DynamicItem[Button], template=r"lofi:var:" + ANY_ID):
    """Same request as the track, new seed."""

    def __init__(self, track_id: int | None, raw: str = ""):
        self.track_id = track_id
        super().__init__(
            discord.ui.Button(
                label="Variation",
                emoji="🎲",
                style=discord.ButtonStyle.primary,
                custom_id=f"lofi:var:{raw if track_id is None else track_id}",
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> VariationButton:
        return cls(track_id_of(match["track_id"]), match["track_id"])

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            bot = lofi_bot(interaction)
            seed = random.randint(0, SEED_MAX)
            request = await bot.tracks.request_of(_checked(self.track_id), seed, viewer_of(interaction))
            await bot.poster.make_and_post(interaction, request)
        except Exception as exc:
            await send_error(interaction, describe(exc))


class MidiButton(discord.ui.DynamicItem[Button], template=r"lofi:midi:" + ANY_ID):
    """Send the track's MIDI file to whoever clicks (ephemeral)."""

    def __init__(self, track_id: int | None, raw: str = ""):
        self.track_id = track_id
        super().__init__(
            discord.ui.Button(
                label="Download MIDI",
                emoji="🎹",
                style=discord.ButtonStyle.secondary,
                custom_id=f"lofi:midi:{raw if track_id is None else track_id}",
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> MidiButton:
        return cls(track_id_of(match["track_id"]), match["track_id"])

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            tracks = lofi_bot(interaction).tracks
            path = await tracks.midi_of(_checked(self.track_id), viewer_of(interaction))
            await interaction.response.send_message(
                file=discord.File(path, filename=path.name), ephemeral=True
            )
        except Exception as exc:
            await send_error(interaction, describe(exc))


class StemsButton(discord.ui.DynamicItem[Button], template=r"lofi:stems:" + ANY_ID):
    """Send the track's parts as aligned audio files with their MIDI to whoever clicks (ephemeral)."""

    def __init__(self, track_id: int | None, raw: str = ""):
        self.track_id = track_id
        super().__init__(
            discord.ui.Button(
                label="Stems",
                emoji="🎛️",
                style=discord.ButtonStyle.secondary,
                custom_id=f"lofi:stems:{raw if track_id is None else track_id}",
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> StemsButton:
        return cls(track_id_of(match["track_id"]), match["track_id"])

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            await lofi_bot(interaction).exporter.stems(interaction, _checked(self.track_id))
        except Exception as exc:
            await send_error(interaction, describe(exc))


class LoopButton(discord.ui.DynamicItem[Button], template=r"lofi:loop:" + ANY_ID):
    """Send a seamless 8- or 4-bar loop of the track's main section with its MIDI (ephemeral)."""

    def __init__(self, track_id: int | None, raw: str = ""):
        self.track_id = track_id
        super().__init__(
            discord.ui.Button(
                label="Loop",
                emoji="🔁",
                style=discord.ButtonStyle.secondary,
                custom_id=f"lofi:loop:{raw if track_id is None else track_id}",
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> LoopButton:
        return cls(track_id_of(match["track_id"]), match["track_id"])

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            await lofi_bot(interaction).exporter.loop(interaction, _checked(self.track_id))
        except Exception as exc:
            await send_error(interaction, describe(exc))


class ExtendButton(discord.ui.DynamicItem[Button], template=r"lofi:ext:" + ANY_ID):
    """Make a longer version of the track that continues its music: offers the lengths (ephemeral menu)."""

    def __init__(self, track_id: int | None, raw: str = ""):
        self.track_id = track_id
        super().__init__(
            discord.ui.Button(
                label="Extend",
                emoji="⏩",
                style=discord.ButtonStyle.secondary,
                custom_id=f"lofi:ext:{raw if track_id is None else track_id}",
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> ExtendButton:
        return cls(track_id_of(match["track_id"]), match["track_id"])

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            bot = lofi_bot(interaction)
            track_id = _checked(self.track_id)
            info = await bot.tracks.request_of(track_id, 0, viewer_of(interaction))
            options = extra_lengths(info.length_s, bot.settings.max_length_s)
            if not options:
                await send_error(interaction, "This track is already as long as a track can be.")
                return
            view = discord.ui.View(timeout=None)
            view.add_item(ExtendSelect(track_id, options=options))
            await interaction.response.send_message(
                "How much longer? The new version keeps this one and continues its music.",
                view=view,
                ephemeral=True,
            )
        except Exception as exc:
            await send_error(interaction, describe(exc))


class ExtendSelect(discord.ui.DynamicItem[Select], template=r"lofi:extlen:" + ANY_ID):
    """The length menu of Extend: queues the longer version and posts it like a new track."""

    def __init__(self, track_id: int | None, raw: str = "", options: list[tuple[str, float]] | None = None):
        self.track_id = track_id
        super().__init__(
            discord.ui.Select(
                custom_id=f"lofi:extlen:{raw if track_id is None else track_id}",
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
        return cls(track_id_of(match["track_id"]), match["track_id"])

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            data = interaction.data
            # Checked like a slash option: a client can send any value, not only the menu's.
            extra = extra_seconds(data.get("values") if data is not None else None)
            bot = lofi_bot(interaction)
            request, extension = await bot.tracks.extension_of(
                _checked(self.track_id), extra, bot.settings.max_length_s, viewer_of(interaction)
            )
            await bot.poster.make_and_post(interaction, request, extension=extension)
        except Exception as exc:
            await send_error(interaction, describe(exc))


class RadioPostButton(discord.ui.DynamicItem[Button], template=r"lofi:radio:" + ANY_ID):
    """Post the piece the radio played as an MP3 with its MIDI, where people can vote on it."""

    def __init__(self, track_id: int | None, raw: str = ""):
        self.track_id = track_id
        super().__init__(
            discord.ui.Button(
                label="Post this piece",
                emoji="💾",
                style=discord.ButtonStyle.primary,
                custom_id=f"lofi:radio:{raw if track_id is None else track_id}",
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> RadioPostButton:
        return cls(track_id_of(match["track_id"]), match["track_id"])

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            await lofi_bot(interaction).poster.post_piece(interaction, _checked(self.track_id))
        except Exception as exc:
            await send_error(interaction, describe(exc))


def radio_view(track_id: int | None) -> discord.ui.View:
    """The view under the radio's now-playing message (a post button for the piece, when it has a track)."""
    view = discord.ui.View(timeout=None)
    if track_id is not None:
        view.add_item(RadioPostButton(track_id))
    return view


DYNAMIC_ITEMS = (
    VariationButton,
    MidiButton,
    ExtendButton,
    ExtendSelect,
    RadioPostButton,
    StemsButton,
    LoopButton,
)


def track_view(track_id: int) -> discord.ui.View:
    """The persistent view posted with a track."""
    view = discord.ui.View(timeout=None)
    view.add_item(VariationButton(track_id))
    view.add_item(MidiButton(track_id))
    view.add_item(ExtendButton(track_id))
    view.add_item(StemsButton(track_id))
    view.add_item(LoopButton(track_id))
    return view
