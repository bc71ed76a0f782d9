"""Votes follow the reactions a user still has, survive bursts and locks, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading

import pytest
from sqlalchemy import func, select

from db import repository as repo
from db.engine import make_engine, make_sessionmaker, upgrade_engine
from db.errors import DatabaseBusy
from db.models import Vote
from db.retry import retry_transaction
from tests.db.test_repository import _done_track

UP, DOWN = 1, -1


async def _votes(sessionmaker, track_id):
    async with sessionmaker() as s:
        rows = (await s.scalars(select(Vote).where(Vote.track_id == track_id))).all()
        return {(v.user_id, v.value) for v in rows}


async def _events(sessionmaker, track_id, user_id, events):
    for value, added in events:
        async with sessionmaker.begin() as s:
            await repo.apply_reaction(s, track_id, user_id, value, added=added)


async def test_up_added_down_added_down_removed_leaves_the_up_vote(sessionmaker):
    async with sessionmaker.begin() as s:
        t = await _done_track(s)
    await _events(sessionmaker, t.id, 10, [(UP, True), (DOWN, True)])
    assert await _votes(sessionmaker, t.id) == {(10, DOWN)}  # the newest reaction counts while both show
    await _events(sessionmaker, t.id, 10, [(DOWN, False)])
    assert await _votes(sessionmaker, t.id) == {(10, UP)}  # Discord still shows the 👍
    await _events(sessionmaker, t.id, 10, [(UP, False)])
    assert await _votes(sessionmaker, t.id) == set()


async def test_removing_the_older_reaction_keeps_the_newer_vote(sessionmaker):
    async with sessionmaker.begin() as s:
        t = await _done_track(s)
    await _events(sessionmaker, t.id, 10, [(UP, True), (DOWN, True), (UP, False)])
    assert await _votes(sessionmaker, t.id) == {(10, DOWN)}
    await _events(sessionmaker, t.id, 10, [(UP, False), (DOWN, False), (DOWN, False)])  # repeats are harmless
    assert await _votes(sessionmaker, t.id) == set()


async def test_a_burst_of_40_concurrent_events_from_one_user_loses_none(sessionmaker):
    async with sessionmaker.begin() as s:
        t = await _done_track(s)

    async def event(i):
        async with sessionmaker.begin() as s:
            await repo.get_track(s, t.id)  # as the bot does: find the track, then vote
            await repo.apply_reaction(s, t.id, 77, UP if i % 2 else DOWN, added=True)

    results = await asyncio.gather(*(event(i) for i in range(40)), return_exceptions=True)
    assert [r for r in results if isinstance(r, Exception)] == []
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(Vote).where(Vote.track_id == t.id)) == 1

    async def add(i):
        async with sessionmaker.begin() as s:
            await repo.apply_reaction(s, t.id, 78, UP if i % 2 else DOWN, added=True)

    results = await asyncio.gather(*(add(i) for i in range(40)), return_exceptions=True)
    assert [r for r in results if isinstance(r, Exception)] == []
    assert len([u for u, _ in await _votes(sessionmaker, t.id) if u == 78]) == 1


@pytest.fixture
async def locked_sqlite(sqlite_only, db_url):
    """An engine that gives up on a lock after 50 ms, and a way to hold SQLite's write lock from outside."""
    engine = make_engine(db_url, busy_timeout_ms=50)
    await upgrade_engine(engine)
    path = db_url.split("///", 1)[1]

    def hold(seconds: float) -> threading.Thread:
        ready = threading.Event()

        def run():
            con = sqlite3.connect(path, isolation_level=None)
            con.execute("BEGIN IMMEDIATE")
            ready.set()
            threading.Event().wait(seconds)
            con.execute("ROLLBACK")
            con.close()

        th = threading.Thread(target=run, daemon=True)
        th.start()
        ready.wait(5)
        return th

    yield make_sessionmaker(engine), hold
    await engine.dispose()


async def test_a_vote_made_while_the_database_is_locked_is_retried(locked_sqlite):
    sm, hold = locked_sqlite
    async with sm.begin() as s:
        t = await _done_track(s)
    holder = hold(0.4)

    async def vote(s):
        return await repo.apply_reaction(s, t.id, 5, UP, added=True)

    await retry_transaction(sm, vote, what="vote", attempts=6, delay_s=0.1)
    holder.join()
    assert await _votes(sm, t.id) == {(5, UP)}


async def test_a_vote_locked_out_for_good_is_logged_as_lost(locked_sqlite, caplog):
    sm, hold = locked_sqlite
    async with sm.begin() as s:
        t = await _done_track(s)
    holder = hold(3.0)

    async def vote(s):
        return await repo.apply_reaction(s, t.id, 5, UP, added=True)

    with caplog.at_level(logging.WARNING, logger="db.retry"), pytest.raises(DatabaseBusy):
        await retry_transaction(sm, vote, what="vote +1 by user 5 on track 1", attempts=3, delay_s=0.05)
    holder.join()
    lost = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(lost) == 1 and "lost vote +1 by user 5 on track 1" in lost[0].getMessage()
    assert await _votes(sm, t.id) == set()
