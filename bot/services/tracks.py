"""One track's life: record the request, ask the composing engine, record the outcome; and a finished
track's facts (`TrackInfo`), read the same way whoever posts it."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import BadLength, DiskFull, TrackGone, UploadTooLarge
from bot.resources import TrackMaker
from bot.services.common import Requester, Viewer, jsonable
from bot.services.outdir import disk_full, prune, track_dir
from db import repository as repo
from db.models import Track, TrackStatus
from music.progress import Progress
from music.request import TrackRequest
from serving.errors import ServingUnavailable

if TYPE_CHECKING:
    from compose.pipeline import TrackResult

log = logging.getLogger(__name__)

EXTRA_LENGTHS = (("+30 s", 30.0), ("+1 min", 60.0), ("+2 min", 120.0), ("+3 min", 180.0))


@dataclass(frozen=True)
class TrackInfo:
    """A finished track's facts, as recorded: what the embed, the radio and the buttons show (no ORM rows)."""

    track_id: int
    mp3: Path
    midi: Path
    cover: Path | None
    title: str
    mood: str
    length_s: float
    bpm: float
    key: str
    seed: int
    versions: dict[str, str]

    @classmethod
    def of_row(cls, t: Track) -> TrackInfo:
        """The facts of a finished track row; TrackGone unless it is done and its files are still there."""
        if (
            t.status is not TrackStatus.done
            or not t.mp3_path
            or not t.midi_path
            or not Path(t.mp3_path).is_file()
        ):
            raise TrackGone()
        return cls(
            track_id=t.id,
            mp3=Path(t.mp3_path),
            midi=Path(t.midi_path),
            cover=Path(t.cover_path) if t.cover_path else None,
            title=t.title or f"lofi #{t.id}",
            mood=t.mood or t.mood_requested,
            length_s=float(t.length_s or t.length_requested_s),
            bpm=float(t.bpm or 0),
            key=t.key or "?",
            seed=int(t.seed),
            versions={str(k): str(v) for k, v in (t.versions or {}).items()},
        )

    @classmethod
    def of_result(cls, track_id: int, request: TrackRequest, result: TrackResult) -> TrackInfo:
        """The facts of a track the engine just made for `request`."""
        files = result.files
        return cls(
            track_id=track_id,
            mp3=Path(files.mp3),
            midi=Path(files.midi),
            cover=Path(files.cover) if files.cover else None,
            title=files.title or f"lofi #{track_id}",
            mood=files.mood,
            length_s=float(files.duration_s),
            bpm=float(files.bpm),
            key=str(files.key),
            seed=request.seed,
            versions={str(k): str(v) for k, v in result.versions.items()},
        )


@dataclass(frozen=True)
class Extension:
    """What the Extend button continues: the posted track's tokens and the request that made it."""

    prefix: tuple[int, ...]
    base: TrackRequest


def extra_lengths(length_s: float, max_length_s: float) -> list[tuple[str, float]]:
    """The extra lengths (label, seconds) that keep a track of `length_s` within `max_length_s`."""
    return [(label, extra) for label, extra in EXTRA_LENGTHS if length_s + extra <= max_length_s]


