"""The radio's messages in its text channel: one now-playing message (edited at each piece, with a button that
posts the piece) and a line for each change (model down or back, buffer drained, stopped, resumed...)."""

from __future__ import annotations

from typing import Any

import discord

from bot.format import duration_text
from bot.radio.service import LiveRadio
from bot.radio.stream import Piece
from bot.views import radio_view

TEXTS = {
    "down": "⚠️ The music model is not answering ({error}); the radio plays its buffer "
    "({buffered}) and picks up again when the model is back.",
    "up": "✅ The music model is back; the radio composes again.",
    "drained": "🔇 The buffer ran out; the radio is silent until the model answers again.",
    "stopped": "⏹️ Radio stopped: {reason}.",
    "resumed": "📻 Radio back on after a restart (station **{station}**).",
    "reconnected": "🔌 Voice connection was lost; the radio reconnected.",
}


def now_playing_embed(radio: LiveRadio, piece: Piece, note: str | None = None) -> discord.Embed:
    """The now-playing message: title, the custom station's name if any, mood, key, tempo, seed."""
    track = piece.track
    embed = discord.Embed(
        title=f"📻 {track.title if track is not None else 'lofi radio'}",
        colour=discord.Colour.from_rgb(90, 110, 170),
        description=f"Composed live for <#{radio.voice_channel_id}>" + (f"\n{note}" if note else ""),
    )
    if radio.label != radio.mood:
        embed.add_field(name="Station", value=radio.label)
    embed.add_field(name="Mood", value=piece.mood or radio.mood)
    embed.add_field(name="Key", value=track.key if track is not None else "?")
    embed.add_field(name="Tempo", value=f"{track.bpm:.0f} bpm" if track is not None else "?")
    embed.add_field(name="Seed", value=str(piece.seed) if piece.seed is not None else "?")
    footer = "24/7" if radio.always_on else "stops when everyone leaves"
    if radio.stop_at is not None:
        footer += f" · sleeps at {radio.stop_at:%H:%M} UTC"
    if radio.mood != piece.mood and radio.mood != "random":
        footer += f" · next: {radio.mood}"
    embed.set_footer(text=f"Track #{track.track_id if track is not None else '?'} · {footer}")
    return embed


class RadioAnnouncer:
    """Writes a radio's messages through `client` (`RadioService(announce=RadioAnnouncer(bot).announce)`)."""

    def __init__(self, client: discord.Client):
        self.client = client

    async def announce(self, radio: LiveRadio, kind: str, data: dict[str, Any]) -> None:
        """Say `kind` (with its `data`) in the radio's text channel, if it has one the bot can see."""
        channel = self.client.get_channel(radio.text_channel_id) if radio.text_channel_id else None
        if not isinstance(channel, discord.abc.Messageable):
            return
        if kind == "now_playing":
            piece: Piece = data["piece"]
            embed = now_playing_embed(radio, piece)
            view = radio_view(piece.track.track_id if piece.track is not None else None)
            if radio.message is not None:
                try:
                    radio.message = await radio.message.edit(embed=embed, view=view)
                    return
                except discord.HTTPException:
                    radio.message = None
            radio.message = await channel.send(embed=embed, view=view)
            return
        text = TEXTS.get(kind)
        if text is None:
            return
        error = data.get("error")
        await channel.send(
            text.format(
                error=type(error).__name__ if error is not None else "?",
                buffered=duration_text(float(data.get("buffered_s", 0.0))),
                reason=data.get("reason", ""),
                station=radio.label,
            )
        )
