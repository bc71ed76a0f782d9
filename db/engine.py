"""Engine and session factory, SQLite tuning, and schema upgrades through Alembic.

Nothing here connects at import time: the bot calls `make_engine` in `setup_hook` and owns the result.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from db.errors import (
    DatabaseFileGone,
    DatabaseNotWritable,
    DatabaseUnreachable,
    InvalidDatabaseURL,
    MigrationError,
)

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_MS = 5000
CONNECT_TIMEOUT_S = 10.0
SETTING = "DATABASE_URL"
EXAMPLES = "sqlite:///var/lofi.sqlite3 or postgresql://user:password@host:5432/lofi"
# The spellings operators write for each backend, and the async driver each gets.
_BACKENDS = {"sqlite": "sqlite", "postgresql": "postgresql", "postgres": "postgresql", "pgsql": "postgresql"}
_ASYNC_DRIVER = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}


def _one_line(text: object, limit: int = 300) -> str:
    line = re.sub(r"\s+", " ", str(text)).strip()
    return line if len(line) <= limit else line[: limit - 1] + "…"


def normalize_url(url: str | URL) -> URL:
    """The async URL for what an operator wrote: `sqlite:///f.db`, `sqlite+aiosqlite:///f.db`, `postgres://`,
    `postgresql://`, `postgresql+psycopg2://` and `postgresql+asyncpg://` all work (the driver is chosen here).
    InvalidDatabaseURL (one line, password hidden) for anything else."""
    if isinstance(url, URL):
        u = url
    else:
        text = (url or "").strip()
        if not text:
            raise InvalidDatabaseURL(f"{SETTING} is empty; set it to a database URL such as {EXAMPLES}")
        try:
            u = make_url(text)
        except ArgumentError:
            # Never echo any of the value: what does not parse may be a password pasted on its own.
            raise InvalidDatabaseURL(
                f"{SETTING} is not a database URL; write one such as {EXAMPLES}"
            ) from None
        except ValueError:  # SQLAlchemy's int() of the port
            raise InvalidDatabaseURL(
                f"{SETTING} has a port that is not a number; write one such as {EXAMPLES}"
            ) from None
    if u.port is not None and not 0 < u.port < 65536:
        raise InvalidDatabaseURL(f"{SETTING} has a port out of range (1-65535); write one such as {EXAMPLES}")
    name, _, driver = u.drivername.partition("+")
    backend = _BACKENDS.get(name.lower())
    if backend is None:
        raise InvalidDatabaseURL(
            f"{SETTING} names an unsupported database {name!r} ({u.render_as_string(hide_password=True)}); "
            f"use SQLite or PostgreSQL, e.g. {EXAMPLES}"
        )
    if driver and driver != _ASYNC_DRIVER[backend]:
        log.info("%s: using the async driver %s instead of %s", SETTING, _ASYNC_DRIVER[backend], driver)
    u = u.set(drivername=f"{backend}+{_ASYNC_DRIVER[backend]}")
    if backend == "postgresql" and "sslmode" in u.query:
        # libpq spells it sslmode; asyncpg takes the same values as `ssl`.
        query = dict(u.query)
        query["ssl"] = query.pop("sslmode")
        u = u.set(query=query)
    return u


def _sqlite_file(u: URL) -> Path | None:
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    if u.database.startswith("file:") or u.query.get("mode") == "memory":
        return None
    return Path(u.database).expanduser()


def _ensure_sqlite_folder(url: str | URL) -> None:
    """Create the folder of a file-backed SQLite database (SQLite creates the file, not its folder) and check
    that both can be written; DatabaseNotWritable says which and what to do."""
    path = _sqlite_file(normalize_url(url))
    if path is None:
        return
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseNotWritable(
            f"{SETTING}: cannot create the database folder {folder} ({exc.strerror or exc}); create it "
            f"writable for this user or point {SETTING} at another place"
        ) from None
    if not folder.is_dir():
        raise DatabaseNotWritable(f"{SETTING}: {folder} is not a folder; point {SETTING} at another place")
    target = path if path.exists() else folder
    if not os.access(target, os.W_OK) or (target is folder and not os.access(folder, os.X_OK)):
        raise DatabaseNotWritable(
            f"{SETTING}: the database {'file' if target is path else 'folder'} {target} is not writable by "
            f"this user; fix its permissions or point {SETTING} at another place"
        )


def check_database_url(url: str | URL) -> URL:
    """Everything that can be checked without connecting: the URL form and, for SQLite, the folder. Returns
    the async URL; raises a DatabaseConfigError (one line) otherwise. Cheap: call it before starting up."""
    u = normalize_url(url)
    _ensure_sqlite_folder(u)
    return u


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets readers (the bot's /lofi-top) run while a writer records a track; busy_timeout waits for a
    # lock instead of failing at once; SQLite leaves foreign keys off unless asked.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(_record.info.get('busy_timeout_ms', BUSY_TIMEOUT_MS))}")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


class SqliteFileGuard:
    """Notices the database file being deleted or replaced under a running process.

    SQLite keeps writing to an open file that was unlinked, so without this every later track and vote would
    vanish silently. The file's identity (st_dev, st_ino) is taken when the first connection opens it and
    compared before every transaction; a change is logged at CRITICAL (once) and raises DatabaseFileGone.
    """

    def __init__(self, path: Path):
        self.path = path
        self.identity: tuple[int, int] | None = None
        self.reported = False
        self._lock = threading.Lock()

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_dev, st.st_ino

    def on_connect(self, _dbapi_connection, _record) -> None:
        with self._lock:
            if self.identity is None:
                self.identity = self._stat()

    def check(self) -> None:
        """Raise DatabaseFileGone (and log it loudly, once) if the file is missing or another file."""
        if self.identity is None:
            return
        now = self._stat()
        if now == self.identity:
            return
        what = "was deleted" if now is None else "was replaced by another file"
        msg = (
            f"the SQLite database {self.path} {what} while this process was running: nothing more can be "
            f"recorded; restore the file or restart to create a new one ({SETTING})"
        )
        if not self.reported:
            self.reported = True
            log.critical(msg)
        raise DatabaseFileGone(msg)

    def on_begin(self, _conn) -> None:
        self.check()


_GUARDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def check_database_file(engine: AsyncEngine) -> None:
    """For SQLite files: DatabaseFileGone if the file was deleted or replaced since it was opened (a check the
    bot can also run periodically; every transaction runs it anyway). Nothing for other databases."""
    guard = _GUARDS.get(engine.sync_engine)
    if guard is not None:
        guard.check()


def make_engine(url: str | URL, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS, **kwargs) -> AsyncEngine:
    """An async engine for a database URL as operators write it (see `normalize_url`); SQLite gets WAL, a
    busy timeout, foreign keys and a guard against its file being deleted; PostgreSQL a connect timeout."""
    u = check_database_url(url)
    if u.get_backend_name() == "postgresql":
        kwargs["connect_args"] = {"timeout": CONNECT_TIMEOUT_S, **kwargs.get("connect_args", {})}
    engine = create_async_engine(u, **kwargs)
    if engine.dialect.name == "sqlite":

        def pragmas(dbapi_connection, record) -> None:
            record.info["busy_timeout_ms"] = busy_timeout_ms
            _sqlite_pragmas(dbapi_connection, record)

        event.listen(engine.sync_engine, "connect", pragmas)
        path = _sqlite_file(u)
        if path is not None:
            guard = SqliteFileGuard(path)
            event.listen(engine.sync_engine, "connect", guard.on_connect)
            event.listen(engine.sync_engine, "begin", guard.on_begin)
            _GUARDS[engine.sync_engine] = guard
    return engine


async def check_connection(engine: AsyncEngine) -> None:
    """Connect once; DatabaseUnreachable / DatabaseNotWritable (one line naming DATABASE_URL) if that fails."""
    u = engine.url
    try:
        async with engine.connect():
            pass
    except (DatabaseFileGone, asyncio.CancelledError):
        raise
    except Exception as exc:
        reason = _one_line(getattr(exc, "orig", None) or exc, 200) or type(exc).__name__
        if u.get_backend_name() == "sqlite":
            raise DatabaseNotWritable(
                f"{SETTING}: cannot open the SQLite database {u.database} ({reason}); check the file and its "
                f"folder are writable or point {SETTING} at another place"
            ) from None
        where = f"{u.host or 'localhost'}:{u.port or 5432}/{u.database or ''}"
        raise DatabaseUnreachable(
            f"{SETTING}: cannot connect to PostgreSQL at {where} ({reason}); start the server, check the "
            f"host, port, user, password and database name, or set {SETTING} to a SQLite file"
        ) from None


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
        text = normalize_url(url).render_as_string(hide_password=False)
        cfg.set_main_option("sqlalchemy.url", text.replace("%", "%%"))
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

    await check_connection(engine)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(run)
    except DatabaseFileGone:
        raise
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
