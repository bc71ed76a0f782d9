"""Shared fixtures: a migrated SQLite file and a fake composing engine that writes tiny files."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.resources import BotResources, ModelStatus, TrackMaker
from compose.pipeline import TrackResult
from db.engine import make_engine, make_sessionmaker, upgrade_engine
from lofi.settings import Settings
from music.progress import Progress, Stage
from music.request import TrackRequest, plan_track
from music.track import TrackFiles
from tests.support.fake_engine import ExtendsByMaking


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'db' / 'bot.sqlite3'}",
        out_dir=tmp_path / "out",
        models_dir=tmp_path / "models",
        data_dir=tmp_path / "corpus",
        cooldown_s=0,
        queue_size=4,
        workers=1,
    )


@pytest.fixture
async def sessionmaker(settings):
    engine = make_engine(settings.database_url)
    await upgrade_engine(engine)
    yield make_sessionmaker(engine)
    await engine.dispose()


class FakeComposer(ExtendsByMaking):
    """A `bot.resources.TrackMaker` (what `compose.pipeline.Composer` is): writes small files, reports
    progress, records its calls; `error` makes every call fail with it."""

    def __init__(self, mp3_bytes: int = 1000, error: Exception | None = None):
        super().__init__()
        self.mp3_bytes = mp3_bytes
        self.error = error
        self.calls: list[tuple[TrackRequest, Path]] = []

    async def make_track(
        self,
        request: TrackRequest,
        out_dir: Path,
        *,
        progress: Progress | None = None,
        size_limit: int | None = None,
    ) -> TrackResult:
        self.calls.append((request, out_dir))
        for stage in (Stage.COMPOSING, Stage.RENDERING, Stage.MASTERING):
            if progress is not None:
                progress(stage)
        if self.error is not None:
            raise self.error
        mp3, midi, cover = out_dir / "track.mp3", out_dir / "track.mid", out_dir / "cover.png"
        mp3.write_bytes(b"\xff" * self.mp3_bytes)
        midi.write_bytes(b"MThd")
        cover.write_bytes(b"\x89PNG")
        plan = plan_track(request)
        files = TrackFiles(
            mp3=mp3,
            midi=midi,
            cover=cover,
            duration_s=request.length_s,
            bpm=80.0,
            key="A minor",
            mood="rainy" if request.mood == "random" else request.mood,
            seed=request.seed,
            title="Rain on glass",
            loudness_lufs=-14.0,
            true_peak_dbtp=-1.0,
            timings={"render": 0.1},
        )
        return TrackResult(
            files=files, tokens=[5, 6, 7], versions={"lofi_member_0": 3}, plan=plan, timings={"total": 0.2}
        )


@pytest.fixture
def fake_pipeline() -> FakeComposer:
    return FakeComposer()


def resources(sessionmaker, composer: TrackMaker | None, models: ModelStatus | None = None) -> BotResources:
    """The bot's resources over fakes: `composer` makes every track (the radio's too)."""
    return BotResources(
        sessionmaker=sessionmaker,
        composer=composer,
        radio_composer=composer,
        models=models,
        radio_worker=None,
    )
