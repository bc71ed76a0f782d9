"""The LoFi arrangement, checked through an independent MIDI reader (mido)."""

from __future__ import annotations

import random

import mido
import pytest

from music.arrange import (
    DRUM_CHANNEL,
    KEYS_LOW,
    MIDI_TPB,
    arrange,
    choose_voicing,
    chord_tones,
    home_tones,
    plan_sections,
)
from music.drums import FALLBACK, GrooveLibrary, default_groove_dir, load_library, shape_pattern
from music.request import TrackRequest, load_moods, plan_track
from music.score import Chord, Note, Score, TimeSignature, Voicing
from music.track import fit_to_plan
from tests.support.scores import example_score

CHILL = load_moods()["chill"].sound


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    score = example_score(12, 84.0, "minor", tonic=2)
    arr = arrange(score, CHILL, seed=5)
    path = arr.write(tmp_path_factory.mktemp("arr") / "a.mid")
    return score, arr, mido.MidiFile(path)


def test_programs_and_drum_channel(written):
    _, _, mid = written
    programs = {m.channel: m.program for t in mid.tracks for m in t if m.type == "program_change"}
    inst = CHILL["instruments"]
    assert programs[0] == inst["keys"] == 4  # Electric Piano 1 (Rhodes)
    assert programs[1] == inst["bass"]
    assert programs[2] == inst["melody"]
    drum_track = next(t for t in mid.tracks if t.name == "drums")
    notes = [m for m in drum_track if m.type == "note_on"]
    assert notes and all(m.channel == DRUM_CHANNEL for m in notes)
    assert all(m.channel != DRUM_CHANNEL for t in mid.tracks if t.name != "drums" for m in t if not m.is_meta)


def test_tempo_key_and_time_signature_meta(written):
    score, _, mid = written
    metas = [m for m in mid.tracks[0] if m.is_meta]
    tempo = next(m for m in metas if m.type == "set_tempo")
    assert mido.tempo2bpm(tempo.tempo) == pytest.approx(score.bpm, abs=0.01)
    assert next(m for m in metas if m.type == "key_signature").key == "Dm"
    ts = next(m for m in metas if m.type == "time_signature")
    assert (ts.numerator, ts.denominator) == (4, 4)


def test_exact_number_of_bars(written):
    score, _, mid = written
    assert mid.length == pytest.approx(
        12 * 4 * 60 / score.bpm, abs=1e-3
    )  # MIDI tempo is whole microseconds per beat
    assert all(sum(m.time for m in t) <= 12 * 4 * MIDI_TPB for t in mid.tracks)


@pytest.mark.parametrize("n_bars", [5, 21])
def test_source_bars_looped_or_cut_to_the_plan(n_bars, tmp_path):
    arr = arrange(example_score(8, 80.0), CHILL, n_bars=n_bars, seed=1)
    mid = mido.MidiFile(arr.write(tmp_path / "x.mid"))
    assert arr.n_bars == n_bars
    assert mid.length == pytest.approx(
        n_bars * 4 * 60 / 80.0, abs=1e-3
    )  # MIDI tempo is whole microseconds per beat
    assert max(n.start for n in arr.notes if n.part == "melody") > (n_bars - 4) * 4 * MIDI_TPB


def test_keys_stay_above_c3_with_sevenths():
    arr = arrange(example_score(16, 80.0), CHILL, seed=2)
    keys = [n for n in arr.notes if n.part == "keys"]
    assert keys and min(n.pitch for n in keys) >= KEYS_LOW
    bass = [n for n in arr.notes if n.part == "bass"]
    assert bass and max(n.pitch for n in bass) < KEYS_LOW + 3


