"""👍 / 👎 buttons under a track posted where the bot sees no reactions.

Outside the servers the bot is in (its DMs, group DMs, servers where only a user installed the app) the bot may
not add reactions and gets no reaction events: it answers there through the interaction's webhook only. A button
press is an interaction, so it reaches the bot wherever the post is; it records one vote per user and track
(pressing your vote again takes it back) and the post's buttons show the counts. Registered by the votes cog.
"""

from __future__ import annotations

import re
from typing import Any

import discord

from bot.error_handler import describe, send_error
from bot.errors import BadButton
from bot.format import DOWN, UP, VOTE_VALUES
from bot.interactions import lofi_bot
from bot.views import Button, track_id_of, track_view, viewer_of

VOTE_ROW = 1  # under the track's own buttons, which fill the first row
_WORDS = {UP: "up", DOWN: "down"}
_EMOJI = {word: emoji for emoji, word in _WORDS.items()}


class VoteButton(discord.ui.DynamicItem[Button], template=r"lofi:vote:(?P<rest>.*)"):
    """`lofi:vote:up:<track>` or `lofi:vote:down:<track>`, labelled with the track's count."""

    def __init__(self, emoji: str, track_id: int | None, count: int = 0, raw: str = ""):
        self.emoji, self.track_id = emoji, track_id
        word = _WORDS.get(emoji, "up")
        super().__init__(
            discord.ui.Button(
                label=str(count),
                emoji=emoji,
                style=discord.ButtonStyle.success if emoji == UP else discord.ButtonStyle.danger,
                custom_id=f"lofi:vote:{word}:{raw if track_id is None else track_id}",
                row=VOTE_ROW,
            )
        )

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> VoteButton:
        # Any custom id under lofi:vote: comes here, so a forged one is answered instead of failing silently.
        word, _, raw = match["rest"].partition(":")
        return cls(_EMOJI.get(word, ""), track_id_of(raw), raw=raw)

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            if self.track_id is None or self.emoji not in VOTE_VALUES:
                raise BadButton()
            bot = lofi_bot(interaction)
            up, down = await bot.votes.press(self.track_id, viewer_of(interaction), VOTE_VALUES[self.emoji])
            # the post itself shows the new counts (an interaction may edit its message anywhere)
            await interaction.response.edit_message(view=voted_view(self.track_id, up, down))
        except Exception as exc:
            await send_error(interaction, describe(exc))


def voted_view(track_id: int, up: int = 0, down: int = 0) -> discord.ui.View:
    """The track's view with vote buttons showing `up` and `down`."""
    view = track_view(track_id)
    view.add_item(VoteButton(UP, track_id, up))
    view.add_item(VoteButton(DOWN, track_id, down))
    return view
