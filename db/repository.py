"""Repository functions: every read and write the bot makes. Each takes the session first; the caller owns it
(`async with sessionmaker.begin() as s:`), so each state change is exactly one transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.errors import RetrainAlreadyRunning, TrackNotFound
from db.models import RetrainRun, RetrainStatus, Track, TrackStatus, Vote, utcnow

INTERRUPTED = "interrupted by restart"
PERIODS: dict[str, timedelta | None] = {
    "day": timedelta(days=1),
    "week": timedelta(days=7),
    "month": timedelta(days=30),
    "all": None,
}


@dataclass(frozen=True)
class ScoredTrack:
    """A finished track with its vote tally."""

    track: Track
    score: int
    up: int
    down: int


# ---- tracks ---------------------------------------------------------------------------------------------------


async def create_track(
    s: AsyncSession,
    *,
    user_id: int,
    user_name: str,
    mood_requested: str,
    length_requested_s: float,
    seed: int,
    bpm_requested: float | None = None,
    key_requested: str | None = None,
    radio: bool = False,
    guild_id: int | None = None,
    channel_id: int | None = None,
    reply: tuple[int, str] | None = None,
) -> Track:
    """Record a new request as `queued` and return it with its id; `reply` (application id, interaction token)
    is kept until the track is done or failed, so a restart can tell the user."""
    track = Track(
        user_id=user_id,
        user_name=user_name[:100],
        guild_id=guild_id,
        channel_id=channel_id,
        mood_requested=mood_requested,
        length_requested_s=length_requested_s,
        seed=seed,
        bpm_requested=bpm_requested,
        key_requested=key_requested,
        radio=radio,
        reply_application_id=reply[0] if reply else None,
        reply_token=reply[1] if reply else None,
        status=TrackStatus.queued,
        created_at=utcnow(),
    )
    s.add(track)
    await s.flush()
    return track


async def get_track(s: AsyncSession, track_id: int) -> Track:
    """The track with `track_id`; TrackNotFound if there is none."""
    track = await s.get(Track, track_id)
    if track is None:
        raise TrackNotFound(f"no track {track_id}")
    return track


async def mark_generating(s: AsyncSession, track_id: int) -> Track:
    """The job started: status `generating`, start time now."""
    track = await get_track(s, track_id)
    track.status = TrackStatus.generating
    track.started_at = utcnow()
    await s.flush()
    return track


async def mark_done(
    s: AsyncSession,
    track_id: int,
    *,
    mood: str,
    length_s: float,
    bpm: float,
    key: str,
    mp3_path: str,
    midi_path: str,
    cover_path: str | None = None,
    title: str | None = None,
    versions: Mapping[str, Any] | None = None,
    timings: Mapping[str, Any] | None = None,
    tokens: Sequence[int] | None = None,
) -> Track:
    """The job finished: every result field is written together with status `done`."""
    track = await get_track(s, track_id)
    track.status = TrackStatus.done
    track.mood, track.length_s, track.bpm, track.key, track.title = mood, length_s, bpm, key, title
    track.mp3_path, track.midi_path, track.cover_path = mp3_path, midi_path, cover_path
    track.versions = dict(versions) if versions is not None else None
    track.timings = dict(timings) if timings is not None else None
    track.tokens = [int(t) for t in tokens] if tokens is not None else None
    track.error = None
    track.finished_at = utcnow()
    track.reply_application_id = track.reply_token = None
    await s.flush()
    return track


async def delete_track(s: AsyncSession, track_id: int) -> None:
    """Remove a track that was never shown to anyone (its votes go with it)."""
    await s.execute(delete(Vote).where(Vote.track_id == track_id))
    await s.execute(delete(Track).where(Track.id == track_id))


async def mark_failed(s: AsyncSession, track_id: int, error: str) -> Track:
    """The job failed: status `failed` with the reason."""
    track = await get_track(s, track_id)
    track.status = TrackStatus.failed
    track.error = error[:2000]
    track.finished_at = utcnow()
    track.reply_application_id = track.reply_token = None
    await s.flush()
    return track


async def set_message(
    s: AsyncSession,
    track_id: int,
    *,
    message_id: int,
    channel_id: int | None = None,
    guild_id: int | None = None,
) -> Track:
    """Remember the Discord message the track was posted in (votes are keyed on it)."""
    track = await get_track(s, track_id)
    track.message_id = message_id
    if channel_id is not None:
        track.channel_id = channel_id
    if guild_id is not None:
        track.guild_id = guild_id
    await s.flush()
    return track


async def track_by_message(s: AsyncSession, message_id: int) -> Track | None:
    """The track posted in message `message_id`, or None (any other message)."""
    return await s.scalar(select(Track).where(Track.message_id == message_id))


@dataclass(frozen=True)
class Interrupted:
    """A track a restart interrupted, with the interaction that asked for it (if it is known)."""

    track_id: int
    created_at: datetime
    reply: tuple[int, str] | None


async def fail_interrupted(
    s: AsyncSession, *, shard_count: int | None = None, shard_ids: Sequence[int] | None = None
) -> list[Interrupted]:
    """Mark the tracks a previous process left `queued` or `generating` as failed, and return them (their reply
    tokens cleared in the database).

    With several bot processes on one database (`SHARD_IDS`), a process restarts only its own: the tracks of
    the guilds on its shards (Discord's `(guild_id >> 22) % shard_count`; direct messages and radio pieces
    belong to shard 0), never those another live process is making.
    """
    unfinished = Track.status.in_([TrackStatus.queued, TrackStatus.generating])
    query = select(Track).where(unfinished)
    if shard_count and shard_ids is not None:
        shard = case(
            (Track.guild_id.is_(None), 0),
            else_=Track.guild_id.op(">>")(literal_column("22")).op("%")(shard_count),
        )
        query = query.where(shard.in_(list(shard_ids)))
    tracks = (await s.scalars(query.with_for_update())).all()
    now = utcnow()
    out = []
    for t in tracks:
        reply = (
            (int(t.reply_application_id), t.reply_token) if t.reply_application_id and t.reply_token else None
        )
        out.append(Interrupted(t.id, t.created_at, reply))
        t.status, t.error, t.finished_at = TrackStatus.failed, INTERRUPTED, now
        t.reply_application_id = t.reply_token = None
    await s.flush()
    return out


async def tracks_today(s: AsyncSession, now: datetime | None = None) -> int:
    """How many tracks were finished in the last 24 hours."""
    since = (now or utcnow()) - timedelta(days=1)
    return (
        await s.scalar(
            select(func.count())
            .select_from(Track)
            .where(Track.status == TrackStatus.done, Track.created_at >= since)
        )
        or 0
    )


# ---- votes ----------------------------------------------------------------------------------------------------


def _insert(s: AsyncSession):
    """INSERT ... ON CONFLICT for the session's dialect (SQLite and PostgreSQL spell it alike)."""
    if s.bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def _check_value(value: int) -> None:
    if value not in (1, -1):
        raise ValueError(f"a vote is +1 or -1, not {value!r}")


