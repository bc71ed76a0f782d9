"""The bot's vote service: the stored vote follows the reactions the user still has, in event order."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from bot.services import VoteService
from db import repository as repo
from db.engine import make_engine, make_sessionmaker, upgrade_engine
from db.models import Vote
from tests.db.conftest import pg_cluster  # noqa: F401 - the throw-away PostgreSQL cluster fixture


@pytest.fixture(params=["sqlite", "postgresql"])
async def sessionmaker(request, settings):
    """The bot's votes on a SQLite file and on a real PostgreSQL server."""
    url = settings.database_url
    if request.param == "postgresql":
        cluster = request.getfixturevalue("pg_cluster")
        name = f"bot_votes_{request.node.name.split('[')[0][-20:]}".replace("-", "_")
        cluster.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        cluster.sql(f"CREATE DATABASE {name}")
        url = cluster.url(name)
    engine = make_engine(url)
    await upgrade_engine(engine)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def _posted_track(sessionmaker, message_id=555):
    async with sessionmaker.begin() as s:
        t = await repo.create_track(
            s, user_id=1, user_name="u", mood_requested="rainy", length_requested_s=60, seed=1
        )
        await repo.set_message(s, t.id, message_id=message_id)
    return t.id


async def _score(sessionmaker, track_id):
    async with sessionmaker() as s:
        return await s.scalar(select(func.coalesce(func.sum(Vote.value), 0)).where(Vote.track_id == track_id))


async def test_up_down_then_down_removed_leaves_the_up_vote(sessionmaker):
    track_id = await _posted_track(sessionmaker)
    votes = VoteService(sessionmaker)
    assert await votes.react(555, 7, 1, added=True)
    assert await votes.react(555, 7, -1, added=True)
    assert await votes.react(555, 7, -1, added=False)
    assert await _score(sessionmaker, track_id) == 1


async def test_events_dispatched_at_once_apply_in_arrival_order(sessionmaker):
    track_id = await _posted_track(sessionmaker)
    votes = VoteService(sessionmaker)
    # discord.py runs each listener as its own task: the three events race unless applied in order
    results = await asyncio.gather(
        votes.react(555, 8, 1, added=True),
        votes.react(555, 8, -1, added=True),
        votes.react(555, 8, -1, added=False),
    )
    assert results == [True, True, True]
    assert await _score(sessionmaker, track_id) == 1
    assert await votes.react(999, 8, 1, added=True) is False  # not one of our messages
