"""Listings of past tracks (/lofi-history, /lofi-top)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import OthersTracksInDM
from bot.format import jump_url
from db import repository as repo
from db.models import Track

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrackLine:
    """One row of /lofi-top or /lofi-history."""

    track_id: int
    title: str
    mood: str
    length_s: float
    user_name: str
    status: str
    score: int
    up: int
    down: int
    created_at: datetime
    jump_url: str | None
    error: str | None = None


def _jump_url(t: Track) -> str | None:
    if t.message_id and t.channel_id:
        return jump_url(t.guild_id, t.channel_id, t.message_id)
    return None


def _line(row: repo.ScoredTrack) -> TrackLine:
    t = row.track
    return TrackLine(
        t.id,
        t.title or f"lofi #{t.id}",
        t.mood or t.mood_requested,
        t.length_s or t.length_requested_s,
        t.user_name,
        str(t.status),
        row.score,
        row.up,
        row.down,
        t.created_at,
        _jump_url(t),
        t.error,
    )


class BrowseService:
    """Best tracks and a user's history."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]):
        self.sessionmaker = sessionmaker

    async def top(self, period: str, guild_id: int | None, user_id: int, limit: int = 10) -> list[TrackLine]:
        """Best finished tracks of the period in this guild; in a direct message (no guild), only the caller's
        own (every guild's would show servers the caller may not be in)."""
        mine = user_id if guild_id is None else None
        async with self.sessionmaker() as s:
            rows = await repo.top_tracks(s, period, limit=limit, guild_id=guild_id, user_id=mine)
        return [_line(r) for r in rows]

    async def history(
        self, user_id: int, guild_id: int | None, caller_id: int, limit: int = 10
    ) -> list[TrackLine]:
        """`user_id`'s latest tracks in this guild; in a direct message only the caller's own, of every guild
        (OthersTracksInDM for anyone else's)."""
        if guild_id is None and user_id != caller_id:
            raise OthersTracksInDM()
        async with self.sessionmaker() as s:
            return [_line(r) for r in await repo.history(s, user_id, limit=limit, guild_id=guild_id)]
