"""Issue 24, defect 9: the database goes away under a running bot.

A real PostgreSQL cluster is stopped under the real LofiBot (against the strict fake Discord): requests and
`/lofi-status` say the database is unavailable (not "Something went wrong"), and a vote cast meanwhile is
kept and recorded once the server is back. The same for a vote removed while SQLite stays locked past
every retry.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from bot.error_handler import message_for
from bot.services import VoteService
from db import repository as repo
from db.engine import make_engine, make_sessionmaker, upgrade_engine
from db.errors import DatabaseBusy
from db.models import Vote
from db.retry import is_unavailable
from tests.db.pg import Cluster, find_bindir, start_cluster
from tests.e2e.test_bot_e2e import ephemeral_reply, of

DOWN = "database is unavailable"


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A PostgreSQL cluster of this test alone (it is stopped and started again)."""
    bindir = find_bindir()
    if bindir is None:
        if os.environ.get("CI") == "true" or os.geteuid() == 0:
            pytest.fail("PostgreSQL server binaries not found")
        pytest.skip("PostgreSQL server binaries not found")
    pg = start_cluster(bindir)
    pg.sql("CREATE DATABASE lofi")
    yield pg
    pg.stop()


def _pg_ctl(pg: Cluster, *args: str) -> None:
    subprocess.run(pg._cmd(str(pg.bindir / "pg_ctl"), "-D", str(pg.data), *args), check=True,
                   capture_output=True, timeout=120)  # fmt: skip


def halt(pg: Cluster) -> None:
    """Stop the server (its connections are terminated), keeping its data."""
    _pg_ctl(pg, "-m", "fast", "-w", "stop")


def resume(pg: Cluster) -> None:
    """Start the server again on the same port."""
    opts = f"-p {pg.port} -c listen_addresses=127.0.0.1 -k {pg.root} -c fsync=off"
    _pg_ctl(pg, "-o", opts, "-l", str(pg.root / "server.log"), "-w", "-t", "60", "start")


async def _votes(sessionmaker) -> list[tuple[int, int]]:
    async with sessionmaker() as s:
        return [(v.user_id, v.value) for v in await s.scalars(select(Vote))]


async def _until(predicate, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        if loop.time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.2)


@pytest.mark.timeout(180)
async def test_postgresql_stopped_under_the_bot(fake_discord, start_bot, fake_pipeline, cluster):
    bot = await start_bot(pipeline=fake_pipeline, database_url=cluster.url("lofi"))
    state = await fake_discord.send_interaction("lofi", {"length": "30s", "mood": "rainy"})
    message = (await fake_discord.wait_for(of(state, "followup"), timeout=20)).message
    await fake_discord.wait_for(
        lambda r: r.kind == "reaction_add" and r.params["message_id"] == message["id"], count=2
    )

    await asyncio.to_thread(halt, cluster)
    for command, options in (("lofi", {"length": "30s", "mood": "rainy"}), ("lofi-status", {})):
        text = await ephemeral_reply(fake_discord, await fake_discord.send_interaction(command, options))
        assert DOWN in text and "try again shortly" in text, (command, text)
    voter = fake_discord.make_user(1_100_000_000_000_003_000, "voter")
    await fake_discord.add_reaction(message["channel_id"], message["id"], voter["id"], "👍")
    await _until(lambda: asyncio.sleep(0, bot.votes.pending == 1), 10)  # kept, not lost

    await asyncio.to_thread(resume, cluster)

    async def counted() -> bool:
        return await _votes(bot.sessionmaker) == [(int(voter["id"]), 1)]

    await _until(counted, 60)
    assert bot.votes.pending == 0
    # and the bot works again
    state = await fake_discord.send_interaction("lofi", {"length": "30s", "mood": "rainy"})
    assert (await fake_discord.wait_for(of(state, "followup"), timeout=20)).ok
    fake_discord.assert_no_errors()


async def test_a_vote_removed_while_sqlite_stays_locked_is_applied_later(tmp_path):
    path = tmp_path / "lofi.sqlite3"
    engine = make_engine(f"sqlite+aiosqlite:///{path}", busy_timeout_ms=50)
    await upgrade_engine(engine)
    sessionmaker = make_sessionmaker(engine)
    async with sessionmaker.begin() as s:
        track = await repo.create_track(
            s, user_id=1, user_name="a", mood_requested="rainy", length_requested_s=30, seed=1
        )
        await repo.set_message(s, track.id, message_id=555)
    votes = VoteService(sessionmaker, retry_s=0.2)
    assert await votes.react(555, 7, 1, added=True)

    lock = sqlite3.connect(path, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")  # another writer holds the file past every retry
    try:
        assert await votes.react(555, 7, 1, added=False)  # kept, not lost
        assert votes.pending == 1
        await asyncio.sleep(1.0)
        assert votes.pending == 1
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    await _until(lambda: asyncio.sleep(0, votes.pending == 0), 10)
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(Vote)) == 0  # the removal applied
    await votes.close()
    await engine.dispose()


def test_only_the_database_libraries_connection_errors_are_the_databases():
    # A refused connection raised outside the drivers (Discord's HTTP client, say) is not "the database".
    assert not is_unavailable(ConnectionRefusedError(111, "Connect call failed"))
    assert message_for(ConnectionRefusedError(111, "Connect call failed")) is None
    assert is_unavailable(DatabaseBusy("vote was not recorded: the database stayed locked"))
