"""Engine and session factory, SQLite tuning, and schema upgrades through Alembic.

Nothing here connects at import time: the bot calls `make_engine` in `setup_hook` and owns the result.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from db.errors import MigrationError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_MS = 5000


def _ensure_sqlite_folder(url: str) -> None:
    """Create the folder of a file-backed SQLite database (SQLite creates the file, not its folder)."""
    u = make_url(url)
    if (
        u.get_backend_name() == "sqlite"
        and u.database
        and u.database != ":memory:"
        and not u.database.startswith("file:")
    ):
        Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets readers (the bot's /lofi-top) run while a writer records a track; busy_timeout waits for a
    # lock instead of failing at once; SQLite leaves foreign keys off unless asked.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def make_engine(url: str, **kwargs) -> AsyncEngine:
    """An async engine for any SQLAlchemy URL; SQLite gets WAL, a busy timeout and foreign keys."""
    _ensure_sqlite_folder(url)
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """The session factory; objects stay readable after commit so callers can use what they got back."""
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str | None = None):
    """An Alembic config pointing at the packaged migrations (no alembic.ini needed)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        # ConfigParser interpolation: a literal % in a password must be doubled.
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Run `alembic upgrade <revision>` on `url` (synchronous; inside a running loop prefer `upgrade_engine`)."""
    from alembic import command

    _ensure_sqlite_folder(url)
    cfg = alembic_config(url)
    try:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            command.upgrade(cfg, revision)
        else:
            # env.py runs its own event loop; it cannot nest in this thread's running one.
            with ThreadPoolExecutor(max_workers=1) as pool:
                pool.submit(command.upgrade, cfg, revision).result()
    except Exception as exc:
        raise MigrationError(f"upgrading the database to {revision} failed: {exc}") from exc


async def upgrade_engine(engine: AsyncEngine, revision: str = "head") -> None:
    """Run `alembic upgrade <revision>` over a connection of `engine` (for use inside a running loop)."""
    from alembic import command

    def run(sync_conn) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, revision)

    try:
        async with engine.begin() as conn:
            await conn.run_sync(run)
    except Exception as exc:
        raise MigrationError(f"upgrading the database to {revision} failed: {exc}") from exc


def current_revision(url: str) -> str | None:
    """The revision the database at `url` is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    async def read() -> str | None:
        engine = make_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
        finally:
            await engine.dispose()

    return asyncio.run(read())
