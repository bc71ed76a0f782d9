"""/lofi-status: serving, queue, today's tracks, the last retrain and the votes per version."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.queue import JobQueue
from bot.resources import ModelStatus, WorkerStatus
from db import repository as repo

log = logging.getLogger(__name__)


@dataclass
class StatusReport:
    """What /lofi-status shows."""

    serving_ok: bool
    serving_detail: str
    members: dict[str, str] = field(default_factory=dict)  # model name -> "version state"
    queue_waiting: int = 0
    queue_running: int = 0
    tracks_today: int = 0
    last_retrain: str | None = None  # with its message (errors included): for admins
    last_retrain_public: str | None = None  # without the message
    votes_by_version: dict[str, dict[str, int]] = field(default_factory=dict)
    workers: dict[str, int] | None = None  # with a broker: each worker that answered, its tracks in progress
    workers_detail: str = ""  # why no worker could be asked (the broker down)


async def _model_status(models: ModelStatus) -> dict[str, str]:
    """Per-member versions from the model server (GetModelStatus)."""
    result = await models.model_status()
    return {str(k): _fmt_status(v) for k, v in result.items()}


def _fmt_status(value: object) -> str:
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
        models: ModelStatus | None,
        timeout_s: float = 5.0,
        workers: WorkerStatus | None = None,
    ):
        self.sessionmaker = sessionmaker
        self.models = models
        self.timeout_s = timeout_s
        self.workers = workers

    async def report(self, queue: JobQueue | None) -> StatusReport:
        """Gather the status (serving errors are reported, not raised)."""
        report = StatusReport(serving_ok=False, serving_detail="no serving client")
        if self.models is not None:
            try:
                report.members = await asyncio.wait_for(_model_status(self.models), self.timeout_s)
                report.serving_ok, report.serving_detail = True, "up"
            except TimeoutError:
                report.serving_detail = f"no answer within {self.timeout_s:.0f} s"
            except Exception as exc:
                report.serving_detail = f"{type(exc).__name__}: {exc}"[:200]
        if self.workers is not None:
            report.workers = {}
            try:
                answered = await asyncio.wait_for(self.workers.worker_status(), self.timeout_s)
                report.workers = {str(name): int(jobs) for name, jobs in answered.items()}
            except Exception as exc:  # the broker down: said in the report, never raised
                report.workers_detail = f"{type(exc).__name__}: {exc}"[:200]
        if queue is not None:
            report.queue_waiting, report.queue_running = len(queue), queue.running
        async with self.sessionmaker() as s:
            report.tracks_today = await repo.tracks_today(s)
            last = await repo.last_retrain(s)
            report.votes_by_version = await repo.score_by_version(s)
        if last is not None:
            report.last_retrain_public = (
                f"#{last.id} {last.status} ({last.started_at:%Y-%m-%d %H:%M} UTC, by {last.user_name})"
            )
            report.last_retrain = report.last_retrain_public + (f": {last.message}" if last.message else "")
        return report
