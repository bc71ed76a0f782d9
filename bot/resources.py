"""What the bot is given: the long-lived resources its entry point opened (and will close), as one typed value.

The entry (`lofi.cli.bot`) opens the database, the model-server backend, the composing engine and the
executors in an `AsyncExitStack` and hands them to `LofiBot` as a `BotResources`; tests hand fakes the same
way. The bot builds its services over them and closes none of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from music.progress import Progress
from music.request import TrackRequest

if TYPE_CHECKING:
    from compose.pipeline import TrackResult
    from music.producer_files import ExportFiles


class TrackMaker(Protocol):
    """What the bot asks of the composing engine (`compose.pipeline.Composer` is one)."""

    async def make_track(
        self,
        request: TrackRequest,
        out_dir: Path,
        *,
        progress: Progress | None = None,
        size_limit: int | None = None,
    ) -> TrackResult:
        """A new track for `request`, its files in `out_dir`."""
        ...

    async def extend_track(
        self,
        request: TrackRequest,
        out_dir: Path,
        *,
        prefix: Sequence[int],
        base: TrackRequest,
        progress: Progress | None = None,
        size_limit: int | None = None,
    ) -> TrackResult:
        """A longer version of the track `base` asked for and `prefix` holds, `request.length_s` long."""
        ...

    async def render_stems(
        self, tokens: Sequence[int], facts: TrackRequest, out_dir: Path, *, size_limit: int | None = None
    ) -> ExportFiles:
        """The stems and per-part MIDI of the finished track `tokens` and `facts` hold, into `out_dir`."""
        ...

    async def render_loop(
        self,
        tokens: Sequence[int],
        facts: TrackRequest,
        bars: int,
        out_dir: Path,
        *,
        size_limit: int | None = None,
    ) -> ExportFiles:
        """A `bars`-bar seamless loop (WAV and MIDI) of that finished track's main section, into `out_dir`."""
        ...


class ModelStatus(Protocol):
    """What `/lofi-status` asks of the model server (`serving.client.ServingClient`, `serving.local.LocalBackend`)."""

    async def model_status(self) -> Mapping[str, object]:
        """Per member, its versions and their states."""
        ...


class WorkerStatus(Protocol):
    """What `/lofi-status` asks of the job queue's workers (`jobs.remote.BrokerTrackMaker`)."""

    async def worker_status(self) -> Mapping[str, int]:
        """Each worker that answered, with the number of tracks it is making."""
        ...


@dataclass(frozen=True)
class BotResources:
    """The resources the bot uses and its entry point owns.

    Args:
        sessionmaker: sessions over the migrated database.
        composer: makes `/lofi` tracks, variations and extensions; None when no model-server client could be
            made (jobs then fail with "not reachable", `/lofi-status` says so).
        radio_composer: the same engine (one generation loop, one batch) rendering in the radio's worker
            process (see `radio_worker`).
        models: the model server's status; None like `composer`.
        radio_worker: where the radio renders and decodes its pieces (a low-priority process, so that the
            numpy/pedalboard stages cannot hold the GIL the audio thread needs every 20 ms).
        workers: with a broker, the workers that make the tracks (None: the bot makes them itself).
    """

    sessionmaker: async_sessionmaker[AsyncSession]
    composer: TrackMaker | None
    radio_composer: TrackMaker | None
    models: ModelStatus | None
    radio_worker: Executor | None = None
    workers: WorkerStatus | None = None
