"""FluidSynth in-process (pyfluidsynth): one synthesizer per render thread, its soundfonts loaded once.

The General MIDI font plays every channel but those with an installed source of their own
(`music.instruments`): each source's font is loaded into the same synthesizer (an sfont id each) and its
channel selects that preset, so a part's source costs a load, not a render.

A stem is rendered by sending the MIDI events of an in-memory `mido.MidiFile` to the synth and writing float
samples between them: no MIDI or WAV file, no process start, no soundfont load per stem. Reverb and chorus
are off (the effects chain adds ours), as with the command line (`music.fluidsynth_cli.render_midi`), which stays the
fallback where pyfluidsynth or libfluidsynth is missing.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import threading
from pathlib import Path

import numpy as np

from music import instruments
from music.errors import RenderError
from music.instruments import Source

BLOCK = 64  # FluidSynth's own block size: events land on a block boundary, as the command line's player does

_local = threading.local()


def _import_fluidsynth():
    """pyfluidsynth, imported with its "'fluidsynth' was found at ..." line kept off stdout (where
    `lofi generate --json` writes its JSON)."""
    with contextlib.redirect_stdout(io.StringIO()):
        import fluidsynth
    return fluidsynth


def available() -> bool:
    """True when pyfluidsynth and libfluidsynth can be loaded."""
    try:
        fluidsynth = _import_fluidsynth()
    except (ImportError, OSError):
        return False
    return hasattr(fluidsynth, "_fl") and hasattr(fluidsynth._fl, "fluid_synth_write_float")


class Synth:
    """One FluidSynth synthesizer with the GM soundfont and the channels' own sources loaded (use from one
    thread at a time). A source whose font fails to load leaves its channel on the GM font."""

    def __init__(
        self, soundfont: Path, sample_rate: int, gain: float, sources: tuple[tuple[int, Source], ...] = ()
    ):
        fluidsynth = _import_fluidsynth()

        self.soundfont, self.sample_rate, self.gain = Path(soundfont), int(sample_rate), float(gain)
        self._fs = fluidsynth.Synth(
            gain=self.gain,
            samplerate=self.sample_rate,
            **{"synth.reverb.active": 0, "synth.chorus.active": 0},
        )
        self.sfid = self._fs.sfload(str(self.soundfont))
        if self.sfid < 0:
            raise RenderError(f"FluidSynth could not load the soundfont {self.soundfont}")
        # channel -> (sfont id, bank, program or None for the MIDI's own, {GM note: the font's note})
        self._presets: dict[int, tuple[int, int, int | None, dict[int, int]]] = {
            ch: (self.sfid, 128 if ch == 9 else 0, None, {}) for ch in range(16)
        }
        loaded: dict[Path, int] = {}
        for ch, src in sources:
            if src.soundfont not in loaded:
                loaded[src.soundfont] = self._fs.sfload(str(src.soundfont))
            sfid = loaded[src.soundfont]
            if sfid >= 0:
                self._presets[ch] = (sfid, src.bank, src.program, dict(src.notes))
        self.sources = tuple((ch, src) for ch, src in sources if loaded[src.soundfont] >= 0)
        write = fluidsynth._fl.fluid_synth_write_float
        write.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                          ctypes.c_void_p, ctypes.c_int, ctypes.c_int]  # fmt: skip
        write.restype = ctypes.c_int
        self._write = write
        self._sounds_off = fluidsynth._fl.fluid_synth_all_sounds_off  # voices stop at once, with no release
        self._sounds_off.argtypes = [ctypes.c_void_p, ctypes.c_int]
        self._written = 0  # samples written since creation: FluidSynth renders in blocks of BLOCK from 0

    def _fill(self, out: np.ndarray, a: int, b: int) -> None:
        if b <= a:
            return
        left, right = out[0, a:b], out[1, a:b]  # contiguous rows: ctypes releases the GIL while it renders
        self._write(self._fs.synth, b - a, left.ctypes.data, 0, 1, right.ctypes.data, 0, 1)
        self._written += b - a

    def render(self, midi, seconds: float) -> np.ndarray:
        """`midi` (a `mido.MidiFile`) as float32 (2, samples), exactly `seconds` long (release tails kept)."""
        fs = self._fs
        self._sounds_off(fs.synth, -1)  # nothing of the previous render rings into this one
        fs.system_reset()
        scratch = np.zeros((2, 4096), np.float32)
        for _ in range(64):  # let the reset take effect: render until the synth is silent
            self._fill(scratch, 0, scratch.shape[1])
            if not scratch.any():
                break
        # A previous render of a length that is not a whole number of blocks leaves FluidSynth part-way
        # into a block, and events then sound up to a block late. Finish that block first: a render starts
        # on a block boundary, so the same MIDI gives the same samples whatever the synth rendered before.
        self._fill(scratch, 0, -self._written % BLOCK)
        presets = self._presets
        for ch, (sfid, bank, program, _) in presets.items():
            fs.program_select(ch, sfid, bank, program or 0)
        n = int(round(seconds * self.sample_rate))
        out = np.zeros((2, n), np.float32)
        pos, t = 0, 0.0
        for msg in midi:  # all tracks merged, `time` in seconds (tempo changes applied)
            t += msg.time
            if msg.is_meta:
                continue
            target = min(int(round(t * self.sample_rate / BLOCK)) * BLOCK, n)
            self._fill(out, pos, target)
            pos = max(pos, target)
            kind = msg.type
            if kind == "note_on" or kind == "note_off":
                notes = presets[msg.channel][3]
                note = notes.get(msg.note, msg.note) if notes else msg.note
                if kind == "note_on" and msg.velocity:
                    fs.noteon(msg.channel, note, msg.velocity)
                else:
                    fs.noteoff(msg.channel, note)
            elif kind == "control_change":
                fs.cc(msg.channel, msg.control, msg.value)
            elif kind == "program_change":
                sfid, bank, program, _ = presets[msg.channel]
                fs.program_select(msg.channel, sfid, bank, msg.program if program is None else program)
            elif kind == "pitchwheel":
                fs.pitch_bend(msg.channel, msg.pitch)
        self._fill(out, pos, n)
        return out


def thread_synth(
    soundfont: Path, sample_rate: int, gain: float, sources: tuple[tuple[int, Source], ...] | None = None
) -> Synth:
    """This thread's synthesizer for (soundfont, rate, gain, sources), created once and kept loaded.

    `sources` None: the chosen sources that are installed (`music.instruments.channel_sources`)."""
    if sources is None:
        sources = instruments.channel_sources()
    cache = getattr(_local, "synths", None)
    if cache is None:
        cache = _local.synths = {}
    key = (str(soundfont), int(sample_rate), float(gain), sources)
    if key not in cache:
        cache[key] = Synth(Path(soundfont), sample_rate, gain, sources)
    return cache[key]
