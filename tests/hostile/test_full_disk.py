"""Issue 24 #3: a full output disk. A track that fills it fails as "the disk is full" and leaves no files
(so the next track has the room back), OUT_DIR is proven writable at start-up, and out/ is trimmed.

The full disk is a real one: a tmpfs of a few KiB (mounting needs root; the tests that need it are skipped
where mounting is refused)."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bot.errors import DiskFull
from bot.services import Requester, TrackService
from bot.services.outdir import prune
from db.models import Track, TrackStatus
from lofi.cli import bot as cli_bot
from lofi.settings import Settings
from music.errors import OutOfSpace
from music.export import write_mp3
from music.render_config import SAMPLE_RATE, RenderConfig
from music.request import TrackRequest, plan_track
from music.track import render_track
from tests.bot.conftest import FakeComposer, sessionmaker, settings  # noqa: F401
from tests.music.conftest import soundfont  # noqa: F401
from tests.support.scores import example_score


@pytest.fixture
def tiny_disk(tmp_path):
    """A folder on a 48 KiB file system: room for a MIDI file, not for an MP3."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_an_mp3_that_fills_the_disk_says_so_and_is_removed(tiny_disk):
    noise = (np.random.default_rng(0).standard_normal((2, SAMPLE_RATE * 10)) * 0.1).astype(np.float32)
    with pytest.raises(OutOfSpace, match="the disk is full"):
        write_mp3(noise, SAMPLE_RATE, tiny_disk / "t.mp3")
    assert list(tiny_disk.iterdir()) == []


def test_a_track_that_fills_the_disk_leaves_no_files(tiny_disk, soundfont):  # noqa: F811
    plan = plan_track(TrackRequest(length_s=8, mood="rainy", seed=11, bpm=90))
    with pytest.raises(OutOfSpace, match="the disk is full"):
        render_track(
            example_score(plan.n_bars, plan.bpm, plan.mode),
            plan,
            tiny_disk,
            render=RenderConfig(soundfont=soundfont),
        )
    assert list(tiny_disk.iterdir()) == []  # no partial MP3, no MIDI, no cover


class FillsTheDisk(FakeComposer):
    """Writes a MIDI and half an MP3, then finds the disk full (what the real render does on one)."""

    async def make_track(self, request, out_dir, **kwargs):
        (out_dir / "t.mid").write_bytes(b"MThd")
        (out_dir / "t.mp3").write_bytes(b"\xff" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")


async def test_a_track_failed_by_a_full_disk_says_so_and_leaves_no_folder(sessionmaker, settings):  # noqa: F811
    service = TrackService(sessionmaker, FillsTheDisk(), settings.out_dir)
    request = TrackRequest(length_s=15, mood="chill", seed=1)
    track_id = await service.create(request, Requester(user_id=1, user_name="u"))
    with pytest.raises(DiskFull, match="disk is full"):
        await service.run(track_id, request, size_limit=10_000_000)
    assert list(Path(settings.out_dir).iterdir()) == []
    async with sessionmaker() as s:
        assert (await s.get(Track, track_id)).status is TrackStatus.failed


def test_out_is_trimmed_oldest_track_first(tmp_path):
    out = tmp_path / "out"
    for i, age in ((1, 300), (2, 200), (3, 100)):
        folder = out / f"track-{i:06d}"
        folder.mkdir(parents=True)
        (folder / "t.mp3").write_bytes(b"x" * 1000)
        os.utime(folder, (1e9 - age, 1e9 - age))
    (out / "demo").mkdir()  # not a track folder: never trimmed
    assert prune(out, 2500) == 1000
    assert sorted(p.name for p in out.iterdir()) == ["demo", "track-000002", "track-000003"]
    assert prune(out, 0) == 0 and len(list(out.iterdir())) == 3  # 0: unbounded


def test_an_out_dir_that_cannot_be_written_is_refused_at_start(tmp_path, monkeypatch, capfd):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    started = []

    async def serve(*args, **kwargs):
        started.append(args)

    monkeypatch.setattr(cli_bot, "serve", serve)
    settings = Settings(  # noqa: F811
        _env_file=None,
        discord_token="a-token-for-the-fake",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}",
        out_dir=blocker / "out",
        broker_url=None,
    )
    assert cli_bot.run_bot(settings, sync=False, embedded=False) == 2 and started == []
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"lofi bot: OUT_DIR {blocker / 'out'} is not writable"), err
