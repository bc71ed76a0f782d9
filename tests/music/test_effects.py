"""The effects chains: numpy saturation equals pedalboard's, and the half-rate music bus sounds the same."""

from __future__ import annotations

import numpy as np
import pytest
from pedalboard import Distortion, Gain, Pedalboard
from scipy import signal

from music import effects
from music.buses import MUSIC_RATE, drums_wet, music_wet, to_output_rate
from music.render_config import SAMPLE_RATE


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
    full = music_wet(tones(SAMPLE_RATE), SAMPLE_RATE, fx, seed=1)
    half = music_wet(tones(MUSIC_RATE), MUSIC_RATE, fx, seed=1)
    half = to_output_rate(half, MUSIC_RATE, full.shape[1])
    assert half.shape == full.shape
    bands = [(50, 500), (500, 2000), (2000, 5000)]
    assert _band_levels(half, SAMPLE_RATE, bands) == pytest.approx(
        _band_levels(full, SAMPLE_RATE, bands), abs=1.0
    )


@pytest.mark.parametrize("room_size", [0.4, 0.85])
def test_music_chain_in_two_halves_is_the_whole_chain(room_size):
    """The second half starts `settle_seconds` early: by the middle, what earlier input left in the reverb and
    compressor is 120 dB down, so the halves put together are the chain run in one piece."""
    fx = effects.settings({"reverb_size": room_size, "reverb_wet": 0.28})
    rng = np.random.default_rng(5)
    t = np.arange(40 * MUSIC_RATE) / MUSIC_RATE
    gate = np.repeat(rng.random(80) < 0.5, t.size // 80 + 1)[: t.size]  # notes that stop and start
    x = (np.sin(2 * np.pi * 196 * t) * gate * 0.3 + rng.standard_normal(t.size) * 0.01).astype(np.float32)
    dry = np.stack([x, np.roll(x, 300)])
    wobbled = effects.tape_wobble(dry, MUSIC_RATE, fx["wow_ms"], fx["flutter_ms"], 2)
    whole = effects.run_chain(effects.music_chain(fx), wobbled, MUSIC_RATE)  # in one piece
    np.testing.assert_allclose(music_wet(dry, MUSIC_RATE, fx, seed=2), whole, atol=1e-5)
    assert 2.0 < effects.settle_seconds(room_size) < 40 / 4  # the halves were really run apart


def test_drum_chain_in_two_halves_is_the_whole_chain():
    fx = effects.settings(None)
    rng = np.random.default_rng(6)
    x = np.zeros((2, 20 * SAMPLE_RATE), np.float32)
    for start in rng.integers(0, x.shape[1] - 4000, 200):  # decaying noise bursts: hits
        x[:, start : start + 4000] += rng.standard_normal(4000).astype(np.float32) * np.exp(
            -np.arange(4000) / 600
        )
    whole = effects.run_chain(effects.drum_chain(fx), x, SAMPLE_RATE)  # in one piece
    np.testing.assert_allclose(drums_wet(x, SAMPLE_RATE, fx), whole, atol=1e-5)
    assert effects.settle_seconds(effects.DRUM_ROOM) < 20 / 4
