"""Fixtures of the sound tests (arrangement, rendering, moods, export)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")


@pytest.fixture(scope="session")
def soundfont() -> Path:
    """The real General MIDI soundfont (skip where FluidSynth or the soundfont is not installed)."""
    from lofi.settings import get_settings

    sf = Path(get_settings().soundfont)
    if not sf.is_file() or shutil.which("fluidsynth") is None:
        pytest.skip("fluidsynth or the soundfont is not installed")
    return sf


@pytest.fixture(scope="session")
def ebur128():
    """An independent loudness meter: ffmpeg's ebur128 filter -> {'lufs': ..., 'true_peak_dbtp': ...}."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    from music.master import ffmpeg_ebur128

    return ffmpeg_ebur128


@pytest.fixture(scope="session")
def ffprobe():
    """ffprobe's view of a file: {'duration': seconds, tag: value...}."""
    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe is not installed")
    return ffprobe_tags


def ffprobe_tags(path: Path) -> dict:
    """The format tags and duration ffprobe reads from a file."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    fmt = json.loads(out)["format"]
    return {"duration": float(fmt["duration"]), **{k.lower(): v for k, v in fmt.get("tags", {}).items()}}
