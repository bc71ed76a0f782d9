"""How different two recorded notes sound, apart from how loud they are: the spectral shape in 1/3-octave bands.

Used to tell whether a sample set plays a ghost note and an accent as different strokes (its velocity layers) or
as one sample turned up and down (distance 0).
"""

from __future__ import annotations

import numpy as np

FFT_SIZE = 1 << 15


def spectrum(x: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies, magnitudes) of a note (mono, or channels x samples), Hann-windowed."""
    mono = x.mean(axis=0) if x.ndim == 2 else x
    mag = np.abs(np.fft.rfft(mono * np.hanning(len(mono)), n=FFT_SIZE))
    return np.fft.rfftfreq(FFT_SIZE, 1 / rate), mag


def timbre_distance_db(a: np.ndarray, b: np.ndarray, rate: int) -> float:
    """RMS difference in dB of the two notes' level-normalised spectra in 1/3-octave bands 50 Hz-16 kHz (bands
    more than 60 dB under both notes' totals are left out: their noise would decide the figure)."""
    f, ma = spectrum(a, rate)
    _, mb = spectrum(b, rate)
    edges = 50 * 2 ** (np.arange(0, 28) / 3)
    edges = edges[edges < min(16000, rate / 2)]
    pairs = list(zip(edges[:-1], edges[1:], strict=True))
    ea = np.array([(ma[(f >= lo) & (f < hi)] ** 2).sum() for lo, hi in pairs]) + 1e-20
    eb = np.array([(mb[(f >= lo) & (f < hi)] ** 2).sum() for lo, hi in pairs]) + 1e-20
    da = 10 * np.log10(ea / ea.sum())
    db = 10 * np.log10(eb / eb.sum())
    keep = (da > -60) | (db > -60)
    return float(np.sqrt(np.mean((da[keep] - db[keep]) ** 2)))