async def _vote_row(s: AsyncSession, track_id: int, user_id: int) -> Vote | None:
    return await s.scalar(
        select(Vote)
        .where(Vote.track_id == track_id, Vote.user_id == user_id)
        .execution_options(populate_existing=True)
    )


async def apply_reaction(
    s: AsyncSession, track_id: int, user_id: int, value: int, *, added: bool
) -> Vote | None:
    """One reaction event: 👍 (+1) or 👎 (-1) added or removed. The row remembers which of the two the user
    still has, so 👍 added, 👎 added, 👎 removed leaves the 👍 vote (Discord still shows it). Each event is
    one atomic statement (plus a delete when no reaction is left): a burst of events cannot race.

    Returns the vote now stored, or None when the user has no vote reaction left."""
    _check_value(value)
    mine, other = (Vote.reacted_up, Vote.reacted_down) if value > 0 else (Vote.reacted_down, Vote.reacted_up)
    if added:
        now = utcnow()
        insert = _insert(s)
        stmt = insert(Vote).values(
            track_id=track_id,
            user_id=user_id,
            value=value,
            reacted_up=value > 0,
            reacted_down=value < 0,
            created_at=now,
            updated_at=now,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[Vote.track_id, Vote.user_id],
            set_={"value": value, mine.key: True, "updated_at": now},
        )
        await s.execute(stmt)
        return await _vote_row(s, track_id, user_id)
    where = (Vote.track_id == track_id, Vote.user_id == user_id)
    await s.execute(
        update(Vote)
        .where(*where)
        .values(
            {
                mine.key: False,
                "value": case((other.is_(True), -value), else_=Vote.value),
                "updated_at": utcnow(),
            }
        )
    )
    await s.execute(delete(Vote).where(*where, Vote.reacted_up.is_(False), Vote.reacted_down.is_(False)))
    return await _vote_row(s, track_id, user_id)


