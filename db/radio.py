"""Repository functions for the radio's state (one row per guild); the caller owns the session."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import RadioStation


async def get_station(session: AsyncSession, guild_id: int) -> RadioStation | None:
    """The guild's radio row, if it ever had one."""
    return await session.get(RadioStation, guild_id)


async def save_station(session: AsyncSession, guild_id: int, **values: Any) -> RadioStation:
    """Create or update the guild's radio row with `values` (column names)."""
    row = await session.get(RadioStation, guild_id)
    if row is None:
        values.setdefault("active", False)
        values.setdefault("always_on", False)
        row = RadioStation(guild_id=guild_id, **values)
        session.add(row)
    else:
        for key, value in values.items():
            setattr(row, key, value)
    await session.flush()
    return row


async def active_stations(session: AsyncSession) -> list[RadioStation]:
    """Every radio that should be playing (to start again after a restart)."""
    rows = await session.execute(select(RadioStation).where(RadioStation.active.is_(True)))
    return list(rows.scalars())


async def deactivate(session: AsyncSession, guild_id: int, *, now: datetime | None = None) -> None:
    """Mark the guild's radio stopped (its mood and 24/7 choice are kept for the next start)."""
    row = await session.get(RadioStation, guild_id)
    if row is not None:
        row.active = False
        row.stop_at = None
        await session.flush()
