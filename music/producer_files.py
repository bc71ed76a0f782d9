"""Stems and loops as files, named the way producers name them (`<title>_<bpm>bpm_<key>_<part>.<ext>`): 24-bit
WAV where it fits the upload limit, else MP3 (saying so), and the MIDI of each part.

Stems are 24-bit WAV (a DAW's own format; 2 minutes are 31.8 MB a stem). When a WAV would not fit the size
limit, the stem is written as the best MP3 that fits (`music.export.write_mp3`) and a note says why; a stem
that fits in neither is left out with a note. Every stem gets the same gain, so they still sum to the mix:
1 unless the loudest sample would clip 24 bits (the mix before mastering may peak past full scale).
"""

from __future__ import annotations

import re
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from music.arrange import Arrangement, mido_key
from music.errors import RenderError
from music.export import write_mp3
from music.render_config import SAMPLE_RATE
from music.seamless import Loop
from music.stems import Stems

WAV_HEADER_BYTES = 44
WAV_BYTES_PER_SAMPLE = 3  # 24-bit
HEADROOM = 0.999  # the loudest stem sample after the common gain, when one is needed


@dataclass
class ExportFiles:
    """Files to post (audio and MIDI, in order), the notes to show with them, and the gain every stem got."""

    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    gain: float = 1.0


def producer_name(title: str, bpm: float, tonic: int, mode: str, part: str) -> str:
    """`<title>_<bpm>bpm_<key>_<part>` in safe characters: 'hazy-cassette_84bpm_Csharpmin_keys'."""
    safe = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-") or "lofi"
    key = mido_key(tonic, mode).removesuffix("m").replace("#", "sharp") + (
        "min" if mode == "minor" else "maj"
    )
    return f"{safe}_{round(bpm)}bpm_{key}_{part}"


def wav_bytes(samples: int, channels: int = 2) -> int:
    """The size of a 24-bit WAV of `samples` frames."""
    return WAV_HEADER_BYTES + samples * channels * WAV_BYTES_PER_SAMPLE


def write_wav24(audio: np.ndarray, path: Path) -> Path:
    """(channels, n) float audio in [-1, 1) as a 24-bit PCM WAV (what the standard library writes)."""
    ints = (
        np.clip(np.round(audio.T.astype(np.float64) * 2**23), -(2**23), 2**23 - 1)
        .astype("<i4")
        .copy(order="C")
    )
    data = ints.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()  # little-endian: the low three bytes
    with wave.open(str(path), "wb") as out:
        out.setnchannels(audio.shape[0])
        out.setsampwidth(WAV_BYTES_PER_SAMPLE)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(data)
    return Path(path)


def write_stems(stems: Stems, bpm: float, out_dir: Path, size_limit: int | None = None) -> ExportFiles:
    """Each stem as audio (WAV, or MP3 past `size_limit`) and, but the ambience, its MIDI, into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    arr = stems.arrangement
    peak = max(float(np.max(np.abs(a))) for a in stems.audio.values())
    out = ExportFiles(gain=min(1.0, HEADROOM / peak) if peak > 0 else 1.0)
    if out.gain < 1.0:
        out.notes.append(f"Every stem is {20 * np.log10(out.gain):.1f} dB down so that none clips.")
    n = next(iter(stems.audio.values())).shape[1]
    wav_fits = size_limit is None or wav_bytes(n) <= size_limit
    if not wav_fits:
        out.notes.append(
            f"WAV stems of this track are {wav_bytes(n) / 1e6:.1f} MB each, over the "
            f"{size_limit / 2**20:.0f} MiB upload limit: these are MP3."
        )
    for part, audio in stems.audio.items():
        name = producer_name(stems.title, bpm, arr.tonic, arr.mode, part)
        scaled = audio * np.float32(out.gain)
        if wav_fits:
            out.files.append(write_wav24(scaled, out_dir / f"{name}.wav"))
        else:
            try:
                out.files.append(
                    write_mp3(scaled, SAMPLE_RATE, out_dir / f"{name}.mp3", size_limit=size_limit)[0]
                )
            except RenderError:
                out.notes.append(f"The {part} stem does not fit the upload limit even as MP3.")
        if part != "ambience":
            out.files.append(arr.write(out_dir / f"{name}.mid", (part,)))
    return out


def write_loop(loop: Loop, bpm: float, out_dir: Path, size_limit: int | None = None) -> ExportFiles:
    """The loop as a 24-bit WAV (no MP3: its encoder delay and padding would break the seam) and its MIDI."""
    out_dir.mkdir(parents=True, exist_ok=True)
    arr: Arrangement = loop.arrangement
    name = producer_name(loop.title, bpm, arr.tonic, arr.mode, f"loop-{arr.n_bars}bars")
    size = wav_bytes(loop.audio.shape[1])
    if size_limit is not None and size > size_limit:
        raise RenderError(
            f"the {arr.n_bars}-bar loop is {size / 1e6:.1f} MB as WAV, over the upload limit; try 4 bars"
        )
    wav = write_wav24(loop.audio, out_dir / f"{name}.wav")
    return ExportFiles([wav, arr.write(out_dir / f"{name}.mid")])