def test_voicing_has_third_and_seventh_and_moves_smoothly():
    rng = random.Random(0)
    prev, moves = None, []
    for root, quality in [(2, "min7"), (7, "dom7"), (0, "maj7"), (9, "min7")] * 3:
        v = choose_voicing(Chord(0, 48, root, quality), prev, 62, "9", rng)
        pcs = {(p - root) % 12 for p in v}
        third = 3 if quality.startswith("min") else 4
        seventh = 11 if quality == "maj7" else 10
        assert {third, seventh} <= pcs
        assert min(v) >= KEYS_LOW
        if prev:
            moves.append(sum(abs(a - b) for a, b in zip(sorted(prev), sorted(v), strict=False)))
        prev = v
    assert sum(moves) / len(moves) <= 8  # nearest inversion: a few semitones in all, not leaps


def test_the_tonic_chord_is_voiced_add9_with_its_root_so_the_key_is_heard():
    for tonic in range(12):
        for quality, third in (("maj7", 4), ("min9", 3), ("maj", 4), ("min", 3)):
            chord = Chord(0, 48, tonic, quality)
            v = choose_voicing(chord, None, 62, "9", random.Random(0), tones=home_tones(chord, tonic))
            assert {(p - tonic) % 12 for p in v} == {0, third, 7, 2}  # 1-3-5-9: no 7th, no rootless 9th
    assert home_tones(Chord(0, 48, 7, "maj7"), 0) is None  # only the tonic itself


def test_voicing_hint_puts_the_degree_on_top():
    for top, interval in [(3, 4), (7, 11), (9, 2), (5, 7)]:
        v = choose_voicing(Chord(0, 48, 0, "maj7", 0, Voicing("close", top)), None, 64, "9")
        assert (v[-1] - 0) % 12 == interval


def test_lofi_extensions():
    assert chord_tones("min", "9") == (0, 3, 7, 10, 14)
    assert chord_tones("maj", "7") == (0, 4, 7, 11)
    assert 14 not in chord_tones("dim7", "9")


def test_no_chord_means_no_harmony():
    score = Score([Note(72, 0, 12)], [Chord(0, 192, 0, "N")], [TimeSignature(0)], 80.0, "major", 0, 4)
    arr = arrange(score, CHILL, seed=0)
    assert not [n for n in arr.notes if n.part in ("keys", "bass")]
    assert [n for n in arr.notes if n.part == "melody"]


