"""Alembic migrations: empty DB to head, previous head to head without losing rows, models == migrations."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from db.engine import current_revision, make_engine, upgrade
from db.models import Base


def _run(coro):
    return asyncio.run(coro)


def test_upgrade_empty_db_to_head(db_url):
    upgrade(db_url)
    assert current_revision(db_url) == "0008"


def test_schema_matches_models(db_url):
    upgrade(db_url)

    async def diff():
        engine = make_engine(db_url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda c: compare_metadata(
                        MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata
                    )
                )
        finally:
            await engine.dispose()

    assert _run(diff()) == []


def test_upgrade_from_previous_head_keeps_rows(db_url):
    upgrade(db_url, "0001")

    async def exec_(sql, fetch=False):
        engine = make_engine(db_url)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(text(sql))
                return result.all() if fetch else None
        finally:
            await engine.dispose()

    _run(
        exec_(
            "INSERT INTO tracks (id, user_id, user_name, mood_requested, length_requested_s, seed, status, "
            "created_at) VALUES (1, 42, 'old', 'rainy', 60, 3, 'done', '2026-01-01 00:00:00')"
        )
    )
    _run(
        exec_(
            "INSERT INTO votes (track_id, user_id, value, created_at, updated_at) "
            "VALUES (1, 7, 1, '2026-01-01', '2026-01-01')"
        )
    )
    upgrade(db_url)
    assert current_revision(db_url) == "0008"
    rows = _run(exec_("SELECT id, user_name, title, key_requested, radio FROM tracks", fetch=True))
    assert rows == [(1, "old", None, None, False)]  # an old track asked for no key, and is no radio piece
    assert _run(exec_("SELECT track_id, user_id, value FROM votes", fetch=True)) == [(1, 7, 1)]
    upgrade(db_url)  # idempotent


async def test_upgrade_works_inside_a_running_loop(db_url):
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar() == "0008"
    finally:
        await engine.dispose()
