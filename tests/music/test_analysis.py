"""Track features of arranged MIDI (music/analysis/features.py) and distribution comparison (compare.py)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from music.analysis.compare import compare_feature, kde_overlap, percentiles
from music.analysis.features import (
    find_key,
    groove_consistency,
    key_from_name,
    melody_notes,
    pitch_class_entropy,
    read_midi,
    scale_consistency,
    track_features,
)
from tests.midi_files import make_midi

ARRANGER_CHANNELS = {"keys": 0, "bass": 1, "melody": 2, "drums": 9}
C_MAJOR = (60, 62, 64, 65, 67, 69, 71, 72)


def arranged(melody, keys=(), bars=8, key="C", names=True):
    """A file laid out like the arranger's: named tracks on its channels, a drum part, whole bars."""
    drums = [(36 if i % 2 == 0 else 38, i, 0.25, 90) for i in range(bars * 4)]
    tracks = {"keys": list(keys), "bass": [], "melody": list(melody), "drums": drums}
    data = make_midi(tracks, channels=ARRANGER_CHANNELS, key=key)
    if not names:  # the same notes without track names: the melody must come from its channel
        import io

        import mido

        mid = mido.MidiFile(file=io.BytesIO(data))
        for t in mid.tracks:
            for i in reversed(range(len(t))):
                if t[i].type == "track_name":
                    del t[i]
        buf = io.BytesIO()
        mid.save(file=buf)
        data = buf.getvalue()
    return data


def loop(phrase, times, beats):
    """`phrase` [(pitch, beat, length)] repeated `times` times, `beats` apart."""
    return [(p, k * beats + s, d, 80) for k in range(times) for p, s, d in phrase]


def test_a_scale_melody_moves_by_steps():
    up_down = list(C_MAJOR) + list(reversed(C_MAJOR))
    mel = [(p, 0.5 * i, 0.5, 80) for i, p in enumerate(up_down * 2)]  # 32 eighths = 4 bars, then 4 empty
    f = track_features(arranged(mel), key=False)
    assert 1.0 <= f.mean_interval <= 2.0
    assert f.leaps == 0.0
    assert f.scale_consistency == 1.0
    assert f.notes_per_bar == pytest.approx(32 / 8)
    assert f.empty_bars == pytest.approx(0.5)


def test_octave_jumps_are_all_leaps():
    mel = [(60 if i % 2 == 0 else 72, i, 1, 80) for i in range(16)]
    f = track_features(arranged(mel, bars=4), key=False)
    assert f.mean_interval == 12.0 and f.leaps == 1.0


def test_a_long_rest_is_a_phrase_boundary_not_an_interval():
    mel = [(60, 0, 1, 80), (62, 1, 1, 80), (90, 16, 1, 80), (91, 17, 1, 80)]  # 3 bars of rest before 90
    f = track_features(arranged(mel), key=False)
    assert f.mean_interval == pytest.approx(1.5) and f.leaps == 0.0


def test_a_repeated_phrase_has_self_similarity_one():
    phrase = [(64, 0, 1), (67, 1, 0.5), (69, 1.5, 0.5), (67, 2, 2), (62, 4, 1.5), (64, 6, 2)]
    f = track_features(arranged(loop(phrase, 4, 8)), key=False)
    assert f.phrase_similarity == pytest.approx(1.0)
    assert f.groove_consistency < 1.0  # the two bars of the phrase differ in rhythm


def test_a_random_melody_has_self_similarity_near_zero():
    rng = random.Random(3)
    mel = [(rng.randrange(48, 85), 0.25 * rng.randrange(64), 0.25, 80) for _ in range(40)]
    f = track_features(arranged(mel, bars=16), key=False)
    assert f.phrase_similarity < 0.15


def test_the_same_rhythm_every_bar_is_a_consistent_groove():
    mel = loop([(60, 0, 0.5), (62, 1.5, 0.5), (64, 3, 1)], 8, 4)
    f = track_features(arranged(mel), key=False)
    assert f.groove_consistency == 1.0
    assert groove_consistency([[0, 12], [0, 24]], 48) == pytest.approx(1 - 2 / 48)


def test_humanised_onsets_snap_to_the_grid():
    phrase = [(64, 0, 1), (67, 1, 1), (69, 2, 2), (71, 4, 2), (72, 6, 2)]
    rng = random.Random(0)
    mel = [(p, s + rng.gauss(0, 0.01), d, v) for p, s, d, v in loop(phrase, 4, 8)]  # ~7 ms at 80 bpm
    f = track_features(arranged([(p, max(s, 0), d, v) for p, s, d, v in mel]), key=False)
    assert f.phrase_similarity == pytest.approx(1.0)


def chords(progression, repeats):
    """Keys notes: one whole-bar voicing per bar of `progression`, `repeats` times."""
    out, bar = [], 0
    for _ in range(repeats):
        for voicing in progression:
            out += [(p, 4 * bar + 0.02 * i, 3.9, 60) for i, p in enumerate(voicing)]
            bar += 1
    return out


def test_a_four_bar_chord_loop_returns():
    prog = [(57, 60, 64, 67), (53, 57, 60, 64), (55, 59, 62, 65), (52, 55, 59, 62)]
    f = track_features(arranged([], chords(prog, 4), bars=16), key=False)
    assert f.chord_loops == 1.0


def test_chords_that_never_return_are_no_loop():
    prog = [(48 + i, 52 + i, 55 + i) for i in range(12)]
    f = track_features(arranged([], chords(prog, 1), bars=12), key=False)
    assert f.chord_loops == 0.0