class TrackService:
    """One track's life: record the request, run the engine, record the outcome (one transaction each).

    `maker` is None when the bot has no model server (jobs then fail with ServingUnavailable). A failed
    track's files are removed; before each track `out_dir` is trimmed to `out_max_bytes` (0: unbounded)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        maker: TrackMaker | None,
        out_dir: Path,
        out_max_bytes: int = 0,
    ):
        self.sessionmaker = sessionmaker
        self.maker = maker
        self.out_dir = Path(out_dir)
        self.out_max_bytes = out_max_bytes

    async def create(
        self, request: TrackRequest, who: Requester, *, reply: tuple[int, str] | None = None
    ) -> int:
        """Record a queued track for `request`; returns its id. `reply` (application id, interaction token):
        where to tell the user if a restart interrupts the track (kept only until it is done or failed)."""
        async with self.sessionmaker.begin() as s:
            track = await repo.create_track(
                s,
                user_id=who.user_id,
                user_name=who.user_name,
                guild_id=who.guild_id,
                channel_id=who.channel_id,
                mood_requested=request.mood,
                length_requested_s=request.length_s,
                seed=request.seed,
                bpm_requested=request.bpm,
                key_requested=request.key,
                radio=request.radio,
                reply=reply,
            )
            return track.id

    async def discard(self, track_id: int) -> None:
        """Forget a track nobody saw (a radio piece retried during an outage: one failed row says it)."""
        async with self.sessionmaker.begin() as s:
            await repo.delete_track(s, track_id)
        shutil.rmtree(track_dir(self.out_dir, track_id), ignore_errors=True)

    async def fail_interrupted(
        self, *, shard_count: int | None = None, shard_ids: Sequence[int] | None = None
    ) -> list[repo.Interrupted]:
        """Fail the tracks a previous process of these shards left unfinished and remove their partial files;
        returns them with the interactions to tell (see `repo.fail_interrupted`)."""
        async with self.sessionmaker.begin() as s:
            interrupted = await repo.fail_interrupted(s, shard_count=shard_count, shard_ids=shard_ids)
        for track in interrupted:
            shutil.rmtree(track_dir(self.out_dir, track.track_id), ignore_errors=True)
        return interrupted

    async def fail(self, track_id: int, error: BaseException | str) -> None:
        """Mark the track failed with a short reason."""
        reason = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        async with self.sessionmaker.begin() as s:
            await repo.mark_failed(s, track_id, reason)

    async def run(
        self,
        track_id: int,
        request: TrackRequest,
        *,
        size_limit: int,
        progress: Progress | None = None,
        extension: Extension | None = None,
    ) -> TrackInfo:
        """Make the track (a continuation of `extension` when given): generating -> engine -> done; on any
        error the track is marked failed and it re-raises."""
        async with self.sessionmaker.begin() as s:
            await repo.mark_generating(s, track_id)
        try:
            result = await self._make(track_id, request, size_limit, progress, extension)
            info = TrackInfo.of_result(track_id, request, result)
            size = info.mp3.stat().st_size
            if size > size_limit:
                raise UploadTooLarge(size, size_limit)
            async with self.sessionmaker.begin() as s:
                await self._record(s, info, result)
        except BaseException as exc:
            # CancelledError included: a job stopped by shutdown must not stay 'generating'.
            try:
                await asyncio.shield(self.fail(track_id, exc if str(exc) else type(exc).__name__))
            except Exception:
                log.exception("could not mark track %s failed", track_id)
            shutil.rmtree(track_dir(self.out_dir, track_id), ignore_errors=True)  # a failed track: no files
            if disk_full(exc):
                raise DiskFull() from exc
            raise
        return info

    async def _make(
        self,
        track_id: int,
        request: TrackRequest,
        size_limit: int,
        progress: Progress | None,
        extension: Extension | None,
    ) -> TrackResult:
        if self.maker is None:
            raise ServingUnavailable("no serving client")
        out = track_dir(self.out_dir, track_id)
        await asyncio.to_thread(prune, self.out_dir, self.out_max_bytes)  # room first, then the folder
        out.mkdir(parents=True, exist_ok=True)
        if extension is None:
            return await self.maker.make_track(request, out, progress=progress, size_limit=size_limit)
        return await self.maker.extend_track(
            request,
            out,
            prefix=extension.prefix,
            base=extension.base,
            progress=progress,
            size_limit=size_limit,
        )

    @staticmethod
    async def _record(s: AsyncSession, info: TrackInfo, result: TrackResult) -> None:
        await repo.mark_done(
            s,
            info.track_id,
            mood=info.mood,
            length_s=info.length_s,
            bpm=info.bpm,
            key=info.key,
            title=info.title,
            mp3_path=str(info.mp3),
            midi_path=str(info.midi),
            cover_path=str(info.cover) if info.cover else None,
            versions=info.versions,
            timings=jsonable(result.timings or result.files.timings),
            tokens=[int(t) for t in result.tokens],
        )

    async def info(self, track_id: int) -> TrackInfo:
        """A finished track's facts; TrackGone if it is unknown, unfinished or its files are missing."""
        async with self.sessionmaker() as s:
            track = await s.get(Track, track_id)
        if track is None:
            raise TrackGone()
        return TrackInfo.of_row(track)

    async def set_message(
        self, track_id: int, *, message_id: int, channel_id: int | None, guild_id: int | None
    ) -> None:
        """Remember where the track was posted (its votes are keyed on this message)."""
        async with self.sessionmaker.begin() as s:
            await repo.set_message(
                s, track_id, message_id=message_id, channel_id=channel_id, guild_id=guild_id
            )

    async def _track_for(self, track_id: int, viewer: Viewer) -> Track:
        """Track `track_id` if `viewer` may use it; TrackGone otherwise (never telling whether it exists in
        another guild)."""
        async with self.sessionmaker() as s:
            track = await s.get(Track, track_id)
        if track is None or not viewer.may_use(track.guild_id, track.user_id, track.channel_id):
            raise TrackGone()
        return track

    async def request_of(self, track_id: int, seed: int, viewer: Viewer) -> TrackRequest:
        """The request that made track `track_id`, with another seed (for a Variation); TrackGone unless
        `viewer` may use it. A Variation of a radio piece is a track, with its intro and ending."""
        track = await self._track_for(track_id, viewer)
        return TrackRequest(
            length_s=track.length_requested_s,
            mood=track.mood_requested,
            seed=seed,
            bpm=track.bpm_requested,
            key=track.key_requested,
        )

    async def extension_of(
        self, track_id: int, extra_s: float, max_length_s: float, viewer: Viewer
    ) -> tuple[TrackRequest, Extension]:
        """The request for track `track_id` made `extra_s` longer, and what it continues; TrackGone when the
        track has no tokens or is not `viewer`'s to use, BadLength past `max_length_s`."""
        track = await self._track_for(track_id, viewer)
        if track.status is not TrackStatus.done or not track.tokens:
            raise TrackGone()
        base = TrackRequest(
            length_s=track.length_requested_s,
            mood=track.mood_requested,
            seed=track.seed,
            bpm=track.bpm_requested,
            key=track.key_requested,
            radio=track.radio,  # the written bars replay as they were made
        )
        length = float(track.length_s or track.length_requested_s) + extra_s
        if length > max_length_s:
            raise BadLength(
                f"That would make it {length:.0f} s long; the longest track is {max_length_s:.0f} s."
            )
        request = replace(base, length_s=length)  # everything else as asked, the key too
        return request, Extension(tuple(int(t) for t in track.tokens), base)

    async def midi_of(self, track_id: int, viewer: Viewer) -> Path:
        """The MIDI file of a finished track; TrackGone if it is missing or not `viewer`'s to use."""
        track = await self._track_for(track_id, viewer)
        if track.status is not TrackStatus.done or not track.midi_path or not Path(track.midi_path).is_file():
            raise TrackGone()
        return Path(track.midi_path)
