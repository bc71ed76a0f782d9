"""Stems: aligned parts of the track's exact length that sum to its mix before mastering, named for producers."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from music.drums import load_library
from music.producer_files import producer_name, write_stems
from music.render_config import SAMPLE_RATE, RenderConfig
from music.request import TrackRequest, plan_track
from music.stems import STEM_PARTS, render_stems
from music.track import _mix_buses, arrange_track
from tests.support.scores import example_score


@pytest.fixture(scope="module")
def track(soundfont):
    plan = plan_track(TrackRequest(length_s=16, mood="rainy", seed=7))
    score = example_score(plan.n_bars, plan.bpm)
    render = RenderConfig(soundfont=soundfont)
    arrangement, seconds = arrange_track(score, plan, "warm up", load_library(None, None))
    _mix_buses(arrangement, plan, soundfont, seconds, {})  # a process's first render differs a little
    return plan, score, render


def test_stems_are_the_parts_aligned_at_the_tracks_exact_length_summing_to_the_mix(track):
    plan, score, render = track
    stems = render_stems(score, plan, render)
    n = round(plan.length_s * SAMPLE_RATE)
    assert tuple(stems.audio) == STEM_PARTS
    assert all(a.shape == (2, n) for a in stems.audio.values())
    assert np.max(np.abs(sum(stems.audio.values()) - stems.mix)) < 1e-5
    # and that mix is the one the track itself is mastered from
    arrangement, seconds = arrange_track(score, plan, stems.title, load_library(None, None))
    assert np.max(np.abs(_mix_buses(arrangement, plan, render.soundfont, seconds, {}) - stems.mix)) < 1e-5
    assert stems.interplay_db < -15  # what no part explains is small: the stems are the parts
    assert all(np.sqrt(np.mean(a * a)) > 1e-3 for a in stems.audio.values())


def test_stem_files_are_24_bit_wavs_and_midis_named_for_producers_and_sum_back(track, tmp_path):
    plan, score, render = track
    stems = render_stems(score, plan, render)
    out = write_stems(stems, plan.bpm, tmp_path)
    wavs = [p for p in out.files if p.suffix == ".wav"]
    assert [p.stem.rsplit("_", 1)[1] for p in wavs] == list(STEM_PARTS)
    assert len([p for p in out.files if p.suffix == ".mid"]) == 4  # the ambience has no notes
    assert wavs[0].name.startswith(f"{stems.title.replace(' ', '-')}_{round(plan.bpm)}bpm_")
    total = 0
    for path in wavs:
        with wave.open(str(path)) as w:
            assert (w.getsampwidth(), w.getnchannels(), w.getframerate()) == (3, 2, SAMPLE_RATE)
            raw = np.frombuffer(w.readframes(w.getnframes()), np.uint8).reshape(-1, 3)
        ints = raw[:, 0].astype(np.int32) | raw[:, 1].astype(np.int32) << 8 | raw[:, 2].astype(np.int32) << 16
        ints = np.where(ints >= 2**23, ints - 2**24, ints)
        total = total + ints.reshape(-1, 2).T / 2**23
    assert np.max(np.abs(total / out.gain - stems.mix)) < 1e-4  # 24-bit rounding of five stems


def test_stems_past_the_upload_limit_are_mp3_and_say_so(track, tmp_path):
    plan, score, render = track
    out = write_stems(render_stems(score, plan, render), plan.bpm, tmp_path, size_limit=2 * 2**20)
    audio = [p for p in out.files if p.suffix != ".mid"]
    assert len(audio) == 5 and all(p.suffix == ".mp3" and p.stat().st_size <= 2 * 2**20 for p in audio)
    assert any("over the 2 MiB upload limit" in note for note in out.notes)


def test_producer_names_are_safe():
    assert producer_name("hazy cassette!", 84.4, 1, "minor", "keys") == "hazy-cassette_84bpm_Csharpmin_keys"
    assert producer_name("", 90, 3, "major", "bass") == "lofi_90bpm_Ebmaj_bass"
