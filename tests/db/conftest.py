"""Real SQLite files in tmp_path, schema made by the real migrations."""

from __future__ import annotations

import pytest

from db.engine import make_engine, make_sessionmaker, upgrade_engine


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite+aiosqlite:///{tmp_path / 'sub' / 'lofi.sqlite3'}"


@pytest.fixture
async def sessionmaker(db_url):
    engine = make_engine(db_url)
    await upgrade_engine(engine)
    yield make_sessionmaker(engine)
    await engine.dispose()
