"""Decoding a rendered track into the stream's PCM: 48 kHz 16-bit stereo (what Discord's voice takes), without
the MP3's encoder delay and padding, so pieces butt and crossfade where the music is, not 25 ms later."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bot.radio.stream import SAMPLE_RATE, to_pcm16

# Every MP3 decoder adds this many samples on top of the encoder's delay that the LAME tag records (measured
# here through pedalboard: a click 1,000 samples in came out at 1,000 + 576 + 529).
DECODER_DELAY = 529


def load_pcm(path: Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The audio file at `path` (MP3, WAV...) as int16 PCM of shape (n, 2) at `sample_rate`; blocking.

    pedalboard decodes and resamples (the pipeline masters at 44.1 kHz), so the stream needs no ffmpeg. An
    MP3's leading delay and trailing padding (its LAME tag) are cut: the samples are the ones encoded.
    """
    from pedalboard.io import AudioFile

    with AudioFile(str(path)) as source:
        native_rate = float(source.samplerate)
    with AudioFile(str(path)).resampled_to(float(sample_rate)) as f:
        audio = f.read(f.frames)
    head, tail = gapless_trim(Path(path))
    scale = sample_rate / native_rate
    start, end = round(head * scale), audio.shape[1] - round(tail * scale)
    return to_pcm16(audio[:, start : max(start, end)])


def gapless_trim(path: Path) -> tuple[int, int]:
    """(samples to cut at the start, at the end) of the MP3 at `path`, at its own rate, read from the LAME
    tag of its first frame; (0, 0) for a file without one (a WAV, an MP3 from another encoder)."""
    with open(path, "rb") as f:
        data = f.read(64 * 1024)
    pos = 0
    if data[:3] == b"ID3" and len(data) >= 10:  # skip the ID3v2 tag: its size is four 7-bit bytes
        pos = 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(data[6:10]))  # 7 bits each
        with open(path, "rb") as f:
            f.seek(pos)
            data = f.read(2048)
        pos = 0
    if len(data) < 4 or data[0] != 0xFF or data[1] & 0xE0 != 0xE0:
        return 0, 0
    first = data[:2048]
    xing = max(first.find(b"Xing"), first.find(b"Info"))
    if xing < 0 or len(first) < xing + 8:
        return 0, 0
    flags = int.from_bytes(first[xing + 4 : xing + 8], "big")
    # the optional fields' sizes: frame count, byte count, seek table, quality
    lame = xing + 8 + sum(size for bit, size in ((1, 4), (2, 4), (4, 100), (8, 4)) if flags & bit)
    if len(first) < lame + 24:
        return 0, 0
    packed = int.from_bytes(first[lame + 21 : lame + 24], "big")  # 12 bits delay, 12 bits padding
    delay, padding = packed >> 12, packed & 0xFFF
    return delay + DECODER_DELAY, max(padding - DECODER_DELAY, 0)
