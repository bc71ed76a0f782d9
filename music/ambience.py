"""Ambience synthesised in code (no samples): vinyl crackle, tape hiss and rain."""

from __future__ import annotations

import numpy as np
from scipy import signal

BED_SECONDS = 7.3  # noise beds are generated once at this length and tiled (stationary noise hides the seam)


def _bed(rng: np.random.Generator, n: int, sample_rate: int, sos: np.ndarray) -> np.ndarray:
    """Filtered stereo noise of `n` samples, tiled from a short bed (different offsets per channel)."""
    m = min(n, int(BED_SECONDS * sample_rate))
    bed = signal.sosfilt(sos, rng.standard_normal((2, m), dtype=np.float32), axis=1).astype(np.float32)
    bed /= max(float(np.sqrt(np.mean(bed**2))), 1e-9)
    reps = -(-n // m) + 1
    out = np.empty((2, n), dtype=np.float32)
    for ch in range(2):
        off = int(rng.integers(0, m))
        out[ch] = np.tile(np.roll(bed[ch], off), reps)[:n]
    return out


def crackle(n: int, sample_rate: int, rng: np.random.Generator, density: float = 6.0) -> np.ndarray:
    """Vinyl crackle: sparse random clicks of heavy-tailed size (unit RMS-ish), high-passed, plus dull pops."""
    out = np.zeros((2, n), dtype=np.float32)
    count = int(rng.poisson(density * n / sample_rate))
    if count == 0 or n < 512:
        return out
    # every click is the same short band-passed impulse response, scaled: place them, no full-length filtering
    sos = signal.butter(2, [1200, 9000], btype="bandpass", fs=sample_rate, output="sos")
    impulse = np.zeros(96, dtype=np.float32)
    impulse[0] = 1.0
    click = signal.sosfilt(sos, impulse).astype(np.float32)
    pos = rng.integers(0, n - len(click), count)
    sign = rng.choice([-1.0, 1.0], count).astype(np.float32)
    amp = (rng.pareto(2.5, count) + 0.2).astype(np.float32) * sign  # heavy-tailed: mostly ticks, a few pops
    pan = rng.random(count).astype(np.float32)
    idx = pos[:, None] + np.arange(len(click))
    np.add.at(out[0], idx, (amp * np.where(pan < 0.7, 1.0, 0.3).astype(np.float32))[:, None] * click)
    np.add.at(out[1], idx, (amp * np.where(pan > 0.3, 1.0, 0.3).astype(np.float32))[:, None] * click)
    # rarer, duller pops
    k = np.arange(200, dtype=np.float32)
    kernel = np.exp(-k / 40.0) * np.sin(k / 6.0)
    pops = rng.integers(0, n - 200, max(1, count // 40))
    idx = pops[:, None] + np.arange(200)
    np.add.at(out[0], idx, rng.uniform(0.3, 0.9, len(pops)).astype(np.float32)[:, None] * kernel)
    np.add.at(out[1], idx, rng.uniform(0.3, 0.9, len(pops)).astype(np.float32)[:, None] * kernel)
    return out * 4.0


def hiss(n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Tape hiss: noise tilted to the highs (unit RMS)."""
    sos = signal.butter(2, 3000, btype="highpass", fs=sample_rate, output="sos")
    return _bed(rng, n, sample_rate, sos)


def rain(n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Rain: a band of noise with slow swells, plus droplets (short pinging decays), about unit RMS."""
    sos = signal.butter(2, [500, 7000], btype="bandpass", fs=sample_rate, output="sos")
    out = _bed(rng, n, sample_rate, sos)
    t = np.arange(n, dtype=np.float32) / sample_rate
    out *= (0.8 + 0.2 * np.sin(2 * np.pi * 0.05 * t + float(rng.random()) * 6.28)).astype(np.float32)
    count = rng.poisson(14.0 * n / sample_rate)
    length = int(0.012 * sample_rate)
    k = np.arange(length, dtype=np.float32) / sample_rate
    for p in rng.integers(0, max(n - length, 1), count):
        f = float(rng.uniform(1800, 5000))
        drop = np.exp(-k * 500.0) * np.sin(2 * np.pi * f * k) * float(rng.uniform(0.5, 2.5))
        ch = int(rng.integers(0, 2))
        out[ch, p : p + length] += drop[: n - p]
        out[1 - ch, p : p + length] += 0.4 * drop[: n - p]
    return out


def ambience(
    n: int, sample_rate: int, levels: dict | None, reference_rms: float, seed: int = 0
) -> np.ndarray:
    """The mood's ambience bed, scaled relative to the music's RMS.

    Args:
        n: samples.
        sample_rate: Hz.
        levels: the mood's `[ambience]` table: crackle, hiss, rain (0..1 each; 1 = loud).
        reference_rms: RMS of the music it sits under.
        seed: RNG seed.
    Returns:
        (2, n) float32.
    """
    levels = levels or {}
    rng = np.random.default_rng(seed + 101)
    out = np.zeros((2, n), dtype=np.float32)
    # level 1.0 sits this many dB under the music's RMS
    for name, make, under_db in (("crackle", crackle, 20.0), ("hiss", hiss, 30.0), ("rain", rain, 13.0)):
        level = float(levels.get(name, 0.0))
        if level <= 0:
            continue
        gain = reference_rms * level * 10 ** (-under_db / 20.0)
        out += make(n, sample_rate, rng) * np.float32(gain)
    return out
