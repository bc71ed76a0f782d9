"""The retrain process (`python -m training.runner`), one at a time, and its records."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import BotSettings
from bot.errors import AttachmentRefused, RetrainBusy
from bot.services.common import Requester, jsonable
from db import repository as repo
from db.errors import RetrainAlreadyRunning
from db.models import RetrainStatus
from music.childenv import child_env
from music.parse import MUSIC_SUFFIXES
from serving import contract

log = logging.getLogger(__name__)

# What `lofi train` reads: one music file or a zip of them (the training process applies the same rules).
UPLOAD_SUFFIXES = (".zip", *MUSIC_SUFFIXES)
DOWNLOAD_TIMEOUT_S = 300.0
CHUNK_BYTES = 64 * 1024


def _upload_report(event: dict[str, Any]) -> dict[str, Any]:
    """The training process's report on the attachment, kept to its expected shape (it is stored)."""
    reasons = event.get("reasons")
    if not isinstance(reasons, list):
        reasons = []
    return {
        "kind": str(event.get("kind") or "file"),
        "read": int(event.get("read") or 0),
        "skipped": int(event.get("skipped") or 0),
        "reasons": [[str(r[0]), str(r[1])] for r in reasons[:5] if isinstance(r, list) and len(r) == 2],
    }


@dataclass(frozen=True)
class MusicUpload:
    """A music attachment to train on, checked (kind and declared size) but not yet downloaded."""

    filename: str
    size: int
    url: str

    @property
    def disk_name(self) -> str:
        """A file name safe to create (the user's name may hold anything); its suffix is kept."""
        stem, suffix = os.path.splitext(self.filename)
        return (re.sub(r"[^A-Za-z0-9_-]", "_", stem)[:80] or "music") + suffix.lower()


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB"


def check_upload(filename: str, size: int, url: str, *, guild_limit: int, max_bytes: int) -> MusicUpload:
    """The attachment as a MusicUpload; AttachmentRefused (before any download) if it is of the wrong kind or
    weighs more than this guild's upload limit or the configured maximum."""
    if not filename.lower().endswith(UPLOAD_SUFFIXES):
        raise AttachmentRefused(
            f"`{filename}` is not music I can train on: attach a zip or one MIDI/MusicXML file "
            f"({', '.join(UPLOAD_SUFFIXES)})."
        )
    limit = min(guild_limit, max_bytes)
    if size > limit:
        raise AttachmentRefused(
            f"`{filename}` weighs {_size(size)}, over the {_size(limit)} I accept here; nothing was downloaded."
        )
    return MusicUpload(filename, size, url)


@dataclass(frozen=True)
class RetrainOutcome:
    """How a retrain ended."""

    run_id: int
    status: RetrainStatus
    message: str
    metrics: dict[str, Any]
    new_version: str | None
    upload: dict[str, Any] | None = None  # what the training process read of the attachment, and skipped


