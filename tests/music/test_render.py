"""FluidSynth rendering and the whole track pipeline, measured with independent tools (ffmpeg, mido)."""

from __future__ import annotations

import numpy as np
import pytest

from music.arrange import arrange
from music.errors import RenderError
from music.fluidsynth_cli import render_midi
from music.master import loudness, master, true_peak_dbtp
from music.render_config import SAMPLE_RATE, RenderConfig, check_soundfont
from music.request import TrackRequest, load_moods, plan_track
from music.track import render_track
from tests.support.scores import example_score


@pytest.fixture(scope="module")
def short_midi(tmp_path_factory):
    arr = arrange(example_score(2, 90.0), load_moods()["chill"].sound, seed=1)
    return arr.write(tmp_path_factory.mktemp("mid") / "short.mid"), arr.seconds


def test_render_is_stereo_44k_and_not_silent(soundfont, short_midi):
    path, seconds = short_midi
    audio = render_midi(path, soundfont, seconds=seconds)
    assert audio.shape == (2, round(seconds * SAMPLE_RATE))
    assert np.max(np.abs(audio)) > 0.01


def test_missing_soundfont_is_a_clear_render_error(short_midi, tmp_path):
    with pytest.raises(RenderError, match="soundfont not found"):
        render_midi(short_midi[0], tmp_path / "nope.sf2")


def test_broken_soundfont_is_a_clear_render_error(short_midi, tmp_path):
    junk = tmp_path / "junk.sf2"
    junk.write_bytes(b"this is not a soundfont" * 100)
    with pytest.raises(RenderError, match="not a SoundFont 2 file"):
        check_soundfont(junk)
    with pytest.raises(RenderError, match="soundfont"):
        render_midi(short_midi[0], junk)


def test_truncated_soundfont_fails_in_fluidsynth_with_render_error(soundfont, short_midi, tmp_path):
    cut = tmp_path / "cut.sf2"
    cut.write_bytes(soundfont.open("rb").read(4096))  # a valid header, then nothing
    with pytest.raises(RenderError, match="soundfont|silence"):
        render_midi(short_midi[0], cut)


def test_pipeline_with_missing_soundfont_raises_render_error(tmp_path):
    plan = plan_track(TrackRequest(length_s=4, mood="chill", seed=1))
    with pytest.raises(RenderError):
        render_track(
            example_score(plan.n_bars, plan.bpm),
            plan,
            tmp_path,
            render=RenderConfig(soundfont=tmp_path / "missing.sf2"),
        )


def test_master_hits_loudness_and_ceiling():
    rng = np.random.default_rng(0)
    t = np.arange(SAMPLE_RATE * 5) / SAMPLE_RATE
    env = np.repeat(rng.random(100) ** 3, t.size // 100)  # loud and quiet stretches
    x = (np.sin(2 * np.pi * 220 * t) * env * 0.3).astype(np.float32)
    out, lufs, tp = master(np.stack([x, x]), SAMPLE_RATE)
    assert lufs == pytest.approx(-14.0, abs=0.5)
    assert tp <= -1.0 and true_peak_dbtp(out) <= -1.0
    assert np.max(np.abs(out)) < 1.0


def test_fast_loudness_matches_pyloudnorm():
    import pyloudnorm

    rng = np.random.default_rng(1)
    x = (rng.standard_normal((2, SAMPLE_RATE * 6)) * np.repeat(rng.random(60), 4410)[None, :] * 0.1).astype(
        np.float32
    )
    ref = pyloudnorm.Meter(SAMPLE_RATE).integrated_loudness(x.T.astype(np.float64))
    assert loudness(x, SAMPLE_RATE) == pytest.approx(ref, abs=0.05)


@pytest.fixture(scope="module")
def track(soundfont, tmp_path_factory):
    plan = plan_track(TrackRequest(length_s=8, mood="rainy", seed=11, bpm=90))  # 3 bars of 4/4 = 8 s
    stages = []
    files = render_track(
        example_score(plan.n_bars, plan.bpm, plan.mode),
        plan,
        tmp_path_factory.mktemp("track"),
        render=RenderConfig(soundfont=soundfont),
        progress=stages.append,
    )
    return plan, files, stages


def test_track_duration_matches_the_plan(track, ffprobe):
    plan, files, _ = track
    assert abs(files.duration_s - plan.seconds) / plan.seconds < 0.02
    assert abs(files.duration_s - 8.0) / 8.0 < 0.02  # the request
    assert abs(ffprobe(files.mp3)["duration"] - plan.seconds) / plan.seconds < 0.02


def test_track_loudness_and_true_peak_by_ffmpeg(track, ebur128):
    _, files, _ = track
    m = ebur128(files.mp3)
    assert m["lufs"] == pytest.approx(-14.0, abs=1.0)
    assert m["true_peak_dbtp"] <= -1.0
    assert files.loudness_lufs == pytest.approx(-14.0, abs=0.5) and files.true_peak_dbtp <= -1.0


def test_track_files_progress_and_timings(track):
    plan, files, stages = track
    assert stages == ["arranging", "rendering", "mastering", "encoding"]
    assert files.mp3.stat().st_size > 10_000 and files.midi.exists() and files.cover.exists()
    assert set(files.timings) == {"arrange", "stems", "mix", "master", "encode", "cover"}
    assert files.mood == "rainy" and files.seed == 11 and files.bpm == plan.bpm
    assert files.key.endswith("minor")


def test_cli_renders_a_token_file(soundfont, tmp_path, capsys):
    import json

    from lofi.cli import main
    from music.tokens import Representation

    rep = Representation()
    tokens = rep.encode(example_score(2, 80.0, "major"))
    src = tmp_path / "tokens.json"
    src.write_text(json.dumps(rep.vocab.ids(tokens)))
    out = tmp_path / "song.mp3"
    assert main(["render", str(src), "--mood", "study", "--out", str(out), "--seed", "4"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert out.exists() and out.with_suffix(".mid").exists() and out.with_suffix(".png").exists()
    assert report["bars"] == 2 and report["mood"] == "study"


def test_cli_reports_a_bad_source(tmp_path, capsys):
    from lofi.cli import main

    src = tmp_path / "bad.txt"
    src.write_text("BOS NOT_A_TOKEN")
    assert main(["render", str(src), "--mood", "chill", "--out", str(tmp_path / "x.mp3")]) == 1
    assert "unknown token" in capsys.readouterr().err


def test_balance_evens_out_instrument_levels():
    from music.buses import MUSIC_RATE, STEM_LUFS, balance

    t = np.arange(MUSIC_RATE * 3) / MUSIC_RATE
    tone = np.stack([np.sin(2 * np.pi * 330 * t)] * 2).astype(np.float32)
    loud = balance({"keys": tone * 0.5}, None, MUSIC_RATE)
    quiet = balance({"melody": tone * 0.005}, {"melody": 2.0}, MUSIC_RATE)
    both = balance({"keys": tone * 0.5, "bass": tone * 0.01}, None, MUSIC_RATE)
    assert loudness(loud, MUSIC_RATE) == pytest.approx(STEM_LUFS, abs=0.7)
    assert loudness(quiet, MUSIC_RATE) == pytest.approx(STEM_LUFS + 2.0, abs=0.7)
    # the same tone at -22 and -23 LUFS, in phase: 20 log10(1 + 10^(-1/20)) = 5.5 dB above the louder one
    assert loudness(both, MUSIC_RATE) == pytest.approx(STEM_LUFS + 5.5, abs=0.7)
