"""The retrain process (`python -m training.runner`), one at a time, and its records."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import BotSettings
from bot.errors import RetrainBusy
from bot.services.common import Requester, jsonable
from db import repository as repo
from db.errors import RetrainAlreadyRunning
from db.models import RetrainStatus
from music.childenv import child_env
from serving import contract

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrainOutcome:
    """How a retrain ended."""

    run_id: int
    status: RetrainStatus
    message: str
    metrics: dict[str, Any]
    new_version: str | None


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
        self, who: Requester, *, epochs: int | None, include_votes: bool
    ) -> tuple[int, dict[str, Any]]:
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
        path = workdir / "params.json"
        path.write_text(json.dumps(data))
        return path

    async def run(
        self,
        run_id: int,
        params: dict[str, Any],
        on_progress: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
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
                # The trainer needs no credentials: no token, key or password reaches its environment,
                # whatever the variable's case (pydantic-settings reads `discord_token` too). It dies with
                # this process (`training.runner.die_with_parent`): a bot killed with -9 leaves no trainer.
                env=child_env(
                    {"PYTHONUNBUFFERED": "1", "LOFI_RETRAIN_PARENT_PID": str(os.getpid())},
                    secrets=self._secrets(),
                ),
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
            if result is None:
                self._remove_staging(proc.pid)
            if result is None and code < 0:  # killed: its last lines (TF warnings) are not the reason
                error = f"the training process was killed (signal {-code})"
            elif result is None and error is None:
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
        return RetrainOutcome(run_id, status, message, metrics, new_version)
