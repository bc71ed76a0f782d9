"""Services the cogs call: orchestration over the DB, the pipeline, the serving client and the retrain process.
Cogs hold no SQL and no protobufs; everything they need is a method here."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import RetrainBusy, TrackGone, UploadTooLarge
from db import repository as repo
from db.errors import RetrainAlreadyRunning
from db.models import RetrainStatus, Track, TrackStatus
from db.retry import retry_transaction
from lofi.settings import Settings
from music.request import TrackRequest

log = logging.getLogger(__name__)

Progress = Callable[..., Any]


class Pipeline(Protocol):
    """`serving.pipeline.make_track`'s shape: request -> files on disk, tokens, versions, timings."""

    def __call__(
        self,
        request: TrackRequest,
        client: Any,
        out_dir: Path,
        *,
        progress: Progress | None = None,
        executor: Any = None,
    ) -> Awaitable[Any]: ...


def default_pipeline() -> Pipeline:
    """The real pipeline (imported lazily: it pulls in the serving client)."""
    from serving.pipeline import make_track

    return make_track


@dataclass(frozen=True)
class Requester:
    """Who asked, and where."""

    user_id: int
    user_name: str
    guild_id: int | None = None
    channel_id: int | None = None


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


def _accepts(func: Callable, name: str) -> bool:
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


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
            kwargs: dict[str, Any] = {"progress": progress, "executor": self.executor}
            if _accepts(self.pipeline, "size_limit"):
                kwargs["size_limit"] = size_limit
            result = await self.pipeline(request, self.client_provider(), out, **kwargs)
            files = result.files
            size = Path(files.mp3).stat().st_size
            if size > size_limit:
                raise UploadTooLarge(size, size_limit)
            versions = {str(k): str(v) for k, v in (getattr(result, "versions", None) or {}).items()}
            timings = getattr(result, "timings", None) or getattr(files, "timings", None) or {}
            tokens = getattr(result, "tokens", None)
            async with self.sessionmaker.begin() as s:
                await repo.mark_done(
                    s,
                    track_id,
                    mood=files.mood,
                    length_s=float(files.duration_s),
                    bpm=float(files.bpm),
                    key=str(files.key),
                    title=getattr(files, "title", None),
                    mp3_path=str(files.mp3),
                    midi_path=str(files.midi),
                    cover_path=str(files.cover) if files.cover else None,
                    versions=versions,
                    timings=_jsonable(timings),
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
            title=getattr(files, "title", None) or f"lofi #{track_id}",
            mood=files.mood,
            length_s=float(files.duration_s),
            bpm=float(files.bpm),
            key=str(files.key),
            seed=request.seed,
            versions=versions,
            loudness_lufs=getattr(files, "loudness_lufs", None),
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


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        return json.loads(json.dumps(value, default=str))


class VoteService:
    """Votes from reactions on the bot's track messages."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]):
        self.sessionmaker = sessionmaker
        self._locks = [asyncio.Lock() for _ in range(64)]  # one user's events apply in the order they came

    async def react(self, message_id: int, user_id: int, value: int, *, added: bool) -> bool:
        """Apply a reaction: the stored vote follows the vote reactions the user still has (retried while the
        database is locked, in arrival order per user). False when the message is not one of our tracks."""

        async def apply(s) -> bool:
            track = await repo.track_by_message(s, message_id)
            if track is None:
                return False
            await repo.apply_reaction(s, track.id, user_id, value, added=added)
            return True

        what = f"vote {value:+d} {'added' if added else 'removed'} by user {user_id} on message {message_id}"
        async with self._locks[hash((message_id, user_id)) % len(self._locks)]:
            return await retry_transaction(self.sessionmaker, apply, what=what)


@dataclass(frozen=True)
class TrackLine:
    """One row of /lofi-top or /lofi-history."""

    track_id: int
    title: str
    mood: str
    length_s: float
    user_name: str
    status: str
    score: int
    up: int
    down: int
    created_at: datetime
    jump_url: str | None
    error: str | None = None


def _jump_url(t: Track) -> str | None:
    if t.message_id and t.channel_id:
        return f"https://discord.com/channels/{t.guild_id or '@me'}/{t.channel_id}/{t.message_id}"
    return None


def _line(row: repo.ScoredTrack) -> TrackLine:
    t = row.track
    return TrackLine(
        t.id,
        t.title or f"lofi #{t.id}",
        t.mood or t.mood_requested,
        t.length_s or t.length_requested_s,
        t.user_name,
        str(t.status),
        row.score,
        row.up,
        row.down,
        t.created_at,
        _jump_url(t),
        t.error,
    )


class BrowseService:
    """Best tracks and a user's history."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]):
        self.sessionmaker = sessionmaker

    async def top(self, period: str, guild_id: int | None, limit: int = 10) -> list[TrackLine]:
        """Best finished tracks of the period in this guild."""
        async with self.sessionmaker() as s:
            return [_line(r) for r in await repo.top_tracks(s, period, limit=limit, guild_id=guild_id)]

    async def history(self, user_id: int, guild_id: int | None, limit: int = 10) -> list[TrackLine]:
        """A user's latest tracks in this guild."""
        async with self.sessionmaker() as s:
            return [_line(r) for r in await repo.history(s, user_id, limit=limit, guild_id=guild_id)]


@dataclass
class StatusReport:
    """What /lofi-status shows."""

    serving_ok: bool
    serving_detail: str
    members: dict[str, str] = field(default_factory=dict)  # model name -> "version state"
    queue_waiting: int = 0
    queue_running: int = 0
    tracks_today: int = 0
    last_retrain: str | None = None
    votes_by_version: dict[str, dict[str, int]] = field(default_factory=dict)


async def _model_status(client: Any) -> dict[str, str]:
    """Per-member versions from the serving client (GetModelStatus), whatever the client calls it."""
    for name in ("model_status", "get_model_status", "status"):
        method = getattr(client, name, None)
        if method is None:
            continue
        result = method()
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, dict):
            return {str(k): _fmt_status(v) for k, v in result.items()}
        return {"models": _fmt_status(result)}
    raise RuntimeError("the serving client has no model status call")


