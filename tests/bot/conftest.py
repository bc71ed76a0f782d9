"""Shared fixtures: a migrated SQLite file and a fake pipeline that writes tiny files."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from db.engine import make_engine, make_sessionmaker, upgrade_engine
from lofi.settings import Settings


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


class FakePipeline:
    """Stands in for serving.track.make_track: writes small files and reports progress."""

    def __init__(self, mp3_bytes: int = 1000, error: Exception | None = None):
        self.mp3_bytes = mp3_bytes
        self.error = error
        self.calls: list = []

    async def __call__(
        self, request, client, out_dir: Path, *, progress=None, executor=None, size_limit=None
    ):
        self.calls.append((request, client, out_dir))
        for stage in ("composing", "rendering", "mastering"):
            if progress is not None:
                progress(stage)
        if self.error is not None:
            raise self.error
        mp3, midi, cover = out_dir / "track.mp3", out_dir / "track.mid", out_dir / "cover.png"
        mp3.write_bytes(b"\xff" * self.mp3_bytes)
        midi.write_bytes(b"MThd")
        cover.write_bytes(b"\x89PNG")
        files = SimpleNamespace(
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
        return SimpleNamespace(
            files=files, tokens=[5, 6, 7], versions={"lofi_member_0": 3}, timings={"total": 0.2}
        )


@pytest.fixture
def fake_pipeline():
    return FakePipeline()
