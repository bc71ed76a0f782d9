"""Harte chord labels (POP909's annotations) read onto our chord qualities."""

from __future__ import annotations

import pytest

from music.chords import QUALITIES
from music.harte import HARTE_QUALITY, HARTE_SHORTHANDS, harte_chord


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("B:maj", (11, "maj", 0, True)),
        ("E:min7", (4, "min7", 0, True)),
        ("C:maj/3", (0, "maj", 4, True)),
        ("G:7", (7, "dom7", 0, True)),
        ("D:sus4(b7)", (2, "7sus4", 0, True)),
        ("A:min7/b7", (9, "min7", 10, True)),
        ("F#:hdim7", (6, "hdim7", 0, True)),
        ("Bb:min/b3", (10, "min", 3, True)),
        ("C:maj(9)", (0, "add9", 0, True)),
        ("C:5", (0, "maj", 0, False)),
        ("N", None),
    ],
)
def test_harte_labels_map_onto_qualities(label, expected):
    assert harte_chord(label) == expected


def test_every_shorthand_that_names_a_quality_reads_exactly_as_it():
    for short, quality in HARTE_QUALITY.items():
        assert HARTE_SHORTHANDS[short] == QUALITIES[quality]
        assert harte_chord(f"D:{short}") == (2, quality, 0, True)
