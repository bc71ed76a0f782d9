"""Fixtures of the sound tests (arrangement, rendering, moods, export)."""

from __future__ import annotations

import json
import re
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
    """An independent loudness meter: ffmpeg's ebur128 filter -> {'I': LUFS, 'peak': dBTP}."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")

    def measure(path: Path) -> dict[str, float]:
        return ffmpeg_ebur128(path)

    return measure


def ffmpeg_ebur128(path: Path) -> dict[str, float]:
    """Integrated loudness and true peak of an audio file as measured by ffmpeg's ebur128 filter."""
    proc = subprocess.run(
        [
            "ffmpeg",
            "-nostats",
            "-hide_banner",
            "-i",
            str(path),
            "-filter_complex",
            "ebur128=peak=true",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    summary = proc.stderr[proc.stderr.rindex("Summary:") :]
    loud = float(re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", summary).group(1))
    peak = float(re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary).group(1))
    return {"I": loud, "peak": peak}


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
