"""Long-form measures of arranged MIDI (music/analysis/longform.py): repetition, contrast, key, windows."""

from __future__ import annotations

import math
import random

from music.analysis.features import read_midi, track_features
from music.analysis.longform import (
    bar_contents,
    consecutive_contrasts,
    exact_repetition,
    fixed_sections,
    in_key,
    part_bars,
    piece_window,
    section_contrast,
)
from tests.midi_files import make_midi

CHANNELS = {"keys": 0, "bass": 1, "melody": 2, "drums": 9}
PHRASE = [(60, 0.0, 1.0), (64, 1.0, 0.5), (67, 1.5, 0.5), (65, 2.0, 2.0)]  # one bar


def four_bars(offset_beats: float, shift: int = 0):
    """A 4-bar melody (the phrase climbing a step a bar) with a C chord under each bar, at `offset_beats`."""
    mel, keys = [], []
    for bar, step in enumerate((0, 2, 4, 5)):
        at = offset_beats + 4 * bar
        mel += [(p + step + shift, at + s, d, 80) for p, s, d in PHRASE]
        keys += [(p + shift, at, 4.0, 60) for p in (48, 52, 55)]
    return mel, keys


def piece(blocks: list[int]):
    """A file of 4-bar blocks, each the melody above transposed by that many semitones; drums throughout."""
    mel, keys = [], []
    for i, shift in enumerate(blocks):
        m, k = four_bars(16 * i, shift)
        mel, keys = mel + m, keys + k
    drums = [(36, b, 0.25, 90) for b in range(16 * len(blocks))]
    return read_midi(make_midi({"keys": keys, "melody": mel, "drums": drums}, channels=CHANNELS, key="C"))


def test_four_bars_repeated_exactly_repeat_at_4_8_and_16():
    bars = bar_contents(piece([0, 0, 0, 0, 0]))
    assert len(bars) == 20
    assert exact_repetition(bars, 4) == 1.0
    assert exact_repetition(bars, 8) == 1.0
    assert exact_repetition(bars, 16) == 1.0


def test_new_material_does_not_count_as_repetition():
    bars = bar_contents(piece([0, 0, 3]))
    # Bars 4-7 copy bars 0-3; bars 8-11 are transposed, so they copy nothing.
    assert exact_repetition(bars, 4) == 0.5
    assert exact_repetition(bars, 4, only=range(8, 12)) == 0.0
    assert math.isnan(exact_repetition(bars, 16))  # no bar has one 16 back


def test_one_changed_note_breaks_the_copy():
    p = piece([0, 0])
    bars = bar_contents(p)
    changed = list(bars)
    changed[5] = frozenset(
        (part, on, pitch + 1 if part == "melody" and on == 0 else pitch) for part, on, pitch in bars[5]
    )
    assert exact_repetition(changed, 4) == 0.75


def test_drums_do_not_make_bars_copies_or_non_empty():
    drums = [(36, b, 0.25, 90) for b in range(32)]
    p = read_midi(make_midi({"melody": [], "drums": drums}, channels=CHANNELS, key="C"))
    bars = bar_contents(p)
    assert all(not b for b in bars)
    assert math.isnan(exact_repetition(bars, 4))


def test_identical_sections_have_no_contrast():
    bars = bar_contents(piece([0, 0]))
    assert section_contrast(bars[0:4], bars[4:8]) == 0.0


def test_a_transposed_section_contrasts_and_silence_contrasts_most():
    bars = bar_contents(piece([0, 7]))
    moved = section_contrast(bars[0:4], bars[4:8])
    assert 0.2 < moved < 1.0
    silent = [frozenset()] * 4
    assert section_contrast(bars[0:4], silent) > moved


def test_random_sections_contrast_more_than_a_reprise():
    rng = random.Random(3)
    mel = [(rng.randrange(55, 80), 0.5 * i, 0.5, 80) for i in range(64) if rng.random() < 0.7]
    p = read_midi(make_midi({"melody": mel}, channels=CHANNELS, key="C"))
    bars = bar_contents(p)
    reprise = bar_contents(piece([0, 0]))
    assert (
        consecutive_contrasts(bars, [(0, 4), (4, 8)])[0] > consecutive_contrasts(reprise, [(0, 4), (4, 8)])[0]
    )


def test_fixed_sections_cover_the_bars_and_drop_a_short_tail():
    assert fixed_sections(20, 8) == [(0, 8), (8, 16), (16, 20)]
    assert fixed_sections(19, 8) == [(0, 8), (8, 16)]
    assert fixed_sections(5, 8) == [(0, 5)]


def test_in_key_counts_notes_in_the_scale():
    assert in_key([60, 62, 64, 65], (0, "major")) == 1.0
    assert in_key([60, 61], (0, "major")) == 0.5
    assert in_key([63, 68, 70], (0, "minor")) == 1.0
    assert math.isnan(in_key([], (0, "major")))


def test_a_window_is_its_bars_from_tick_zero():
    p = piece([0, 5])
    w = piece_window(p, 4, 8)
    assert w.n_bars == 4
    assert min(n.start for n in w.notes) == 0
    assert bar_contents(w) == bar_contents(p)[4:8]
    assert track_features(w, key=False).notes_per_bar == 4.0


def test_the_harmony_repeats_where_the_melody_does_not():
    # The same C chord under every bar, a melody moving up a step each bar: the harmony returns every bar.
    bars = bar_contents(piece([0, 0]))
    harmony = part_bars(bars, "keys", pitch_classes=True)
    assert exact_repetition(harmony, 1) == 1.0
    assert exact_repetition(part_bars(bars, "melody"), 1) == 0.0
    assert harmony[0] == frozenset({0, 4, 7})
