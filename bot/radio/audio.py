"""Decoding a rendered track into the stream's PCM: 48 kHz 16-bit stereo (what Discord's voice takes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bot.radio.stream import SAMPLE_RATE, to_pcm16


def load_pcm(path: Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The audio file at `path` (MP3, WAV...) as int16 PCM of shape (n, 2) at `sample_rate`; blocking.

    pedalboard decodes and resamples (the pipeline masters at 44.1 kHz), so the stream needs no ffmpeg.
    """
    from pedalboard.io import AudioFile

    with AudioFile(str(path)).resampled_to(float(sample_rate)) as f:
        audio = f.read(f.frames)
    return to_pcm16(audio)
