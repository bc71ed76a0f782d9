"""Votes on posted tracks."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import repository as repo
from db.retry import retry_transaction

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


class VoteService:
    """Votes from reactions on the bot's track messages."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]):
        self.sessionmaker = sessionmaker
        self._locks = [asyncio.Lock() for _ in range(64)]  # one user's events apply in the order they came

    async def react(self, message_id: int, user_id: int, value: int, *, added: bool) -> bool:
        """Apply a reaction: the stored vote follows the vote reactions the user still has (retried while the
        database is locked, in arrival order per user). False when the message is not one of our tracks."""

        async def apply(s: AsyncSession) -> bool:
            track = await repo.track_by_message(s, message_id)
            if track is None:
                return False
            await repo.apply_reaction(s, track.id, user_id, value, added=added)
            return True

        what = f"vote {value:+d} {'added' if added else 'removed'} by user {user_id} on message {message_id}"
        async with self._locks[hash((message_id, user_id)) % len(self._locks)]:
            return await retry_transaction(self.sessionmaker, apply, what=what)
