"""One track's life: the pipeline the bot is given, and the records before and after it."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import BotSettings
from bot.errors import TrackGone, UploadTooLarge
from bot.services.common import Requester, jsonable
from db import repository as repo
from db.models import Track, TrackStatus
from music.progress import Progress
from music.request import TrackRequest

if TYPE_CHECKING:
    from serving.track import TrackResult

log = logging.getLogger(__name__)


class Pipeline(Protocol):
    """`serving.track.make_track`'s shape: request -> a `serving.track.TrackResult` (files, tokens, versions)."""

    def __call__(
        self,
        request: TrackRequest,
        client: Any,
        out_dir: Path,
        *,
        progress: Progress | None = None,
        executor: Any = None,
        size_limit: int,
    ) -> Awaitable[TrackResult]: ...


def default_pipeline(settings: BotSettings) -> Pipeline:
    """The real pipeline with the settings' soundfont and grooves (imported lazily: it pulls in the client)."""
    from serving.track import make_track

    return functools.partial(make_track, **settings.render_options())


@dataclass(frozen=True)
class TrackInfo:
    """What the bot posts about a finished track (plain values, no ORM rows)."""

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
    versions: dict[str, Any]
    loudness_lufs: float | None = None


class TrackService:
    """One track's life: record the request, run the pipeline, record the outcome (one transaction each)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        pipeline: Pipeline,
        client_provider: Callable[[], Any],
        out_dir: Path,
        executor: Any = None,
    ):
        self.sessionmaker = sessionmaker
        self.pipeline = pipeline
        self.client_provider = client_provider
        self.out_dir = Path(out_dir)
        self.executor = executor

    async def create(self, request: TrackRequest, who: Requester) -> int:
        """Record a queued track for `request`; returns its id."""
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
            )
            return track.id

    async def fail(self, track_id: int, error: BaseException | str) -> None:
        """Mark the track failed with a short reason."""
        reason = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        async with self.sessionmaker.begin() as s:
            await repo.mark_failed(s, track_id, reason)

    async def run(
        self, track_id: int, request: TrackRequest, *, size_limit: int, progress: Progress | None = None
    ) -> TrackInfo:
        """Make the track: generating -> pipeline -> done; on any error the track is marked failed and it re-raises."""
        async with self.sessionmaker.begin() as s:
            await repo.mark_generating(s, track_id)
        try:
            out = self.out_dir / f"track-{track_id:06d}"
            out.mkdir(parents=True, exist_ok=True)
            result = await self.pipeline(
                request,
                self.client_provider(),
                out,
                progress=progress,
                executor=self.executor,
                size_limit=size_limit,
            )
            files = result.files
            size = Path(files.mp3).stat().st_size
            if size > size_limit:
                raise UploadTooLarge(size, size_limit)
            versions = {str(k): str(v) for k, v in result.versions.items()}
            timings = result.timings or files.timings
            tokens = result.tokens
            async with self.sessionmaker.begin() as s:
                await repo.mark_done(
                    s,
                    track_id,
                    mood=files.mood,
                    length_s=float(files.duration_s),
                    bpm=float(files.bpm),
                    key=str(files.key),
                    title=files.title,
                    mp3_path=str(files.mp3),
                    midi_path=str(files.midi),
                    cover_path=str(files.cover) if files.cover else None,
                    versions=versions,
                    timings=jsonable(timings),
                    tokens=[int(t) for t in tokens] if tokens is not None else None,
                )
        except BaseException as exc:
            # CancelledError included: a job stopped by shutdown must not stay 'generating'.
            try:
                await asyncio.shield(self.fail(track_id, exc if str(exc) else type(exc).__name__))
            except Exception:
                log.exception("could not mark track %s failed", track_id)
            raise
        return TrackInfo(
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
            versions=versions,
            loudness_lufs=files.loudness_lufs,
        )

    async def set_message(
        self, track_id: int, *, message_id: int, channel_id: int | None, guild_id: int | None
    ) -> None:
        """Remember where the track was posted (its votes are keyed on this message)."""
        async with self.sessionmaker.begin() as s:
            await repo.set_message(
                s, track_id, message_id=message_id, channel_id=channel_id, guild_id=guild_id
            )

    async def request_of(self, track_id: int, seed: int) -> TrackRequest:
        """The request that made track `track_id`, with another seed (for a Variation)."""
        async with self.sessionmaker() as s:
            track = await s.get(Track, track_id)
            if track is None:
                raise TrackGone()
            return TrackRequest(
                length_s=track.length_requested_s,
                mood=track.mood_requested,
                seed=seed,
                bpm=track.bpm_requested,
            )

    async def midi_of(self, track_id: int) -> Path:
        """The MIDI file of a finished track; TrackGone if it is missing."""
        async with self.sessionmaker() as s:
            track = await s.get(Track, track_id)
        if (
            track is None
            or track.status is not TrackStatus.done
            or not track.midi_path
            or not Path(track.midi_path).is_file()
        ):
            raise TrackGone()
        return Path(track.midi_path)