def _fmt_status(value: Any) -> str:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return "; ".join(_fmt_status(v) for v in value)
    return str(value)


class StatusService:
    """Serving health, queue, today's tracks, retrains and votes per model version."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        client_provider: Callable[[], Any],
        timeout_s: float = 5.0,
    ):
        self.sessionmaker = sessionmaker
        self.client_provider = client_provider
        self.timeout_s = timeout_s

    async def report(self, queue: Any) -> StatusReport:
        """Gather the status (serving errors are reported, not raised)."""
        report = StatusReport(serving_ok=False, serving_detail="no serving client")
        client = self.client_provider()
        if client is not None:
            try:
                report.members = await asyncio.wait_for(_model_status(client), self.timeout_s)
                report.serving_ok, report.serving_detail = True, "up"
            except TimeoutError:
                report.serving_detail = f"no answer within {self.timeout_s:.0f} s"
            except Exception as exc:
                report.serving_detail = f"{type(exc).__name__}: {exc}"[:200]
        if queue is not None:
            report.queue_waiting, report.queue_running = len(queue), getattr(queue, "running", 0)
        async with self.sessionmaker() as s:
            report.tracks_today = await repo.tracks_today(s)
            last = await repo.last_retrain(s)
            report.votes_by_version = await repo.score_by_version(s)
        if last is not None:
            report.last_retrain = (
                f"#{last.id} {last.status} ({last.started_at:%Y-%m-%d %H:%M} UTC, "
                f"by {last.user_name})" + (f": {last.message}" if last.message else "")
            )
        return report


@dataclass(frozen=True)
class RetrainOutcome:
    """How a retrain ended."""

    run_id: int
    status: RetrainStatus
    message: str
    metrics: dict[str, Any]
    new_version: str | None


class RetrainService:
    """Runs one retrain at a time in its own process (`python -m bot.retrain_runner`) and records it."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        command: list[str] | None = None,
    ):
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.command = command or [sys.executable, "-m", "bot.retrain_runner"]
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, who: Requester, *, epochs: int | None, include_votes: bool) -> tuple[int, dict]:
        """Record a running retrain; RetrainBusy if one runs already. Returns the run id and its parameters."""
        params: dict[str, Any] = {"epochs": epochs, "include_votes": include_votes}
        try:
            async with self.sessionmaker.begin() as s:
                run = await repo.create_retrain_run(
                    s, user_id=who.user_id, user_name=who.user_name, guild_id=who.guild_id, params=params
                )
                return run.id, params
        except RetrainAlreadyRunning as exc:
            raise RetrainBusy(f"{exc.started_at:%Y-%m-%d %H:%M} UTC", exc.user_name) from None

    async def _runner_params(self, params: dict, workdir: Path) -> Path:
        # Liked tracks (net score >= threshold) become extra training pieces. Disliked ones are left out of
        # them; `training.retrain`'s `exclude` takes corpus piece *names*, which generated tracks are not.
        liked: list[list[int]] = []
        if params.get("include_votes"):
            async with self.sessionmaker() as s:
                liked = await repo.liked_track_tokens(s, self.settings.vote_threshold)
                disliked = {
                    tuple(t) for t in await repo.disliked_track_tokens(s, self.settings.vote_threshold)
                }
            liked = [t for t in liked if tuple(t) not in disliked]
            params["liked_tracks"], params["disliked_tracks"] = len(liked), len(disliked)
        data = {
            "models_dir": str(self.settings.models_dir),
            "data_paths": [str(self.settings.data_dir)],
            "cache_dir": str(self.settings.cache_dir),
            "extra_pieces": liked,
            "epochs": params.get("epochs"),
            "preset": params.get("preset") or self.settings.retrain_preset,
        }
        path = workdir / "params.json"
        path.write_text(json.dumps(data))
        return path

    async def run(
        self, run_id: int, params: dict, on_progress: Callable[[dict], Awaitable[None]] | None = None
    ) -> RetrainOutcome:
        """Run the retrain process to its end, forwarding its progress events; the outcome is stored."""
        workdir = Path(tempfile.mkdtemp(prefix="lofi-retrain-"))
        result: dict[str, Any] | None = None
        error: str | None = None
        tail: list[str] = []
        try:
            params_file = await self._runner_params(params, workdir)
            self.process = proc = await asyncio.create_subprocess_exec(
                *self.command,
                "--params-json",
                str(params_file),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                limit=2**22,
                # The trainer needs no Discord credentials: keep the token out of its environment.
                env={
                    **{k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"},
                    "PYTHONUNBUFFERED": "1",
                },
            )
            assert proc.stdout is not None
            async for raw in proc.stdout:
                line = raw.decode(errors="replace").strip()
                if not line:
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    tail = [*tail[-19:], line]  # library noise (TF logs): kept for the failure message
                    continue
                if not isinstance(event, dict):
                    continue
                if event.get("event") == "result":
                    result = event
                elif event.get("event") == "error":
                    error = str(event.get("error"))
                elif on_progress is not None:
                    try:
                        await on_progress(event)
                    except Exception:
                        log.exception("retrain progress callback failed")
            code = await proc.wait()
            if result is None and error is None:
                error = f"the training process exited with code {code}" + (f": {tail[-1]}" if tail else "")
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            if self.process is not None and self.process.returncode is None:
                self.process.kill()
            if not isinstance(exc, Exception):
                await asyncio.shield(self._finish(run_id, None, error, params))
                raise
        finally:
            self.process = None
            shutil.rmtree(workdir, ignore_errors=True)
        return await self._finish(run_id, result, error, params)

    async def _finish(
        self, run_id: int, result: dict | None, error: str | None, params: dict | None = None
    ) -> RetrainOutcome:
        if result is not None and error is None:
            status = RetrainStatus.promoted if result.get("promoted") else RetrainStatus.kept
            message = str(result.get("reason") or status.value)
            metrics = {"old": result.get("old_metrics"), "new": result.get("new_metrics")}
            new_version = result.get("new_version")
            new_version = str(new_version) if new_version is not None else None
        else:
            status, message, metrics, new_version = RetrainStatus.failed, error or "unknown failure", {}, None
        async with self.sessionmaker.begin() as s:
            run = await repo.finish_retrain_run(
                s, run_id, status=status, message=message, metrics=_jsonable(metrics), new_version=new_version
            )
            if params is not None:
                run.params = _jsonable(dict(params))
            if result is not None and result.get("old_version") is not None:
                run.old_version = str(result["old_version"])
        log.info("retrain %s finished: %s (%s)", run_id, status, message)
        return RetrainOutcome(run_id, status, message, metrics, new_version)
