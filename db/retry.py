"""Retrying a transaction that lost a lock race, with a bound; what is given up is logged."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.errors import DatabaseBusy

log = logging.getLogger(__name__)
T = TypeVar("T")

# SQLite: another writer held the lock past busy_timeout. PostgreSQL: serialisation failure, deadlock,
# lock not available.
_SQLITE_LOCKED = ("database is locked", "database table is locked", "database schema is locked")
_PG_RETRYABLE = {"40001", "40P01", "55P03"}


def is_lock_conflict(exc: BaseException) -> bool:
    """True for errors that a later attempt of the same transaction can succeed past."""
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if code in _PG_RETRYABLE:
        return True
    text = str(orig).lower()
    return any(m in text for m in _SQLITE_LOCKED)


async def retry_transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
    fn: Callable[[AsyncSession], Awaitable[T]],
    *,
    what: str,
    attempts: int = 4,
    delay_s: float = 0.25,
) -> T:
    """Run `fn(session)` in its own transaction; a lock conflict is retried up to `attempts` times in all
    (backing off, with jitter). After the last, `what` is logged as lost and DatabaseBusy raised."""
    for attempt in range(1, attempts + 1):
        try:
            async with sessionmaker.begin() as s:
                return await fn(s)
        except DBAPIError as exc:
            if not is_lock_conflict(exc):
                raise
            if attempt == attempts:
                log.error(
                    "lost %s: the database stayed locked through %d attempts (%s)",
                    what,
                    attempts,
                    str(exc.orig).strip().splitlines()[0] if exc.orig else exc,
                )
                raise DatabaseBusy(f"{what} was not recorded: the database stayed locked") from exc
            wait = delay_s * 2 ** (attempt - 1) * (0.5 + random.random())
            log.warning(
                "%s: database locked (attempt %d of %d); retrying in %.2fs", what, attempt, attempts, wait
            )
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")
