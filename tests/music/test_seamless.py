"""Seamless loops: the main section's bars, their tails wrapped onto their start, no click and no gap."""

from __future__ import annotations

import numpy as np
import pytest

from music.drums import load_library
from music.errors import MusicError
from music.master import master
from music.render_config import SAMPLE_RATE, RenderConfig
from music.request import TrackRequest, plan_track
from music.seamless import _mix_times, loop_arrangement, main_bars, render_loop
from music.track import arrange_track
from tests.support.scores import example_score

HALF = int(0.025 * SAMPLE_RATE)  # the seam's window is 50 ms: 25 ms either side


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x * x)))


def seam_figures(audio: np.ndarray) -> tuple[float, float, float, float]:
    """(the 50 ms around the seam in dB against the body's median 50 ms, against its quietest tenth and its
    loudest 50 ms, the step across the seam against the largest step within 50 ms either side of it)."""
    around = np.concatenate([audio[:, -HALF:], audio[:, :HALF]], axis=1)
    body = [rms(audio[:, i : i + 2 * HALF]) for i in range(0, audio.shape[1] - 2 * HALF, 2 * HALF)]
    k = int(0.05 * SAMPLE_RATE)
    local = max(np.max(np.abs(np.diff(audio[:, -k:]))), np.max(np.abs(np.diff(audio[:, :k]))))
    db = lambda ref: 20 * np.log10(rms(around) / ref)  # noqa: E731
    return (
        db(np.median(body)),
        db(np.percentile(body, 10)),
        db(max(body)),
        float(np.max(np.abs(audio[:, 0] - audio[:, -1])) / local),
    )


@pytest.fixture(scope="module")
def rainy(soundfont):
    plan = plan_track(TrackRequest(length_s=20, mood="rainy", seed=7))
    return plan, example_score(plan.n_bars, plan.bpm), RenderConfig(soundfont=soundfont)


@pytest.mark.parametrize(("mood", "length", "bars"), [("rainy", 20, 4), ("chill", 40, 8)])
def test_a_loop_plays_round_without_a_click_or_a_gap(soundfont, mood, length, bars):
    plan = plan_track(TrackRequest(length_s=length, mood=mood, seed=3))
    loop = render_loop(example_score(plan.n_bars, plan.bpm), plan, bars, RenderConfig(soundfont=soundfont))
    assert loop.arrangement.n_bars == bars
    assert loop.audio.shape[1] == round(loop.arrangement.seconds * SAMPLE_RATE)
    median_db, quiet_db, loud_db, step = seam_figures(loop.audio)
    print(
        f"{mood} {bars} bars: seam {median_db:+.1f} dB against the median, step {step:.2f} of the largest near"
    )
    assert quiet_db > -1.0 and loud_db < 0.0  # no gap (at least the body's quiet tenth), no burst
    assert step < 0.5  # continues like the samples around it


def test_the_same_bars_cut_without_their_tails_fail_the_seam_test(rainy):
    plan, score, render = rainy
    arrangement, _ = arrange_track(score, plan, "x", load_library(None, None))
    once = loop_arrangement(arrangement, main_bars(arrangement, 4), 4)
    n = round(once.seconds * SAMPLE_RATE)
    naive, _, _ = master(_mix_times(once, plan, render.soundfont, n)[:, :n], SAMPLE_RATE)
    assert seam_figures(naive)[3] > 1.0


def test_a_loop_is_in_the_main_section_and_needs_the_bars(rainy):
    plan, score, _ = rainy
    arrangement, _ = arrange_track(score, plan, "x", load_library(None, None))
    first = main_bars(arrangement, 4)
    main = max((s for s in arrangement.sections if s[0] == "main"), key=lambda s: s[2] - s[1])
    assert first + 4 <= arrangement.n_bars and (first == main[1] or first + 4 == main[2] or first == 0)
    with pytest.raises(MusicError, match="too few"):
        main_bars(arrangement, 8) if arrangement.n_bars < 8 else main_bars(
            loop_arrangement(arrangement, 0, 4), 8
        )
    with pytest.raises(MusicError, match="4 or 8"):
        main_bars(arrangement, 5)
