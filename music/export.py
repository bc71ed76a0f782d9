"""Export: MP3 (ffmpeg's LAME, VBR) with ID3 tags under a size limit, and a cover image (Pillow)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from music.childenv import child_env
from music.errors import OutOfSpace, RenderError

BITRATES_KBPS = (320, 256, 192, 160, 128, 96, 64)
HEADROOM_BYTES = 64 * 1024  # ID3 tags, the Xing header and encoder padding
VBR_QUALITY = 2  # LAME -V2: transparent for most listeners, ~170-210 kbps on average (2 minutes ~3 MB)
VBR_WORST_KBPS = 260  # what -V2 averages at most on dense material: above this budget, CBR is chosen


# Discord's upload limit for servers without boosts; the settings' UPLOAD_LIMIT_BYTES defaults to it.
UPLOAD_LIMIT_BYTES = 10 * 1024 * 1024


def ffmpeg_binary() -> str:
    """Path of the ffmpeg executable; RenderError when it is not installed."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise RenderError("ffmpeg is not installed (apt-get install ffmpeg)")
    return exe


def choose_bitrate(duration_s: float, size_limit: int = UPLOAD_LIMIT_BYTES) -> int:
    """The highest bitrate (kbps) whose MP3 of `duration_s` stays under `size_limit` bytes; RenderError if none."""
    budget = size_limit - HEADROOM_BYTES
    for kbps in BITRATES_KBPS:
        # CBR size plus one frame per ~26 ms of slack
        if kbps * 1000 / 8 * duration_s * 1.01 <= budget:
            return kbps
    raise RenderError(
        f"a {duration_s:.0f} s track does not fit in {size_limit} bytes even at {BITRATES_KBPS[-1]} kbps"
    )


def to_int16(audio: np.ndarray) -> np.ndarray:
    """(channels, samples) float audio as interleaved int16 (clipped: mastering keeps it under full scale)."""
    return (np.clip(audio.T, -1.0, 32767 / 32768) * 32768.0).astype("<i2")


def choose_encoding(duration_s: float, size_limit: int = UPLOAD_LIMIT_BYTES) -> tuple[str, int]:
    """("vbr", LAME quality) when a -V2 file of `duration_s` surely fits `size_limit`, else ("cbr", kbps)."""
    if VBR_WORST_KBPS * 1000 / 8 * duration_s * 1.01 <= size_limit - HEADROOM_BYTES:
        return "vbr", VBR_QUALITY
    return "cbr", choose_bitrate(duration_s, size_limit)


