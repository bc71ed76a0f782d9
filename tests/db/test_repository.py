"""Repository behaviour on real SQLite files."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from db import repository as repo
from db.errors import RetrainAlreadyRunning
from db.models import RetrainStatus, Track, TrackStatus, Vote, utcnow


async def _score(s, track_id: int) -> int:
    """The net score (up minus down) of one track, read straight from the votes."""
    return await s.scalar(select(func.coalesce(func.sum(Vote.value), 0)).where(Vote.track_id == track_id))


async def _done_track(s, user_id=1, tokens=None, versions=None, created_at=None, message_id=None):
    t = await repo.create_track(
        s,
        user_id=user_id,
        user_name=f"user{user_id}",
        mood_requested="rainy",
        length_requested_s=120,
        seed=7,
        guild_id=5,
        channel_id=6,
    )
    if created_at is not None:
        t.created_at = created_at
    await repo.mark_generating(s, t.id)
    await repo.mark_done(
        s,
        t.id,
        mood="rainy",
        length_s=119.5,
        bpm=80,
        key="A minor",
        mp3_path="a.mp3",
        midi_path="a.mid",
        cover_path="a.png",
        versions=versions or {"lstm": "1"},
        timings={"total": 1.0},
        tokens=tokens or [1, 2, 3],
    )
    if message_id is not None:
        await repo.set_message(s, t.id, message_id=message_id)
    return t


async def test_track_lifecycle_round_trip(sessionmaker):
    async with sessionmaker.begin() as s:
        t = await _done_track(s, message_id=999)
    async with sessionmaker() as s:
        got = await repo.track_by_message(s, 999)
    assert got.id == t.id and got.status is TrackStatus.done
    assert got.versions == {"lstm": "1"} and got.tokens == [1, 2, 3]
    assert got.finished_at.tzinfo is not None and got.started_at <= got.finished_at


async def test_track_by_message_unknown_is_none(sessionmaker):
    async with sessionmaker() as s:
        assert await repo.track_by_message(s, 12345) is None


async def test_vote_is_one_per_user_and_changeable(sessionmaker):
    async with sessionmaker.begin() as s:
        t = await _done_track(s)
    async with sessionmaker.begin() as s:
        await repo.apply_reaction(s, t.id, 10, 1, added=True)
    async with sessionmaker.begin() as s:
        await repo.apply_reaction(s, t.id, 10, 1, added=True)
        await repo.apply_reaction(s, t.id, 11, 1, added=True)
    async with sessionmaker.begin() as s:
        assert await _score(s, t.id) == 2
        await repo.apply_reaction(s, t.id, 10, -1, added=True)
    async with sessionmaker() as s:
        assert await _score(s, t.id) == 0


async def test_vote_unique_constraint_in_schema(sessionmaker):
    async with sessionmaker.begin() as s:
        t = await _done_track(s)
    with pytest.raises(IntegrityError):
        async with sessionmaker.begin() as s:
            for _ in range(2):
                await s.execute(
                    text(
                        "INSERT INTO votes (track_id, user_id, value, created_at, updated_at) "
                        "VALUES (:t, 1, 1, '2026-01-01', '2026-01-01')"
                    ),
                    {"t": t.id},
                )


async def test_vote_removable_only_matching_value(sessionmaker):
    async with sessionmaker.begin() as s:
        t = await _done_track(s)
        await repo.apply_reaction(s, t.id, 10, -1, added=True)
    async with sessionmaker.begin() as s:
        # removing the 👍 reaction must not drop a 👎 vote that replaced it
        assert (await repo.apply_reaction(s, t.id, 10, 1, added=False)).value == -1
        assert await repo.apply_reaction(s, t.id, 10, -1, added=False) is None
    async with sessionmaker() as s:
        assert await _score(s, t.id) == 0


async def test_bad_vote_value_refused(sessionmaker):
    async with sessionmaker.begin() as s:
        t = await _done_track(s)
        with pytest.raises(ValueError):
            await repo.apply_reaction(s, t.id, 1, 2, added=True)


async def test_top_tracks_by_score_and_period(sessionmaker):
    async with sessionmaker.begin() as s:
        a = await _done_track(s)
        b = await _done_track(s)
        old = await _done_track(s, created_at=utcnow() - timedelta(days=10))
        failed = await repo.create_track(
            s, user_id=1, user_name="u", mood_requested="rainy", length_requested_s=60, seed=1
        )
        await repo.mark_failed(s, failed.id, "boom")
        for user in (1, 2, 3):
            await repo.apply_reaction(s, old.id, user, 1, added=True)
        await repo.apply_reaction(s, b.id, 1, 1, added=True)
        await repo.apply_reaction(s, a.id, 1, -1, added=True)
    async with sessionmaker() as s:
        week = await repo.top_tracks(s, "week")
        every = await repo.top_tracks(s, "all")
    assert [r.track.id for r in week] == [b.id, a.id]
    assert [r.track.id for r in every] == [old.id, b.id, a.id]
    assert (every[0].score, every[0].up, every[0].down) == (3, 3, 0)


async def test_top_tracks_rejects_unknown_period(sessionmaker):
    async with sessionmaker() as s:
        with pytest.raises(ValueError):
            await repo.top_tracks(s, "decade")


async def test_history_is_per_user_newest_first(sessionmaker):
    async with sessionmaker.begin() as s:
        first = await _done_track(s, user_id=1)
        await _done_track(s, user_id=2)
        second = await _done_track(s, user_id=1)
    async with sessionmaker() as s:
        rows = await repo.history(s, 1)
    assert [r.track.id for r in rows] == [second.id, first.id]


async def test_crash_recovery_marks_unfinished_tracks_failed(sessionmaker):
    async with sessionmaker.begin() as s:
        queued = await repo.create_track(
            s, user_id=1, user_name="u", mood_requested="rainy", length_requested_s=60, seed=1
        )
        running = await repo.create_track(
            s, user_id=1, user_name="u", mood_requested="rainy", length_requested_s=60, seed=2,
            reply=(42, "interaction-token"),
        )  # fmt: skip
        await repo.mark_generating(s, running.id)
        done = await _done_track(s)
    async with sessionmaker.begin() as s:
        interrupted = await repo.fail_interrupted(s)
    assert sorted((i.track_id, i.reply) for i in interrupted) == [
        (queued.id, None),
        (running.id, (42, "interaction-token")),
    ]
    async with sessionmaker() as s:
        rows = {t.id: t for t in (await s.scalars(select(Track)))}
    assert (rows[queued.id].status, rows[queued.id].error) == (TrackStatus.failed, repo.INTERRUPTED)
    assert (rows[running.id].status, rows[running.id].error) == (TrackStatus.failed, repo.INTERRUPTED)
    assert rows[done.id].status is TrackStatus.done
    assert all(t.reply_token is None for t in rows.values())  # a token stays only while its track is made


async def test_a_restarting_shard_process_fails_only_its_own_guilds_tracks(sessionmaker):
    # guild ids whose (id >> 22) % 2 is 0 and 1: another live process runs shard 1
    mine, theirs = 4 << 22, 5 << 22
    async with sessionmaker.begin() as s:
        ids = {}
        for name, guild in (("mine", mine), ("theirs", theirs), ("dm", None)):
            t = await repo.create_track(
                s,
                user_id=1,
                user_name="u",
                mood_requested="rainy",
                length_requested_s=60,
                seed=1,
                guild_id=guild,
            )
            ids[name] = t.id
    async with sessionmaker.begin() as s:
        interrupted = await repo.fail_interrupted(s, shard_count=2, shard_ids=[0])
    assert sorted(i.track_id for i in interrupted) == sorted([ids["mine"], ids["dm"]])
    async with sessionmaker() as s:
        assert (await s.get(Track, ids["theirs"])).status is TrackStatus.queued


async def test_failed_transaction_leaves_no_half_written_row(sessionmaker):
    async with sessionmaker.begin() as s:
        t = await repo.create_track(
            s, user_id=1, user_name="u", mood_requested="rainy", length_requested_s=60, seed=1
        )
    with pytest.raises(RuntimeError):
        async with sessionmaker.begin() as s:
            await repo.mark_done(
                s, t.id, mood="rainy", length_s=1, bpm=80, key="C", mp3_path="x", midi_path="y"
            )
            raise RuntimeError("crash while posting")
    async with sessionmaker() as s:
        again = await repo.get_track(s, t.id)
    assert again.status is TrackStatus.queued and again.mp3_path is None


async def test_liked_and_disliked_tokens_use_net_score(sessionmaker):
    async with sessionmaker.begin() as s:
        liked = await _done_track(s, tokens=[1, 1])
        split = await _done_track(s, tokens=[2, 2])
        disliked = await _done_track(s, tokens=[3, 3])
        await repo.apply_reaction(s, liked.id, 1, 1, added=True)
        await repo.apply_reaction(s, liked.id, 2, 1, added=True)
        await repo.apply_reaction(s, split.id, 1, 1, added=True)
        await repo.apply_reaction(s, split.id, 2, -1, added=True)
        await repo.apply_reaction(s, disliked.id, 1, -1, added=True)
    async with sessionmaker() as s:
        assert await repo.liked_track_tokens(s, 1) == [[1, 1]]
        assert await repo.liked_track_tokens(s, 3) == []
        assert await repo.disliked_track_tokens(s, 1) == [[3, 3]]


async def test_score_by_version_counts_each_member(sessionmaker):
    async with sessionmaker.begin() as s:
        t = await _done_track(s, versions={"lstm": "1", "transformer": "2"})
        await _done_track(s, versions={"lstm": "2"})
        await repo.apply_reaction(s, t.id, 1, 1, added=True)
    async with sessionmaker() as s:
        scores = await repo.score_by_version(s)
    assert scores["lstm@1"] == {"tracks": 1, "up": 1, "down": 0, "score": 1}
    assert scores["transformer@2"]["score"] == 1
    assert scores["lstm@2"] == {"tracks": 1, "up": 0, "down": 0, "score": 0}


async def test_tracks_today(sessionmaker):
    async with sessionmaker.begin() as s:
        await _done_track(s)
        await _done_track(s, created_at=utcnow() - timedelta(days=2))
    async with sessionmaker() as s:
        assert await repo.tracks_today(s) == 1


async def test_one_retrain_at_a_time_and_last_retrain(sessionmaker):
    async with sessionmaker.begin() as s:
        run = await repo.create_retrain_run(s, user_id=1, user_name="admin", params={"epochs": 2})
    with pytest.raises(RetrainAlreadyRunning) as err:
        async with sessionmaker.begin() as s:
            await repo.create_retrain_run(s, user_id=2, user_name="other", params={})
    assert err.value.run_id == run.id and err.value.user_name == "admin"
    async with sessionmaker.begin() as s:
        await repo.finish_retrain_run(
            s, run.id, status="kept", message="old model better", metrics={"val_loss": 1.2}, new_version="3"
        )
    async with sessionmaker() as s:
        assert await repo.running_retrain(s) is None
        last = await repo.last_retrain(s)
    assert last.status is RetrainStatus.kept and last.metrics == {"val_loss": 1.2}


async def test_interrupted_retrain_marked_failed(sessionmaker):
    async with sessionmaker.begin() as s:
        await repo.create_retrain_run(s, user_id=1, user_name="admin", params={})
    async with sessionmaker.begin() as s:
        assert await repo.fail_interrupted_retrains(s) == 1
        assert await repo.running_retrain(s) is None


async def test_sqlite_uses_wal_and_creates_folder(sqlite_only, db_url, sessionmaker, tmp_path):
    assert (tmp_path / "sub").is_dir()
    async with sessionmaker() as s:
        assert (await s.scalar(text("PRAGMA journal_mode"))).lower() == "wal"
        assert await s.scalar(text("PRAGMA busy_timeout")) == 5000