class RetrainService:
    """Runs one retrain at a time in its own process (`python -m training.runner`) and records it."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: BotSettings,
        command: list[str] | None = None,
    ):
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.command = command or [sys.executable, "-m", "training.runner"]
        self.process: asyncio.subprocess.Process | None = None

    def _secrets(self) -> list[str]:
        """The secret values in our settings: a variable holding one is kept from the child too."""
        token = self.settings.discord_token
        value = token.get_secret_value() if token is not None else ""
        return [value] if value.strip() else []

    def terminate(self) -> None:
        """Ask a running retrain process to end (the bot is shutting down)."""
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()

    async def start(
        self, who: Requester, *, epochs: int | None, include_votes: bool, upload: MusicUpload | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Record a running retrain; RetrainBusy if one runs already. Returns the run id and its parameters."""
        params: dict[str, Any] = {"epochs": epochs, "include_votes": include_votes}
        if (
            upload is not None
        ):  # the URL is kept out of the record: Discord's CDN links are signed, and expire
            params["upload"] = {"filename": upload.filename, "size": upload.size}
        try:
            async with self.sessionmaker.begin() as s:
                run = await repo.create_retrain_run(
                    s, user_id=who.user_id, user_name=who.user_name, guild_id=who.guild_id, params=params
                )
                return run.id, params
        except RetrainAlreadyRunning as exc:
            raise RetrainBusy(f"{exc.started_at:%Y-%m-%d %H:%M} UTC", exc.user_name) from None

    async def _download(self, upload: MusicUpload, workdir: Path) -> Path:
        """Stream the attachment into `workdir`, never past its declared size (already checked against the
        limits): a CDN answer longer than declared is cut off and refused."""
        path = workdir / "music" / upload.disk_name
        path.parent.mkdir()
        received = 0
        timeout = aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT_S)
        try:
            # One short-lived session per retrain (admins only, one at a time): nothing to share it with.
            async with aiohttp.ClientSession(timeout=timeout) as session, session.get(upload.url) as resp:
                resp.raise_for_status()
                with path.open("wb") as out:  # 64 KiB writes: too short to matter to the event loop
                    async for chunk in resp.content.iter_chunked(CHUNK_BYTES):
                        received += len(chunk)
                        if received > upload.size:
                            raise AttachmentRefused(
                                f"`{upload.filename}` is larger than Discord said ({upload.size} bytes)"
                            )
                        out.write(chunk)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise AttachmentRefused(
                f"could not download `{upload.filename}` ({type(exc).__name__}: {exc})"
            ) from exc
        log.info("downloaded %s (%d bytes) to %s", upload.filename, received, path)
        return path

    async def _runner_params(self, params: dict[str, Any], workdir: Path) -> Path:
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
            "cache_dir": str(self.settings.corpus_cache_dir),
            "extra_pieces": liked,
            "epochs": params.get("epochs"),
            "preset": params.get("preset") or self.settings.retrain_preset,
        }
        music = workdir / "music"
        if music.is_dir():  # the downloaded attachment: the runner reads it by `lofi train`'s rules
            (path,) = music.iterdir()
            data["upload"] = {"path": str(path), "name": params["upload"]["filename"]}
        path = workdir / "params.json"
        path.write_text(json.dumps(data))
        return path

    async def run(
        self,
        run_id: int,
        params: dict[str, Any],
        on_progress: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
        upload: MusicUpload | None = None,
    ) -> RetrainOutcome:
        """Run the retrain process to its end, forwarding its progress events; the outcome is stored. An
        `upload` is downloaded into this run's folder first; the folder goes when the run ends."""
        # Under the cache folder, not /tmp: a tmpfs /tmp would hold the downloaded attachment in memory.
        root = Path(self.settings.cache_dir) / "retrain"
        root.mkdir(parents=True, exist_ok=True)
        # The database lets one retrain run at a time (start() recorded this one), so any folder here is a
        # leftover of a bot killed mid-run, with its downloaded attachment: gone before a new one comes.
        for leftover in root.iterdir():
            shutil.rmtree(leftover, ignore_errors=True)
        workdir = Path(tempfile.mkdtemp(prefix="lofi-retrain-", dir=root))
        result: dict[str, Any] | None = None
        error: str | None = None
        try:
            if upload is not None:
                await self._download(upload, workdir)
            params_file = await self._runner_params(params, workdir)
            self.process = proc = await asyncio.create_subprocess_exec(
                *self.command,
                "--params-json",
                str(params_file),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                limit=2**22,
                # The trainer needs no credentials: no token, key or password reaches its environment,
                # whatever the variable's case (pydantic-settings reads `discord_token` too). It dies with
                # this process (`training.runner.die_with_parent`): a bot killed with -9 leaves no trainer.
                env=child_env(
                    {"PYTHONUNBUFFERED": "1", "LOFI_RETRAIN_PARENT_PID": str(os.getpid())},
                    secrets=self._secrets(),
                ),
            )
            result, error, tail = await self._read_events(proc, params, on_progress)
            code = await proc.wait()
            if result is None:
                self._remove_staging(proc.pid)
            if result is None and code < 0:  # killed: its last lines (TF warnings) are not the reason
                error = f"the training process was killed (signal {-code})"
            elif result is None and error is None:
                error = f"the training process exited with code {code}" + (f": {tail[-1]}" if tail else "")
        except BaseException as exc:
            error = str(exc) if isinstance(exc, AttachmentRefused) else f"{type(exc).__name__}: {exc}"
            if self.process is not None and self.process.returncode is None:
                self.process.kill()
            if not isinstance(exc, Exception):
                await asyncio.shield(self._finish(run_id, None, error, params))
                raise
        finally:
            self.process = None
            shutil.rmtree(workdir, ignore_errors=True)
        return await self._finish(run_id, result, error, params)

    async def _read_events(
        self,
        proc: asyncio.subprocess.Process,
        params: dict[str, Any],
        on_progress: Callable[[dict[str, Any]], Awaitable[None]] | None,
    ) -> tuple[dict[str, Any] | None, str | None, list[str]]:
        """(the result event, the error, the last non-JSON lines) of the process's output; progress events
        go to `on_progress`, the report on an attachment into `params` (so the run's record keeps it)."""
        assert proc.stdout is not None
        result: dict[str, Any] | None = None
        error: str | None = None
        tail: list[str] = []
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
            if event.get("event") == "upload":
                params["upload"] = {**params.get("upload", {}), **_upload_report(event)}
            if event.get("event") == "result":
                result = event
            elif event.get("event") == "error":
                error = str(event.get("error"))
            elif on_progress is not None:
                try:
                    await on_progress(event)
                except Exception:
                    log.exception("retrain progress callback failed")
        return result, error, tail

    def _remove_staging(self, pid: int) -> None:
        """Remove the export staging folders process `pid` left (it died mid-export, unable to itself)."""
        models = Path(self.settings.models_dir)
        prefix = contract.staging_prefix(pid)
        for parent in (models, *models.glob(f"{contract.MODEL_PREFIX}_*"), models / contract.PUBLISHED_DIR):
            for leftover in parent.glob(f"{prefix}*"):
                log.warning("removing %s, left by the retrain process %d", leftover, pid)
                if leftover.is_dir() and not leftover.is_symlink():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink(missing_ok=True)

    async def _finish(
        self,
        run_id: int,
        result: dict[str, Any] | None,
        error: str | None,
        params: dict[str, Any] | None = None,
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
                s, run_id, status=status, message=message, metrics=jsonable(metrics), new_version=new_version
            )
            if params is not None:
                run.params = jsonable(dict(params))
            if result is not None and result.get("old_version") is not None:
                run.old_version = str(result["old_version"])
        log.info("retrain %s finished: %s (%s)", run_id, status, message)
        upload = (params or {}).get("upload")
        return RetrainOutcome(run_id, status, message, metrics, new_version, upload)