def test_sections_intro_breakdown_outro_without_drums():
    n = 40
    sections = plan_sections(n)
    names = [s[0] for s in sections]
    assert names[0] == "intro" and "breakdown" in names and names[-1] == "outro"
    assert sections[0][1] == 0 and sections[-1][2] == n
    assert all(a[2] == b[1] for a, b in zip(sections, sections[1:], strict=False))
    arr = arrange(example_score(n, 80.0), CHILL, seed=3)
    bar = 4 * MIDI_TPB
    drum_bars = {(n.start + MIDI_TPB // 8) // bar for n in arr.notes if n.part == "drums"}  # pushed downbeats
    for name, lo, hi in sections:
        if name in ("intro", "breakdown"):
            assert not drum_bars & set(range(lo, hi)), name
        if name == "main":
            assert set(range(lo, hi)) <= drum_bars
    assert n - 1 not in drum_bars  # the drums are out by the last bar


def test_same_seed_same_arrangement():
    a = arrange(example_score(8, 80.0), CHILL, seed=9)
    b = arrange(example_score(8, 80.0), CHILL, seed=9)
    c = arrange(example_score(8, 80.0), CHILL, seed=10)
    assert a.notes == b.notes and a.notes != c.notes


def test_humanised_timing_and_velocity():
    arr = arrange(example_score(8, 80.0), CHILL, seed=4)
    keys = [n for n in arr.notes if n.part == "keys"]
    assert len({n.start % 40 for n in keys}) > 3  # off the 16th grid
    assert len({n.velocity for n in keys}) > 3


def test_groove_library_keeps_micro_timing_and_ghost_notes():
    if not (default_groove_dir() / "info.csv").exists():
        pytest.skip("the Groove MIDI corpus is not in data/corpus/groove")
    lib = load_library()
    assert len(lib.beats) > 50 and lib.fills
    assert {p.style for p in lib.beats} <= {"hiphop", "soul", "jazz", "funk"}
    hits = [h for p in lib.beats[:40] for h in p.hits]
    off_grid = [t for t, _, _ in hits if abs(t * 4 - round(t * 4)) > 0.05]
    assert len(off_grid) > len(hits) * 0.3  # real drummers are not on the grid
    assert any(v < 40 for _, n, v in hits if n == 38)  # ghost snares


def test_fit_to_plan_moves_a_c_score_to_the_plan_tonic():
    plan = plan_track(TrackRequest(length_s=20, mood="rainy", seed=1))
    fitted = fit_to_plan(example_score(4, 80.0), plan)
    assert fitted.tonic == plan.tonic and fitted.bpm == plan.bpm
    again = fit_to_plan(fitted, plan)
    assert [n.pitch for n in again.melody] == [n.pitch for n in fitted.melody]


def test_groove_library_is_extracted_once_and_cached(tmp_path):
    groove = default_groove_dir()
    if not (groove / "info.csv").exists():
        pytest.skip("the Groove MIDI corpus is not in data/corpus/groove")
    load_library.cache_clear()
    lib = load_library(groove, tmp_path)
    cache = next(tmp_path.glob("groove_library_v*.json"))
    load_library.cache_clear()
    again = load_library(groove, tmp_path)
    assert cache.exists() and len(again.beats) == len(lib.beats) and again.beats[0] == lib.beats[0]


def test_missing_corpus_falls_back_to_a_builtin_beat(tmp_path):
    lib = load_library(tmp_path / "nowhere", tmp_path)
    assert lib.beats == [FALLBACK]
    arr = arrange(example_score(4, 80.0), CHILL, seed=0, library=lib)
    assert any(n.part == "drums" for n in arr.notes)


def test_swing_delays_off_beats_and_ghost_threshold_drops_soft_hits():
    rng = random.Random(0)
    straight = shape_pattern(FALLBACK, {"swing": 0.0, "hat_level": 1.0}, rng)
    swung = shape_pattern(FALLBACK, {"swing": 0.6, "hat_level": 1.0}, rng)
    off = [t for t, n, _ in straight if n == 42 and abs(t % 1 - 0.5) < 0.1]
    off_swung = [t for t, n, _ in swung if n == 42 and abs(t % 1 - 0.6) < 0.1]
    assert off and len(off_swung) == len(off) and all(b > a for a, b in zip(off, off_swung, strict=True))
    sparse = shape_pattern(FALLBACK, {"ghost_min": 80}, rng)
    assert len(sparse) < len(straight)
    assert isinstance(GrooveLibrary([FALLBACK], []).fill_for(("hiphop",), 80, rng), type(None))


@pytest.mark.parametrize("mode", ["major", "minor"])
def test_every_key_is_a_valid_midi_key_signature(mode):
    from music.arrange import key_name, mido_key

    for tonic in range(12):
        msg = mido.MetaMessage("key_signature", key=mido_key(tonic, mode))  # mido validates the name
        assert key_name(tonic, mode).endswith(mode) and msg.key.rstrip("m")[0] == key_name(tonic, mode)[0]


def test_a_melody_outlier_far_above_its_median_stays_inside_midi(tmp_path):
    score = example_score(4, 80.0)
    low = [Note(40, n.start, n.duration, n.velocity) for n in score.melody]
    score.melody = [
        *low,
        Note(108, 0, 12, 90),
    ]  # the median is far below the register: shifted up 2-3 octaves
    arr = arrange(score, CHILL, seed=1)
    assert all(0 <= n.pitch <= 127 and 1 <= n.velocity <= 127 for n in arr.notes)
    arr.write(tmp_path / "x.mid")  # mido accepts every message
