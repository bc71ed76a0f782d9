"""Votes on posted tracks."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import repository as repo

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


class VoteService:
    """Votes from reactions on the bot's track messages."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]):
        self.sessionmaker = sessionmaker

    async def react(self, message_id: int, user_id: int, value: int, *, added: bool) -> bool:
        """Apply a reaction: added sets the user's vote, removed drops it (if it still is that value).
        False when the message is not one of our tracks."""
        async with self.sessionmaker.begin() as s:
            track = await repo.track_by_message(s, message_id)
            if track is None:
                return False
            if added:
                await repo.upsert_vote(s, track.id, user_id, value)
            else:
                await repo.remove_vote(s, track.id, user_id, value)
            return True
