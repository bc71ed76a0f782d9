"""FluidSynth in-process (pyfluidsynth): a synth kept loaded per thread renders what the command line does."""

from __future__ import annotations

import mido
import numpy as np
import pytest

from music import instruments, synth
from music.arrange import arrange
from music.buses import BUSES, render_stem
from music.request import load_moods
from tests.support.scores import example_score

pytestmark = pytest.mark.skipif(not synth.available(), reason="pyfluidsynth or libfluidsynth is missing")


def _rms_db(x: np.ndarray) -> float:
    return 20 * np.log10(max(float(np.sqrt(np.mean(np.square(x)))), 1e-9))


def test_in_process_stems_match_the_command_line(soundfont, monkeypatch):
    monkeypatch.setattr(instruments, "CHOSEN", {})  # the command line plays the General MIDI font alone
    arr = arrange(example_score(4, 80.0), load_moods()["chill"].sound, n_bars=4, seed=2)
    for parts, rate in BUSES.values():  # the music bus at 22.05 kHz, the drums at 44.1 kHz
        for part in parts:
            fast = render_stem(arr, part, soundfont, arr.seconds, rate, in_process=True)
            cli = render_stem(arr, part, soundfont, arr.seconds, rate, in_process=False)
            assert fast.shape == cli.shape == (2, int(round(arr.seconds * rate)))
            assert _rms_db(fast) == pytest.approx(_rms_db(cli), abs=1.0), part


def test_the_synth_is_loaded_once_per_thread(soundfont):
    a = synth.thread_synth(soundfont, 44100, 0.5)
    assert synth.thread_synth(soundfont, 44100, 0.5) is a
    arr = arrange(example_score(2, 90.0), load_moods()["sunny"].sound, n_bars=2, seed=3)
    first = a.render(arr.midi(("keys",)), arr.seconds)
    silent = a.render(mido.MidiFile(tracks=[mido.MidiTrack()]), 1.0)  # reset between renders
    again = a.render(arr.midi(("keys",)), arr.seconds)
    assert not silent.any()  # nothing of the ringing last chord leaks into the next render
    assert _rms_db(again) == pytest.approx(_rms_db(first), abs=0.1)


def test_a_render_does_not_depend_on_the_length_of_the_one_before(soundfont):
    """FluidSynth renders in blocks of 64 samples: a render that ended part-way into a block must not shift
    the next one's notes (they would sound up to a block late, and the same MIDI would not give the same
    samples)."""
    s = synth.Synth(soundfont, 44100, 0.5)  # a synth of its own: what it rendered before is known
    arr = arrange(example_score(2, 90.0), load_moods()["chill"].sound, n_bars=2, seed=3)
    drums = arr.midi(("drums",))
    s.render(drums, arr.seconds)  # a synth's very first render differs a little from later ones
    first = s.render(drums, arr.seconds)
    s.render(drums, 1.0 + 37 / 44100)  # ends 37 samples into a block
    assert np.array_equal(s.render(drums, arr.seconds), first)  # unaligned: 0.2 apart at the peak
