"""Retrying a transaction that lost a lock race, with a bound; what is given up is logged."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.errors import DatabaseBusy, DatabaseFileGone

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


# PostgreSQL SQLSTATEs of a server that is gone or not accepting connections: class 08 (connection
# exception), admin/crash shutdown, starting up or shutting down.
_PG_GONE_PREFIX = "08"
_PG_GONE = {"57P01", "57P02", "57P03"}
_SQLITE_GONE = ("unable to open database file", "disk i/o error")
_DRIVERS = ("sqlalchemy", "asyncpg", "aiosqlite")


def _raised_by_driver(exc: BaseException) -> bool:
    """Whether `exc` was raised inside the database libraries (a refused connection is a plain OSError that
    SQLAlchemy does not wrap; Discord's or the model server's connection errors must not read as ours)."""
    tb = exc.__traceback__
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).startswith(_DRIVERS):
            return True
        tb = tb.tb_next
    return False


def _gone(exc: BaseException) -> bool:
    if isinstance(exc, DatabaseBusy | DatabaseFileGone):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    code = str(getattr(exc, "sqlstate", None) or "")
    if code.startswith(_PG_GONE_PREFIX) or code in _PG_GONE:
        return True
    if isinstance(exc, DBAPIError) and any(m in str(exc.orig).lower() for m in _SQLITE_GONE):
        return True
    return isinstance(exc, ConnectionError | socket.gaierror | TimeoutError) and _raised_by_driver(exc)


def is_unavailable(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) says the database cannot be reached or used right now: the server
    stopped or refused the connection, the file cannot be opened, a lock outlasted every retry. A later try can
    succeed; nothing about the request was wrong."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if _gone(current):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


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