def test_chords_voiced_differently_are_the_same_chords():
    a = [(57, 60, 64, 67), (53, 57, 60, 64), (55, 59, 62, 65), (52, 55, 59, 62)]
    b = [(60, 64, 67, 69), (57, 60, 64, 65), (59, 62, 65, 67), (55, 59, 62, 64)]  # inversions of a
    f = track_features(
        arranged([], chords(a, 1) + [(p, s + 16, d, v) for p, s, d, v in chords(b, 1)]), key=False
    )
    assert f.chord_loops == 1.0


def test_an_empty_melody_is_all_empty_bars_and_undefined_lines():
    f = track_features(arranged([], bars=4), key=False)
    assert f.notes_per_bar == 0 and f.empty_bars == 1.0 and f.n_bars == 4
    assert math.isnan(f.mean_interval) and math.isnan(f.phrase_similarity)
    assert f.to_dict()["mean_interval"] is None


def test_the_melody_is_found_by_channel_without_track_names():
    mel = [(72, i, 1, 80) for i in range(8)]
    piece = read_midi(arranged(mel, keys=[(48, 0, 4, 60)], names=False))
    assert [n.pitch for n in melody_notes(piece)] == [72] * 8


def test_the_arrangers_file_is_read_as_the_arranger_wrote_it(tmp_path):
    from music.arrange import arrange
    from music.request import load_moods
    from tests.support.scores import example_score

    score = example_score(n_bars=8, mode="minor", tonic=2)
    arr = arrange(score, load_moods()["rainy"].sound, n_bars=16, seed=4)
    path = arr.write(tmp_path / "a.mid")
    f = track_features(path)
    assert f.melody_notes == sum(n.part == "melody" for n in arr.notes)
    assert f.n_bars == 16
    assert f.key_planned == (2, "minor") and f.key_found == (2, "minor")
    assert f.chord_loops == 1.0  # example_score loops four chords
    assert f.scale_consistency == 1.0


def test_pitch_class_measures():
    assert pitch_class_entropy(list(range(60, 72))) == pytest.approx(math.log2(12))
    assert pitch_class_entropy([60, 72, 48]) == 0.0
    assert scale_consistency([60, 62, 64, 66]) == 1.0  # G major holds F#
    assert scale_consistency([60, 61, 62]) == pytest.approx(2 / 3)  # no scale holds three semitones


def test_key_names():
    assert key_from_name("Dm") == (2, "minor")
    assert key_from_name("F#m") == (6, "minor")
    assert key_from_name("Eb") == (3, "major")
    assert key_from_name("C") == (0, "major")


def test_music21_reads_a_minor_piece_as_minor(tmp_path):
    a_minor = (57, 59, 60, 62, 64, 65, 67, 69)
    mel = [(a_minor[(i * 3) % 8] + 12, i, 1, 80) for i in range(32)]
    keys = chords([(57, 60, 64), (50, 53, 57), (52, 56, 59), (57, 60, 64)], 2)
    path = tmp_path / "m.mid"
    path.write_bytes(arranged(mel, keys, key="Am"))
    assert find_key(path) == (9, "minor")


# ------------------------------------------------------------------------------------------- compare
def test_identical_distributions_overlap_fully():
    x = np.random.default_rng(0).normal(3, 1, 50)
    assert kde_overlap(x, x) == pytest.approx(1.0, abs=1e-6)
    assert kde_overlap([0.5] * 10, [0.5] * 7) == pytest.approx(1.0, abs=1e-6)


def test_disjoint_distributions_do_not_overlap():
    rng = np.random.default_rng(1)
    assert kde_overlap(rng.normal(0, 1, 40), rng.normal(20, 1, 40)) < 0.01
    assert kde_overlap([0.0] * 8, [1.0] * 8) < 0.01


def test_two_samples_of_one_distribution_overlap_mostly():
    rng = np.random.default_rng(2)
    assert 0.7 < kde_overlap(rng.normal(0, 1, 200), rng.normal(0, 1, 200)) <= 1.0


def test_undefined_values_are_left_out():
    assert kde_overlap([1.0, float("nan"), None], [1.0]) == pytest.approx(1.0, abs=1e-6)
    assert math.isnan(kde_overlap([float("nan")], [1.0]))


def test_compare_feature_reports_the_real_range_and_the_median():
    real = list(range(101))
    c = compare_feature([40, 50, 60], real)
    assert (c["real_p10"], c["real_p50"], c["real_p90"]) == (10, 50, 90)
    assert c["generated_median"] == 50 and c["inside_real_10_90"]
    assert not compare_feature([95, 99, 100], real)["inside_real_10_90"]
    assert compare_feature([None, None], real)["generated_undefined"] == 2
    assert percentiles([]) == {"p10": None, "p50": None, "p90": None}


# ------------------------------------------------------------------------------------------- MusPy
def test_the_metrics_named_after_muspy_agree_with_muspy():
    muspy = pytest.importorskip("muspy")
    rng = np.random.default_rng(5)
    bar = 48
    notes = [(int(t), int(rng.integers(55, 80))) for t in sorted(rng.choice(8 * bar - 12, 30, replace=False))]
    music = muspy.Music(
        resolution=12, tracks=[muspy.Track(notes=[muspy.Note(t, p, 6, 80) for t, p in notes])]
    )
    pitches = [p for _, p in notes]
    by_bar = [[t - b * bar for t, _ in notes if b * bar <= t < (b + 1) * bar] for b in range(8)]
    assert pitch_class_entropy(pitches) == pytest.approx(muspy.pitch_class_entropy(music))
    assert scale_consistency(pitches) == pytest.approx(muspy.scale_consistency(music))
    assert groove_consistency(by_bar, bar) == pytest.approx(muspy.groove_consistency(music, bar))
