"""Exact lengths: every request from 15 s to 10 min is the asked length, and ends musically (issue 12).

The length logic is swept on plans (fast); a few short real renders check the audio and the encoded MP3 with
ffprobe (its duration counts LAME's encoder delay, which gapless players skip: `start_time` reports it).
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from music.arrange import MIDI_TPB, arrange
from music.render_config import RenderConfig
from music.request import TrackRequest, fit_bars, load_moods, mood_names, plan_track
from music.score import TICKS_PER_BEAT, bar_ticks
from music.track import render_track
from tests.support.scores import example_score

SWEEP = [15, 16.5, 19, 22.2, 27, 30, 33.3, 41, 45, 59.9, 60, 75, 90, 107, 120, 133.7, 150, 180, 210.5, 240,
         299, 333, 420, 480, 555, 600]  # fmt: skip
TOLERANCE_S = 0.05


def bar_seconds(plan) -> float:
    return bar_ticks(*plan.time_signature) / TICKS_PER_BEAT * 60.0 / plan.bpm


@pytest.mark.parametrize("length", SWEEP)
def test_every_length_is_whole_bars_at_a_fitted_tempo_plus_at_most_a_ringing_bar(length):
    assert len(SWEEP) >= 20
    for mood in mood_names():
        for seed in (1, 2, 3):
            plan = plan_track(TrackRequest(length, mood, seed))
            lo, hi = plan.mood.tempo
            assert lo - 1e-9 <= plan.bpm <= hi + 1e-9, (mood, seed, plan.bpm)
            assert plan.length_s == length
            ring = plan.length_s - plan.seconds
            assert -1e-9 <= ring < bar_seconds(plan), (mood, seed, ring)
            if length >= 45:  # long enough for whole bars to fit every mood's range: no remainder at all
                assert ring == pytest.approx(0.0, abs=1e-9), (mood, seed)


@pytest.mark.parametrize("length", [15, 31.7, 100, 600])
def test_an_asked_tempo_is_kept_and_the_rest_of_the_last_bar_rings(length):
    plan = plan_track(TrackRequest(length, "chill", 5, bpm=100))
    assert plan.bpm == 100
    assert 0 <= plan.length_s - plan.seconds < bar_seconds(plan)


def test_fit_bars_prefers_the_tempo_nearest_the_seeded_one():
    n, bpm = fit_bars(120.0, 80.0, 4.0, (70.0, 90.0))
    assert n == 40 and bpm == pytest.approx(80.0)
    n, bpm = fit_bars(15.0, 72.0, 4.0, (68.0, 78.0))  # 4.25..4.875 bars: no whole count fits the range
    assert (n, bpm) == (4, 78.0)


def test_the_final_chord_rings_through_the_remainder():
    mood = load_moods()["chill"]
    arr = arrange(example_score(4, 80.0, "major"), mood.sound, n_bars=4, seed=1)
    rung = arr.__class__(**{**arr.__dict__, "ring_ticks": 2 * MIDI_TPB})
    mid = rung.midi()
    end = arr.total_ticks + 2 * MIDI_TPB
    for track in mid.tracks[1:]:
        t, offs = 0, []
        for msg in track:
            t += msg.time
            if msg.type == "note_off":
                offs.append(t)
        assert t == end  # every track ends with the ring
        name = track[0].name if track and track[0].type == "track_name" else ""
        if name in ("keys", "bass"):
            assert max(offs) == end  # the last chord is held, never cut at the bar line


def _probe(path) -> tuple[float, float]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=start_time:format=duration", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    info = json.loads(out)
    return float(info["format"]["duration"]), float(info["streams"][0].get("start_time", 0.0))


def _decoded_seconds(path) -> float:
    pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "2", "-"],
                         capture_output=True, check=True).stdout  # fmt: skip
    return len(pcm) / 4 / 44100


@pytest.mark.parametrize(("length", "mood"), [(15.0, "rainy"), (16.3, "sunny"), (21.7, "night")])
def test_rendered_tracks_are_the_asked_length_and_fade_out(length, mood, soundfont, ffprobe, tmp_path):
    plan = plan_track(TrackRequest(length, mood, 4))
    files = render_track(
        example_score(plan.n_bars, plan.bpm, plan.mode),
        plan,
        tmp_path,
        render=RenderConfig(soundfont=soundfont),
    )
    assert files.duration_s == pytest.approx(length, abs=1 / 44100)
    duration, delay = _probe(files.mp3)
    assert abs(duration - delay - length) <= TOLERANCE_S
    assert abs(_decoded_seconds(files.mp3) - length) <= TOLERANCE_S
    pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", str(files.mp3), "-f", "f32le", "-ac", "1", "-"],
                         capture_output=True, check=True).stdout  # fmt: skip
    x = np.abs(np.frombuffer(pcm, np.float32))
    assert x[-441:].max() < 0.01 < x[: len(x) // 2].max()  # it dies away to silence, it is not cut off