async def press_vote(s: AsyncSession, track_id: int, user_id: int, value: int) -> int | None:
    """A vote button pressed: 👍 (+1) or 👎 (-1). Pressing the vote the user has takes it back; the other one
    replaces it (one vote per user per track, as with reactions). Returns the vote now stored, or None."""
    _check_value(value)
    row = await _vote_row(s, track_id, user_id)
    if row is not None and row.value == value:
        await s.execute(delete(Vote).where(Vote.track_id == track_id, Vote.user_id == user_id))
        return None
    now = utcnow()
    flags = {"reacted_up": value > 0, "reacted_down": value < 0}  # a button vote is the only one the user has
    stmt = _insert(s)(Vote).values(
        track_id=track_id, user_id=user_id, value=value, created_at=now, updated_at=now, **flags
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[Vote.track_id, Vote.user_id], set_={"value": value, "updated_at": now, **flags}
    )
    await s.execute(stmt)
    return value


async def vote_counts(s: AsyncSession, track_id: int) -> tuple[int, int]:
    """(👍, 👎) votes on track `track_id`."""
    _, up, down = _score_columns()
    row = (await s.execute(select(up, down).where(Vote.track_id == track_id))).one()
    return int(row[0]), int(row[1])


def _score_columns():
    score = func.coalesce(func.sum(Vote.value), 0)
    up = func.coalesce(func.sum(case((Vote.value > 0, 1), else_=0)), 0)
    down = func.coalesce(func.sum(case((Vote.value < 0, 1), else_=0)), 0)
    return score, up, down


async def top_tracks(
    s: AsyncSession,
    period: str = "week",
    *,
    limit: int = 10,
    guild_id: int | None = None,
    user_id: int | None = None,
    now: datetime | None = None,
) -> list[ScoredTrack]:
    """The best finished tracks of `period` (day, week, month, all) by net score, newest first on ties; of
    one guild and/or one user when given (neither: every guild's)."""
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}")
    score, up, down = _score_columns()
    stmt = (
        select(Track, score.label("score"), up, down)
        .outerjoin(Vote, Vote.track_id == Track.id)
        .where(Track.status == TrackStatus.done)
        .group_by(Track.id)
        .order_by(score.desc(), Track.created_at.desc(), Track.id.desc())
        .limit(limit)
    )
    if PERIODS[period] is not None:
        stmt = stmt.where(Track.created_at >= (now or utcnow()) - PERIODS[period])
    if guild_id is not None:
        stmt = stmt.where(Track.guild_id == guild_id)
    if user_id is not None:
        stmt = stmt.where(Track.user_id == user_id)
    rows = await s.execute(stmt)
    return [ScoredTrack(t, int(sc), int(u), int(d)) for t, sc, u, d in rows]


async def history(
    s: AsyncSession, user_id: int, *, limit: int = 10, guild_id: int | None = None
) -> list[ScoredTrack]:
    """`user_id`'s most recent tracks (any status), newest first, with their scores."""
    score, up, down = _score_columns()
    stmt = (
        select(Track, score, up, down)
        .outerjoin(Vote, Vote.track_id == Track.id)
        .where(Track.user_id == user_id)
        .group_by(Track.id)
        .order_by(Track.created_at.desc(), Track.id.desc())
        .limit(limit)
    )
    if guild_id is not None:
        stmt = stmt.where(Track.guild_id == guild_id)
    return [ScoredTrack(t, int(sc), int(u), int(d)) for t, sc, u, d in await s.execute(stmt)]


async def score_by_version(s: AsyncSession) -> dict[str, dict[str, int]]:
    """Votes per model version: {"member@version": {"tracks", "up", "down", "score"}} over finished tracks.

    A track counts for every ensemble member that made it (its `versions` JSON).
    """
    score, up, down = _score_columns()
    stmt = (
        select(Track.versions, score, up, down)
        .outerjoin(Vote, Vote.track_id == Track.id)
        .where(Track.status == TrackStatus.done)
        .group_by(Track.id)
    )
    out: dict[str, dict[str, int]] = {}
    for versions, sc, u, d in await s.execute(stmt):
        for member, version in sorted((versions or {}).items()):
            entry = out.setdefault(f"{member}@{version}", {"tracks": 0, "up": 0, "down": 0, "score": 0})
            entry["tracks"] += 1
            entry["up"] += int(u)
            entry["down"] += int(d)
            entry["score"] += int(sc)
    return out


