"""The effects chains: numpy saturation equals pedalboard's, and the half-rate music bus sounds the same."""

from __future__ import annotations

import numpy as np
import pytest
from pedalboard import Distortion, Gain, Pedalboard
from scipy import signal

from music import effects
from music.buses import MUSIC_RATE, to_output_rate
from music.render import SAMPLE_RATE


@pytest.mark.parametrize("drive_db", [0.0, 4.0, 6.0])
def test_saturation_is_pedalboards_distortion_and_gain(drive_db):
    x = (np.random.default_rng(1).standard_normal((2, SAMPLE_RATE)) * 0.4).astype(np.float32)
    reference = Pedalboard([Distortion(drive_db=drive_db), Gain(gain_db=-drive_db)])(x, SAMPLE_RATE)
    np.testing.assert_allclose(effects.saturate(x, drive_db), reference, atol=1e-6)


def _band_levels(audio: np.ndarray, rate: int, bands) -> list[float]:
    f, p = signal.welch(audio[0], rate, nperseg=4096)
    return [10 * np.log10(p[(f >= lo) & (f < hi)].mean()) for lo, hi in bands]


def test_music_bus_at_half_rate_has_the_full_rate_spectrum():
    """Chords of harmonic tones through the music chain at 44.1 kHz and at 22.05 kHz (then resampled):
    the same level in every band the LoFi low-pass leaves (within 1 dB up to 5 kHz)."""
    seconds = 6.0

    def tones(rate):
        t = np.arange(int(seconds * rate)) / rate
        x = sum(
            np.sin(2 * np.pi * f0 * k * t) / k**1.5 * (1 + 0.5 * np.sin(2 * np.pi * 0.5 * t))
            for f0 in (110.0, 220.0 * 2 ** (4 / 12), 220.0 * 2 ** (7 / 12))
            for k in range(1, 40)
            if f0 * k < rate / 2
        )
        return np.stack([x, x]).astype(np.float32) * np.float32(0.05)

    fx = effects.settings(None)
    full = effects.process_music(tones(SAMPLE_RATE), SAMPLE_RATE, fx, seed=1)
    half = effects.process_music(tones(MUSIC_RATE), MUSIC_RATE, fx, seed=1)
    half = to_output_rate(half, MUSIC_RATE, full.shape[1])
    assert half.shape == full.shape
    bands = [(50, 500), (500, 2000), (2000, 5000)]
    assert _band_levels(half, SAMPLE_RATE, bands) == pytest.approx(
        _band_levels(full, SAMPLE_RATE, bands), abs=1.0
    )
