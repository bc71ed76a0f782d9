"""Deleting or replacing the SQLite file under a running process is noticed and said loudly."""

from __future__ import annotations

import logging
import os

import pytest

from db import repository as repo
from db.engine import check_database_file, make_engine, make_sessionmaker, upgrade_engine
from db.errors import DatabaseFileGone


@pytest.fixture
async def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'lofi.sqlite3'}")
    await upgrade_engine(engine)
    yield engine
    await engine.dispose()


async def _write(sm):
    async with sm.begin() as s:
        await repo.create_track(
            s, user_id=1, user_name="u", mood_requested="rainy", length_requested_s=60, seed=1
        )


async def test_a_deleted_database_file_fails_writes_loudly(engine, tmp_path, caplog):
    sm = make_sessionmaker(engine)
    await _write(sm)
    check_database_file(engine)  # fine while the file is there
    for suffix in ("", "-wal", "-shm"):
        if (tmp_path / f"lofi.sqlite3{suffix}").exists():
            os.remove(tmp_path / f"lofi.sqlite3{suffix}")
    with caplog.at_level(logging.CRITICAL, logger="db.engine"):
        with pytest.raises(DatabaseFileGone, match="was deleted"):
            await _write(sm)
        with pytest.raises(DatabaseFileGone):
            check_database_file(engine)
    loud = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert len(loud) == 1 and "DATABASE_URL" in loud[0].getMessage()


async def test_a_replaced_database_file_is_noticed(engine, tmp_path):
    sm = make_sessionmaker(engine)
    await _write(sm)
    other = tmp_path / "other.sqlite3"
    other.write_bytes((tmp_path / "lofi.sqlite3").read_bytes())
    os.replace(other, tmp_path / "lofi.sqlite3")
    with pytest.raises(DatabaseFileGone, match="replaced"):
        check_database_file(engine)
