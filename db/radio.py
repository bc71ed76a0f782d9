"""Repository functions for the radio's state (one row per guild) and the guilds' custom stations; the caller
owns the session."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import CustomStation, RadioStation


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


async def custom_stations(session: AsyncSession, guild_id: int) -> list[CustomStation]:
    """The guild's custom stations, by name."""
    rows = await session.execute(
        select(CustomStation).where(CustomStation.guild_id == guild_id).order_by(CustomStation.name)
    )
    return list(rows.scalars())


async def custom_station(session: AsyncSession, guild_id: int, name: str) -> CustomStation | None:
    """The guild's custom station called `name`, if any."""
    rows = await session.execute(
        select(CustomStation).where(CustomStation.guild_id == guild_id, CustomStation.name == name)
    )
    return rows.scalar_one_or_none()


async def count_custom_stations(session: AsyncSession, guild_id: int) -> int:
    """How many custom stations the guild has."""
    rows = await session.execute(
        select(func.count()).select_from(CustomStation).where(CustomStation.guild_id == guild_id)
    )
    return int(rows.scalar_one())


async def add_custom_station(session: AsyncSession, guild_id: int, name: str, **values: Any) -> CustomStation:
    """A new custom station (IntegrityError if the guild has one of that name: the unique constraint judges a
    race that a look-up first would miss)."""
    row = CustomStation(guild_id=guild_id, name=name, **values)
    session.add(row)
    await session.flush()
    return row


async def delete_custom_station(session: AsyncSession, guild_id: int, name: str) -> CustomStation | None:
    """Delete the guild's station called `name`; returns it (None if there was none)."""
    row = await custom_station(session, guild_id, name)
    if row is not None:
        await session.delete(row)
        await session.flush()
    return row
