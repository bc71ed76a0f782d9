"""Tone MP3s for the radio tests. A module of its own, importing nothing from the test fixtures: the radio's
render worker process imports it to run `write_tone`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

AMPLITUDE = 0.3  # a sine at 0.3: -13.5 dBFS RMS


def write_tone(path: Path, hz: float, seconds: float, sample_rate: int = 44_100) -> None:
    """A stereo sine MP3 with 20 ms fades (like a rendered track's edges)."""
    from pedalboard.io import AudioFile

    t = np.arange(int(seconds * sample_rate)) / sample_rate
    x = (AMPLITUDE * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    fade = int(0.02 * sample_rate)
    x[:fade] *= np.linspace(0, 1, fade, dtype=np.float32)
    x[-fade:] *= np.linspace(1, 0, fade, dtype=np.float32)
    with AudioFile(str(path), "w", sample_rate, 2, quality=192) as f:
        f.write(np.stack([x, x]))
