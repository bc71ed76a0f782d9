"""The timbre distance sets level aside and hears a change of spectral shape."""

from __future__ import annotations

import numpy as np

from music.analysis.timbre import timbre_distance_db

RATE = 44100


def _note(brightness: float, seconds: float = 0.5) -> np.ndarray:
    """A decaying tone on 220 Hz with harmonics falling off by `brightness` (0: pure, 1: flat), stereo."""
    t = np.arange(int(seconds * RATE)) / RATE
    x = sum(brightness ** (k - 1) * np.sin(2 * np.pi * 220 * k * t) for k in range(1, 30))
    x = x * np.exp(-6 * t)
    return np.stack([x, x])


def test_the_same_note_louder_or_softer_is_the_same_timbre():
    note = _note(0.6)
    assert timbre_distance_db(note, 0.05 * note, RATE) < 1e-6


def test_a_brighter_stroke_is_a_different_timbre_and_more_so_the_brighter():
    soft = _note(0.3)
    assert timbre_distance_db(soft, _note(0.5), RATE) > 1.0
    assert timbre_distance_db(soft, _note(0.8), RATE) > timbre_distance_db(soft, _note(0.5), RATE)
    assert timbre_distance_db(soft, _note(0.8), RATE) == timbre_distance_db(_note(0.8), soft, RATE)
