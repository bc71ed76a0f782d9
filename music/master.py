"""Mastering: loudness to -14 LUFS integrated (ITU-R BS.1770 via pyloudnorm) under a true-peak ceiling."""

from __future__ import annotations

import re
import subprocess
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyloudnorm
from pedalboard import BrickwallLimiter
from scipy import signal

from music.childenv import child_env
from music.pools import named_pool

TARGET_LUFS = -14.0
CEILING_DBTP = -1.0
MARGIN_DB = 0.5  # the master stays this far under the ceiling: MP3 encoding adds inter-sample overshoot
LIMITER_HEADROOM_DB = (
    0.3  # the sample-peak limiter aims lower still: its output can peak a little between samples
)


@lru_cache(maxsize=4)
def _k_weighting(sample_rate: int) -> np.ndarray:
    meter = pyloudnorm.Meter(sample_rate)  # its BS.1770 K-weighting filters, as second-order sections
    return np.vstack([signal.tf2sos(f.b, f.a) for f in meter._filters.values()])


PARALLEL_SAMPLES = 10 * 44100  # from about 10 s on, the channels are measured in parallel


def loudness(audio: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness (LUFS, ITU-R BS.1770-4) of (channels, samples) audio.

    pyloudnorm's K-weighting and gating, vectorised (pyloudnorm's own meter loops over blocks in Python
    and takes ~0.5 s on 2 minutes; this gives the same value in a fraction of that).
    """
    audio = np.asarray(audio, dtype=np.float32)
    hop = int(0.1 * sample_rate)
    n_hops = audio.shape[1] // hop
    if n_hops < 4:
        return -np.inf
    sos = _k_weighting(sample_rate)

    def hop_energy(channel: np.ndarray) -> np.ndarray:  # K-weighted sum of squares per 100 ms hop
        x = signal.sosfilt(sos, channel[: n_hops * hop])
        return np.square(x, dtype=np.float32).reshape(n_hops, hop).sum(axis=1, dtype=np.float64)

    if audio.shape[0] > 1 and audio.shape[1] >= PARALLEL_SAMPLES:  # sosfilt and numpy release the GIL
        # two threads of their own: their tasks never wait on the pool
        hops = np.stack(list(named_pool("loudness", 2).map(hop_energy, audio)))
    else:
        hops = np.stack([hop_energy(ch) for ch in audio])
    # mean square per 400 ms block (4 hops, 75 % overlap)
    z = (hops[:, :-3] + hops[:, 1:-2] + hops[:, 2:-1] + hops[:, 3:]) / (4 * hop)
    power = z.sum(axis=0)
    with np.errstate(divide="ignore"):
        lk = -0.691 + 10 * np.log10(power)
    keep = lk > -70.0
    if not keep.any():
        return -np.inf
    relative = -0.691 + 10 * np.log10(power[keep].mean()) - 10.0
    keep &= lk > relative
    if not keep.any():
        return -np.inf
    return float(-0.691 + 10 * np.log10(power[keep].mean()))


@lru_cache(maxsize=1)
def _interp_kernels(taps: int = 32, factor: int = 4) -> np.ndarray:
    """Windowed-sinc kernels for the factor-1 points between two samples, (factor - 1, taps)."""
    half = taps // 2
    k = np.arange(-half + 1, half + 1)
    out = []
    for p in range(1, factor):
        x = k - p / factor
        out.append(np.sinc(x) * (0.5 + 0.5 * np.cos(np.pi * x / half)))
    return np.array(out, dtype=np.float64)


def true_peak_dbtp(audio: np.ndarray, sample_rate: int = 44100) -> float:
    """True peak (dBTP): the sample peak or a 4x-oversampled (windowed-sinc) value between two samples,
    evaluated only next to samples within 1.5 dB of the peak (where an inter-sample peak can top it)."""
    if audio.size == 0:
        return -np.inf
    env = np.max(np.abs(audio), axis=0)
    peak = float(env.max())
    if peak <= 0:
        return -np.inf
    kernels = _interp_kernels()
    half = kernels.shape[1] // 2
    hot = np.flatnonzero(env >= peak * 10 ** (-1.5 / 20))
    hot = np.unique(np.concatenate([hot, hot - 1]))
    hot = hot[(hot >= half - 1) & (hot < audio.shape[1] - half)]
    best = peak
    for chunk in np.array_split(hot, max(1, len(hot) // 50000)):
        if not len(chunk):
            continue
        idx = chunk[:, None] + np.arange(-half + 1, half + 1)
        for ch in audio:
            win = ch[idx].astype(np.float64)  # (points, taps)
            best = max(best, float(np.max(np.abs(win @ kernels.T))))
    return float(20 * np.log10(best))


def master(
    audio: np.ndarray, sample_rate: int, target_lufs: float = TARGET_LUFS, ceiling_dbtp: float = CEILING_DBTP
) -> tuple[np.ndarray, float, float]:
    """Normalise to `target_lufs` and limit to `ceiling_dbtp` minus a margin; no sample ever clips.

    Args:
        audio: (2, samples) float32 mix.
        sample_rate: Hz.
        target_lufs: integrated loudness target.
        ceiling_dbtp: true-peak ceiling.
    Returns:
        (mastered audio, its integrated loudness in LUFS, its true peak in dBTP).
    """
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    current = loudness(audio, sample_rate)
    if not np.isfinite(current):
        return audio, current, true_peak_dbtp(audio, sample_rate)
    ceiling = ceiling_dbtp - MARGIN_DB
    out = audio
    for _ in range(5):  # limiting lowers the loudness a little: another pass or two lands on the target
        out = out * np.float32(10 ** ((target_lufs - current) / 20.0))
        out = BrickwallLimiter(ceiling_db=ceiling - LIMITER_HEADROOM_DB, release_ms=80.0, true_peak=False)(
            out, sample_rate
        )
        current = loudness(out, sample_rate)
        if abs(current - target_lufs) < 0.2:
            break
    tp = true_peak_dbtp(out, sample_rate)
    if tp > ceiling:
        out = out * np.float32(10 ** ((ceiling - tp) / 20.0))
        tp = ceiling
        current = loudness(out, sample_rate)
    return np.ascontiguousarray(out, dtype=np.float32), current, tp


def ffmpeg_ebur128(path: Path) -> dict[str, float]:
    """Integrated loudness (`lufs`) and true peak (`true_peak_dbtp`) of an audio file by ffmpeg's ebur128
    filter: an independent meter, used by the tests and benchmarks to check our own mastering."""
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
        env=child_env(),
    )
    summary = proc.stderr[proc.stderr.rindex("Summary:") :]
    return {
        "lufs": float(re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", summary).group(1)),
        "true_peak_dbtp": float(re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary).group(1)),
    }
