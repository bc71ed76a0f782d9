"""Votes on posted tracks: reactions where the bot is in the server, buttons elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import TrackGone
from bot.services.common import Viewer
from db import repository as repo
from db.models import Track
from db.retry import is_unavailable, retry_transaction

log = logging.getLogger(__name__)

Event = tuple[int, bool]  # (+1 / -1, added)


class VoteService:
    """Votes from reactions on the bot's track messages.

    While the database is unavailable (stopped, unreachable, locked past every retry) a user's reaction events
    on a message are kept, the last one per emoji, and applied in order once it answers again: a vote is not
    lost to an outage. At most `max_pending` users' events wait; beyond that a new one is logged as lost.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        retry_s: float = 1.0,
        retry_max_s: float = 30.0,
        max_pending: int = 10_000,
    ):
        self.sessionmaker = sessionmaker
        self._locks = [asyncio.Lock() for _ in range(64)]  # one user's events apply in the order they came
        self._pending: dict[tuple[int, int], list[Event]] = {}  # (message, user) -> events not yet applied
        self._retry_s, self._retry_max_s, self._max_pending = retry_s, retry_max_s, max_pending
        self._retrier: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Users whose reaction events wait for the database."""
        return len(self._pending)

    def _lock(self, key: tuple[int, int]) -> asyncio.Lock:
        return self._locks[hash(key) % len(self._locks)]

    async def _apply(self, message_id: int, user_id: int, events: list[Event]) -> bool:
        """Apply `events` in order in one transaction (retried while locked); False when the message is not
        one of our tracks."""

        async def apply(s: AsyncSession) -> bool:
            track = await repo.track_by_message(s, message_id)
            if track is None:
                return False
            for value, added in events:
                await repo.apply_reaction(s, track.id, user_id, value, added=added)
            return True

        what = f"votes {events} by user {user_id} on message {message_id}"
        return await retry_transaction(self.sessionmaker, apply, what=what)

    async def react(self, message_id: int, user_id: int, value: int, *, added: bool) -> bool:
        """Apply a reaction: the stored vote follows the vote reactions the user still has (in arrival order
        per user). False when the message is not one of our tracks; True when applied, or kept to apply once
        the database answers again."""
        key = (message_id, user_id)
        async with self._lock(key):
            if key in self._pending:  # earlier events of this user wait: this one goes after them
                return self._keep(key, value, added)
            try:
                return await self._apply(message_id, user_id, [(value, added)])
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
                log.warning(
                    "database unavailable: vote %+d %s by user %s on message %s kept to retry",
                    value, "added" if added else "removed", user_id, message_id,
                )  # fmt: skip
                return self._keep(key, value, added)

    async def press(self, track_id: int, viewer: Viewer, value: int) -> tuple[int, int]:
        """A vote button (posts where the bot sees no reactions: DMs, servers it is not in): `viewer` votes
        `value` on track `track_id`, or takes back the vote they had pressed. Returns the track's (👍, 👎);
        TrackGone when the track is not `viewer`'s to vote on (a custom id can name any track). Unlike a
        reaction, nothing is kept through an outage: the user is answered and can press again."""

        async def apply(s: AsyncSession) -> tuple[int, int]:
            track = await s.get(Track, track_id)
            if track is None or not viewer.may_use(track.guild_id, track.user_id, track.channel_id):
                raise TrackGone()
            await repo.press_vote(s, track_id, viewer.user_id, value)
            return await repo.vote_counts(s, track_id)

        key = (track_id, viewer.user_id)  # a double click applies in order: the second takes the first back
        async with self._lock(key):
            what = f"vote {value:+d} by user {viewer.user_id} on track {track_id}"
            return await retry_transaction(self.sessionmaker, apply, what=what)

    def _keep(self, key: tuple[int, int], value: int, added: bool) -> bool:
        events = self._pending.get(key)
        if events is None:
            if len(self._pending) >= self._max_pending:
                log.error(
                    "lost a vote on message %s: %d users' votes already wait", key[0], len(self._pending)
                )
                return False
            events = self._pending[key] = []
        # Only the last event of each emoji matters (👍 added then removed is nothing); order across emojis
        # does (the vote is the latest one added).
        events[:] = [e for e in events if e[0] != value] + [(value, added)]
        if self._retrier is None or self._retrier.done():
            self._retrier = asyncio.create_task(self._retry_pending(), name="vote-retry")
        return True

    async def _retry_pending(self) -> None:
        """Apply the kept events until none is left, backing off while the database stays unavailable."""
        delay = self._retry_s
        while self._pending:
            await asyncio.sleep(delay)
            delay = self._retry_s if await self._flush() else min(delay * 2, self._retry_max_s)

    async def _flush(self) -> bool:
        """One pass over the kept events; False when the database is still unavailable."""
        for key in list(self._pending):
            async with self._lock(key):
                events = self._pending.get(key)
                if not events:
                    continue
                try:
                    await self._apply(key[0], key[1], list(events))
                except Exception as exc:
                    if is_unavailable(exc):
                        return False
                    log.exception("dropped votes %s by user %s on message %s", events, key[1], key[0])
                del self._pending[key]
        log.info("the database answers again: kept votes applied")
        return True

    async def close(self) -> None:
        """Stop retrying; what still waits is logged as lost."""
        if self._retrier is not None:
            self._retrier.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retrier
        if self._pending:
            log.error(
                "lost the votes of %d user(s): the database did not answer before shutdown", self.pending
            )