def _encode(
    pcm: bytes,
    sample_rate: int,
    channels: int,
    path: Path,
    args: list[str],
    tags: dict,
    timeout_s: float = 300.0,
) -> None:
    exe = ffmpeg_binary()
    meta = [x for k, v in tags.items() for x in ("-metadata", f"{k}={v}")]
    cmd = [
        exe, "-v", "error", "-y", "-f", "s16le", "-ar", str(sample_rate), "-ac", str(channels), "-i", "pipe:0",
        "-c:a", "libmp3lame", *args, "-compression_level", "7",  # LAME -q 7: fast, fine for LoFi
        "-id3v2_version", "3", *meta, str(path),
    ]  # fmt: skip
    try:
        # env: ffmpeg gets no secrets (the Discord token stays in this process).
        proc = subprocess.run(
            cmd, input=pcm, capture_output=True, timeout=timeout_s, check=False, env=child_env()
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RenderError(f"MP3 encoding failed: {exc}") from exc
    err = proc.stderr.decode(errors="replace").strip()[-500:]
    if "No space left on device" in err:  # ffmpeg exits 0 with a truncated file on a full disk
        Path(path).unlink(missing_ok=True)
        raise OutOfSpace(f"the disk is full: cannot write {Path(path).name} in {Path(path).parent}")
    if proc.returncode != 0 or not Path(path).is_file():
        raise RenderError(
            f"MP3 encoding failed (ffmpeg exit {proc.returncode}; is it built with libmp3lame?): {err}"
        )


def write_mp3(
    audio: np.ndarray,
    sample_rate: int,
    path: Path,
    *,
    tags: dict[str, str] | None = None,
    size_limit: int = UPLOAD_LIMIT_BYTES,
    timeout_s: float = 300.0,
) -> tuple[Path, int]:
    """Encode `audio` as an MP3 with ID3 tags: LAME VBR -V2 when it fits `size_limit`, else the best CBR
    bitrate that does (a long track under a small limit).

    The PCM goes to ffmpeg through a pipe (no temporary WAV files).

    Args:
        audio: (2, samples) float32 in [-1, 1].
        sample_rate: Hz.
        path: the .mp3 to write.
        tags: ID3 tags (title, artist, genre, comment...).
        size_limit: maximum file size in bytes.
        timeout_s: kill ffmpeg after this long.
    Returns:
        (path, average bitrate in kbps).
    Raises:
        RenderError: the track cannot fit `size_limit`, or ffmpeg failed.
    """
    duration = audio.shape[1] / sample_rate
    mode, value = choose_encoding(duration, size_limit)
    pcm = to_int16(audio).tobytes()
    args = ["-q:a", str(value)] if mode == "vbr" else ["-b:a", f"{value}k"]
    _encode(pcm, sample_rate, audio.shape[0], Path(path), args, tags or {}, timeout_s)
    size = Path(path).stat().st_size
    if size > size_limit and mode == "vbr":  # denser than VBR_WORST_KBPS: the best CBR that fits
        _encode(
            pcm,
            sample_rate,
            audio.shape[0],
            Path(path),
            ["-b:a", f"{choose_bitrate(duration, size_limit)}k"],
            tags or {},
        )
        size = Path(path).stat().st_size
    if size > size_limit:  # cannot happen with CBR and the headroom above; guard the upload anyway
        raise RenderError(f"MP3 {path} is {size} bytes, over the {size_limit} limit")
    return Path(path), int(round(size * 8 / 1000 / max(duration, 1e-9)))


def _hex(color: str) -> tuple[int, int, int]:
    color = color.lstrip("#")
    return tuple(int(color[i : i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def write_cover(
    notes,
    total_ticks: int,
    path: Path,
    *,
    title: str,
    subtitle: str,
    colors: list[str] | None = None,
    size: int = 512,
) -> Path:
    """A piano-roll cover: the arrangement's pitched notes coloured by part over the mood's palette, and the title.

    Args:
        notes: objects with part, pitch, start, duration, velocity (e.g. `ArrangedNote`).
        total_ticks: length of the track in the notes' ticks.
        path: the .png to write.
        title: large text.
        subtitle: small text (mood, key, bpm).
        colors: [background, notes, accent] as '#rrggbb'.
        size: edge in pixels.
    Returns:
        `path`.
    """
    bg, fg, accent = [_hex(c) for c in (colors or ["#1d2b3a", "#4a6d8c", "#9cc3e6"])[:3]]
    img = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(img, "RGBA")
    # a soft vertical gradient toward the accent
    for y in range(size):
        a = int(50 * y / size)
        draw.line([(0, y), (size, y)], fill=(*accent, a))
    pitched = [n for n in notes if n.part != "drums"]
    roll_top, roll_bottom = int(size * 0.12), int(size * 0.72)
    if pitched and total_ticks > 0:
        lo = min(n.pitch for n in pitched) - 2
        hi = max(n.pitch for n in pitched) + 2
        row = (roll_bottom - roll_top) / max(hi - lo, 1)
        shade = {"bass": 0.55, "keys": 0.85, "melody": 1.0}
        for n in pitched:
            x0 = 16 + (size - 32) * n.start / total_ticks
            x1 = 16 + (size - 32) * (n.start + n.duration) / total_ticks
            y = roll_bottom - (n.pitch - lo) * row
            base = accent if n.part == "melody" else fg
            k = shade.get(n.part, 0.8)
            color = (*[int(c * k + bg[i] * (1 - k)) for i, c in enumerate(base)], 90 + n.velocity)
            draw.rectangle([x0, y - max(row * 0.8, 2), max(x1, x0 + 2), y], fill=color)
    draw.rectangle([0, int(size * 0.76), size, size], fill=(*bg, 200))
    draw.text((24, int(size * 0.79)), title[:40], fill=accent, font=_font(size // 14))
    draw.text((24, int(size * 0.89)), subtitle[:60], fill=(*fg, 255), font=_font(size // 26))
    img.save(path, "PNG", optimize=False)
    return Path(path)
