"""DATABASE_URL as operators write it, and one clear line (a typed error) for each way it can be wrong."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import text

from db.engine import check_database_url, make_engine, normalize_url, upgrade_engine
from db.errors import DatabaseConfigError, DatabaseNotWritable, DatabaseUnreachable, InvalidDatabaseURL
from tests.db.pg import free_port


@pytest.mark.parametrize(
    ("written", "driver"),
    [
        ("sqlite:///file.db", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///file.db", "sqlite+aiosqlite"),
        ("sqlite+pysqlite:////abs/file.db", "sqlite+aiosqlite"),
        ("postgresql://u:p@db:5432/lofi", "postgresql+asyncpg"),
        ("postgres://u:p@db/lofi", "postgresql+asyncpg"),
        ("postgresql+psycopg2://u@db/lofi", "postgresql+asyncpg"),
        ("postgresql+asyncpg://u@db/lofi", "postgresql+asyncpg"),
    ],
)
def test_accepted_url_forms_get_the_async_driver(written, driver):
    u = normalize_url(written)
    assert u.drivername == driver
    assert u.database in ("file.db", "/abs/file.db", "lofi")


def test_libpq_sslmode_becomes_asyncpg_ssl():
    assert dict(normalize_url("postgres://u@h/db?sslmode=require").query) == {"ssl": "require"}


@pytest.mark.parametrize(
    "bad", ["", "lofi.sqlite3", "mysql://u:secret@h/db", "http//x", "oracle+cx://u:secret@h"]
)
def test_a_wrong_url_is_one_line_naming_the_setting(bad):
    with pytest.raises(InvalidDatabaseURL) as err:
        normalize_url(bad)
    msg = str(err.value)
    assert "DATABASE_URL" in msg and "\n" not in msg and "secret" not in msg


async def test_plain_sqlite_url_opens_and_migrates(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    engine = make_engine("sqlite:///var/file.db")
    try:
        await upgrade_engine(engine)
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM votes"))).scalar() == 0
    finally:
        await engine.dispose()
    assert (tmp_path / "var" / "file.db").is_file()


def test_a_database_folder_that_cannot_be_made_is_one_line(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(DatabaseNotWritable) as err:
        check_database_url(f"sqlite:///{tmp_path / 'afile' / 'sub' / 'lofi.db'}")
    assert "DATABASE_URL" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_database_folder_is_one_line(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    with pytest.raises(DatabaseNotWritable):
        check_database_url(f"sqlite:///{ro / 'lofi.db'}")


async def test_an_unreachable_postgresql_server_is_one_line():
    engine = make_engine(f"postgresql://lofi:hunter2@127.0.0.1:{free_port()}/lofi")
    try:
        with pytest.raises(DatabaseUnreachable) as err:
            await upgrade_engine(engine)
    finally:
        await engine.dispose()
    msg = str(err.value)
    assert msg.startswith("DATABASE_URL: cannot connect to PostgreSQL at 127.0.0.1:")
    assert "\n" not in msg and "hunter2" not in msg


async def test_a_missing_postgresql_database_is_one_line(pg_cluster):
    engine = make_engine(pg_cluster.url("no_such_db"))
    try:
        with pytest.raises(DatabaseUnreachable, match="no_such_db"):
            await upgrade_engine(engine)
    finally:
        await engine.dispose()


def test_lofi_bot_with_a_bad_url_exits_2_with_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "SERVING_", "DATABASE_"))}
    env.update(DISCORD_TOKEN="x", DATABASE_URL="mysql://u:pw@h/db", SERVING_ADDRESS="127.0.0.1:1")
    out = subprocess.run(
        [sys.executable, "-m", "lofi.cli", "bot", "--no-sync"],
        cwd=tmp_path, env={**env, "PYTHONPATH": os.getcwd()}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "DATABASE_URL" in lines[0] and "Traceback" not in out.stderr


def test_every_config_error_is_a_database_config_error():
    for cls in (InvalidDatabaseURL, DatabaseNotWritable, DatabaseUnreachable):
        assert issubclass(cls, DatabaseConfigError)
