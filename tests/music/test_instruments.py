"""Instrument sources: the chosen drum kit plays ghost notes and accents as different strokes, the hi-hat
pedal decides openness, and a missing source leaves its part on the General MIDI font."""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pytest

from music import instruments, synth
from music.analysis.timbre import timbre_distance_db
from music.drums import CLOSED_HAT, OPEN_HAT, _bars_of, hat_note
from music.instruments import AVL_RED_ZEPPELIN, Source

needs_synth = pytest.mark.skipif(not synth.available(), reason="pyfluidsynth or libfluidsynth is missing")
needs_kit = pytest.mark.skipif(
    not instruments.usable(AVL_RED_ZEPPELIN), reason="avldrums.lv2-soundfont is not installed"
)
RATE = 44100


def _hits(notes: list[tuple[float, int, int]], seconds: float) -> mido.MidiFile:
    """Drum hits (start s, note, velocity) on channel 10 at 120 bpm."""
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    events = []
    for t, note, vel in notes:
        events += [(int(t * 960), "note_on", note, vel), (int(t * 960) + 60, "note_off", note, 0)]
    now = 0
    for tick, kind, note, vel in sorted(events):
        track.append(mido.Message(kind, channel=9, note=note, velocity=vel, time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=int(seconds * 960) - now))
    return mid


def _stroke_difference(s: synth.Synth, note: int) -> tuple[float, float]:
    """(timbre distance in dB, level difference in dB) between a ghost note (25) and an accent (115)."""
    audio = s.render(_hits([(0.0, note, 25), (1.0, note, 115)], 2.0), 2.0)
    ghost, accent = audio[:, :RATE], audio[:, RATE:]
    shape = timbre_distance_db(ghost, accent, RATE)
    level = 20 * np.log10(np.abs(accent).max() / np.abs(ghost).max())
    return shape, float(level)


@needs_synth
@needs_kit
def test_a_ghost_note_and_an_accent_are_different_strokes_with_the_chosen_kit(soundfont):
    """AVL's kits have five sampled layers: a ghost note is another recording, not the accent made quieter.
    The General MIDI kit plays one hi-hat sample at every velocity (distance 0.0 dB)."""
    kit = synth.Synth(soundfont, RATE, 0.5, ((9, AVL_RED_ZEPPELIN),))
    gm = synth.Synth(soundfont, RATE, 0.5)
    for s in (kit, gm):
        s.render(_hits([(0.0, 38, 60)], 0.5), 0.5)  # a synth's very first render differs a little
    # measured (timbre_distance_db): 4.1, 1.8 and 2.1 dB against 0.0 for all three
    for hat in (CLOSED_HAT, 44, OPEN_HAT):
        assert _stroke_difference(kit, hat)[0] > 1.2, hat
        assert _stroke_difference(gm, hat)[0] < 0.5, hat
    for drum in (38, 36):  # snare 3.6 against 1.7 dB, kick 4.3 against 3.1
        assert _stroke_difference(kit, drum)[0] > _stroke_difference(gm, drum)[0] + 0.6, drum
    for note in (38, CLOSED_HAT):
        assert _stroke_difference(kit, note)[1] > 20.0  # and the accent much louder (26-34 dB measured)


def _ring_seconds(audio: np.ndarray) -> float:
    loud = np.nonzero(np.abs(audio).max(axis=0) > 1e-3)[0]
    return float(loud[-1] - loud[0]) / RATE if loud.size else 0.0


def _groove_file(path: Path, pedal: int) -> Path:
    """A one-bar groove: kick on 1, the pedal at `pedal`, then the dataset's open-hat note (26, edge)."""
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.Message("note_on", channel=9, note=36, velocity=100, time=0))
    track.append(mido.Message("control_change", channel=9, control=4, value=pedal, time=240))
    track.append(mido.Message("note_on", channel=9, note=26, velocity=90, time=0))
    track.append(mido.Message("note_on", channel=9, note=36, velocity=100, time=4 * 480))
    mid.save(path)
    return path


def test_the_hi_hat_pedal_decides_whether_an_open_hat_note_is_open(tmp_path):
    assert hat_note(OPEN_HAT, 90) == hat_note(OPEN_HAT, 60) == CLOSED_HAT  # the TD-11's pedal: 90 = shut
    assert hat_note(OPEN_HAT, 20) == hat_note(OPEN_HAT, None) == OPEN_HAT
    assert hat_note(38, 90) == 38
    shut = _bars_of(_groove_file(tmp_path / "shut.mid", 90))[0]
    loose = _bars_of(_groove_file(tmp_path / "loose.mid", 10))[0]
    assert [n for _, n, _ in shut] == [36, CLOSED_HAT]
    assert [n for _, n, _ in loose] == [36, OPEN_HAT]


@needs_synth
def test_an_open_hat_note_played_with_the_pedal_shut_renders_as_a_closed_hat(soundfont, tmp_path):
    s = synth.thread_synth(soundfont, RATE, 0.5)
    rings = {}
    for pedal in (90, 0):
        ((_, note, vel),) = [
            h for h in _bars_of(_groove_file(tmp_path / f"{pedal}.mid", pedal))[0] if h[1] != 36
        ]
        rings[pedal] = _ring_seconds(s.render(_hits([(0.0, note, vel)], 2.0), 2.0))
    closed = _ring_seconds(s.render(_hits([(0.0, CLOSED_HAT, 90)], 2.0), 2.0))
    assert rings[90] == pytest.approx(closed, abs=0.01)
    assert rings[0] > 2 * closed  # open: it rings on (0.5 s with AVL's semi-open hat, 1.7 s with GM's)


@needs_synth
def test_a_missing_source_leaves_its_part_on_the_general_midi_font(soundfont, tmp_path, monkeypatch):
    missing = Source("gone", tmp_path / "not-installed.sf2", bank=0, program=0, notes=((50, 45),))
    broken = Source("broken", tmp_path / "broken.sf2", bank=0, program=0)
    broken.soundfont.write_bytes(b"RIFF\0\0\0\0sfbk" + b"\0" * 64)  # a header and nothing behind it
    monkeypatch.setattr(instruments, "CHOSEN", {9: missing})
    assert instruments.channel_sources() == ()  # not installed: not offered
    hits = _hits([(0.0, 36, 100), (0.5, 38, 90), (0.75, 50, 80)], 1.5)
    gm = synth.Synth(soundfont, RATE, 0.5).render(hits, 1.5)
    for source in (missing, broken):  # handed over anyway: FluidSynth cannot load it, the GM kit plays
        s = synth.Synth(soundfont, RATE, 0.5, ((9, source),))
        assert s.sources == ()
        assert np.array_equal(s.render(hits, 1.5), gm)