async def _tokens_by_score(
    s: AsyncSession, *, at_least: int | None = None, at_most: int | None = None
) -> list[list[int]]:
    score = func.coalesce(func.sum(Vote.value), 0)
    stmt = (
        select(Track.id, Track.tokens)
        .join(Vote, Vote.track_id == Track.id)
        .where(Track.status == TrackStatus.done, Track.tokens.is_not(None))
        .group_by(Track.id)
        .order_by(Track.id)
    )
    if at_least is not None:
        stmt = stmt.having(score >= at_least)
    if at_most is not None:
        stmt = stmt.having(score <= at_most)
    return [list(tokens) for _id, tokens in await s.execute(stmt) if tokens]


async def liked_track_tokens(s: AsyncSession, threshold: int = 1) -> list[list[int]]:
    """Token ids of finished tracks whose net score is at least `threshold` (extra training pieces)."""
    return await _tokens_by_score(s, at_least=max(1, threshold))


async def disliked_track_tokens(s: AsyncSession, threshold: int = 1) -> list[list[int]]:
    """Token ids of finished tracks whose net score is at most `-threshold` (excluded from training)."""
    return await _tokens_by_score(s, at_most=-max(1, threshold))


# ---- retrain runs ---------------------------------------------------------------------------------------------


async def running_retrain(s: AsyncSession) -> RetrainRun | None:
    """The retrain run in progress, if any."""
    return await s.scalar(
        select(RetrainRun)
        .where(RetrainRun.status == RetrainStatus.running)
        .order_by(RetrainRun.started_at.desc())
        .limit(1)
    )


async def create_retrain_run(
    s: AsyncSession,
    *,
    user_id: int,
    user_name: str,
    params: Mapping[str, Any],
    guild_id: int | None = None,
    old_version: str | None = None,
) -> RetrainRun:
    """Record a new running retrain; RetrainAlreadyRunning if one is running already."""
    current = await running_retrain(s)
    if current is not None:
        raise RetrainAlreadyRunning(current.id, current.started_at, current.user_name)
    run = RetrainRun(
        user_id=user_id,
        user_name=user_name[:100],
        guild_id=guild_id,
        params=dict(params),
        old_version=old_version,
        status=RetrainStatus.running,
        started_at=utcnow(),
    )
    s.add(run)
    await s.flush()
    return run


async def finish_retrain_run(
    s: AsyncSession,
    run_id: int,
    *,
    status: RetrainStatus | str,
    message: str,
    metrics: Mapping[str, Any] | None = None,
    old_version: str | None = None,
    new_version: str | None = None,
) -> RetrainRun:
    """Record a retrain's outcome (promoted, kept or failed) with its metrics and versions."""
    status = RetrainStatus(status)
    if status is RetrainStatus.running:
        raise ValueError("a finished run cannot be 'running'")
    run = await s.get(RetrainRun, run_id)
    if run is None:
        raise LookupError(f"no retrain run {run_id}")
    run.status = status
    run.message = message[:4000]
    run.metrics = dict(metrics) if metrics is not None else None
    if old_version is not None:
        run.old_version = old_version
    run.new_version = new_version
    run.finished_at = utcnow()
    await s.flush()
    return run


async def fail_interrupted_retrains(s: AsyncSession) -> int:
    """Mark retrains left `running` by a previous process as failed; returns how many."""
    result = await s.execute(
        update(RetrainRun)
        .where(RetrainRun.status == RetrainStatus.running)
        .values(status=RetrainStatus.failed, message=INTERRUPTED, finished_at=utcnow())
    )
    return result.rowcount or 0


async def last_retrain(s: AsyncSession) -> RetrainRun | None:
    """The most recently started retrain run, whatever its status."""
    return await s.scalar(
        select(RetrainRun).order_by(RetrainRun.started_at.desc(), RetrainRun.id.desc()).limit(1)
    )
