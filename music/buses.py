"""The two buses of a track, rendered at once: the pitched parts (keys, bass, melody) and the drums.

Each bus is synthesised part by part (FluidSynth), every part brought to a common loudness, summed, and sent
through its own effects chain. The two buses run in parallel, on one thread each that keeps its synthesizer
loaded, and each chain runs in two halves at once (`in_halves`, the second half on an effects helper thread);
the ambience bed is made on the music thread after its bus, which has the less to do.

The music bus runs at half the output rate (22.05 kHz) and is resampled to 44.1 kHz after its chain. Its
chain ends in the LoFi low-pass (4.5 kHz by default), so it carries almost nothing above 11 kHz anyway:
measured on rainy, sunny and chill tracks rendered at 44.1 kHz, the wet music bus had 61-98 dB less energy
above 11 kHz than in all, and the half-rate bus matched it within 0.5 dB in every band up to 5 kHz. It costs
about a third: synthesis 0.13-0.18 s instead of 0.29-0.37 s a minute, effects 0.15 s + 0.05 s resampling
instead of 0.48-0.63 s. The drums keep the full rate: cymbals and hats live above 11 kHz.
"""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import signal

from music import ambience as amb
from music import effects, instruments, synth
from music.arrange import CHANNELS
from music.errors import RenderError
from music.fluidsynth_cli import render_midi
from music.master import loudness
from music.pools import named_pool
from music.render_config import SAMPLE_RATE, SILENCE_PEAK, check_soundfont

MUSIC_RATE = SAMPLE_RATE // 2
BUSES = {"music": (("keys", "bass", "melody"), MUSIC_RATE), "drums": (("drums",), SAMPLE_RATE)}
PARTS = ("keys", "bass", "melody", "drums")
BUS_OF_PART = {part: bus for bus, (parts, _) in BUSES.items() for part in parts}
MIX_DEFAULTS = {"keys": 0.0, "bass": -1.0, "melody": 1.0, "drums": 0.0}  # LU relative to the reference level
STEM_LUFS = -22.0  # each part is brought to about this loudness before the effects
SYNTH_GAIN = 0.5


def bus_pool(bus: str) -> ThreadPoolExecutor:
    """The one thread that renders `bus` for every track of this process (its synthesizer stays loaded;
    "effects" is a helper that runs half of an effects chain, `in_halves`).

    One thread a bus: two tracks rendered at once queue on the same two threads, which is what two cores
    can run, and each thread holds one copy of the soundfont (150 MB for the General MIDI font) and of its
    parts' own sources (`bus_sources`: the drum thread's AVL kit, 27 MB).
    """
    return named_pool(bus)


def warm_up(soundfont: Path) -> None:
    """Load each bus thread's synthesizer (what the first render would otherwise wait for)."""
    check_soundfont(soundfont)
    jobs = [
        bus_pool(bus).submit(synth.thread_synth, soundfont, rate, SYNTH_GAIN, bus_sources(bus))
        for bus, (_, rate) in BUSES.items()
    ]
    for job in jobs:
        job.result()


def bus_sources(bus: str) -> tuple[tuple[int, instruments.Source], ...]:
    """The installed instrument sources of the channels of `bus`'s parts (`music.instruments`): one set a bus,
    so that every part of it renders on the one synthesizer its thread warmed up."""
    return instruments.channel_sources(frozenset(CHANNELS[p] for p in BUSES[bus][0]))


def render_stem(
    arrangement, part: str, soundfont: Path, seconds: float, rate: int, in_process: bool
) -> np.ndarray:
    """One part of `arrangement` as float32 (2, round(seconds * rate)): in-process (pyfluidsynth, this
    thread's synthesizer) or with the FluidSynth command line (the fallback where pyfluidsynth is missing)."""
    if in_process:
        one = synth.thread_synth(soundfont, rate, SYNTH_GAIN, bus_sources(BUS_OF_PART[part]))
        return one.render(arrangement.midi((part,)), seconds)
    with tempfile.TemporaryDirectory(prefix="lofi-stem-") as tmp:
        midi = arrangement.write(Path(tmp) / f"{part}.mid", (part,))
        return render_midi(
            midi, soundfont, seconds=seconds, gain=SYNTH_GAIN, sample_rate=rate, allow_silent=True
        )


def level(audio: np.ndarray, rate: int) -> float:
    """A quick loudness estimate (LUFS) from every third sample."""
    return loudness(audio[:, ::3], rate // 3)


def part_gains(stems: dict[str, np.ndarray], mix: dict | None, rate: int) -> dict[str, float]:
    """The gain that brings each part in `stems` (all at `rate`) to `STEM_LUFS` plus the mood's `[mix]` offset,
    measured on the rendered audio (GM instruments differ by 15 dB and more in level); a silent part is left
    out (it adds nothing to the bus)."""
    offsets = {**MIX_DEFAULTS, **{k: float(v) for k, v in (mix or {}).items() if k in MIX_DEFAULTS}}
    gains = {}
    for part, audio in stems.items():
        loud = level(audio, rate)  # a decimated estimate is plenty for a gain
        if np.isfinite(loud):
            gains[part] = float(10 ** ((STEM_LUFS + offsets[part] - loud) / 20.0))
    return gains


def balance(stems: dict[str, np.ndarray], mix: dict | None, rate: int) -> np.ndarray:
    """The parts in `stems` (all at `rate`) summed, each first scaled by its `part_gains`. The stems are scaled
    in place (the first one holds the sum after: no 40 MB temporaries); `music.stems` keeps them apart."""
    out = None
    for part, gain in part_gains(stems, mix, rate).items():
        audio = stems[part]
        audio *= np.float32(gain)
        if out is None:
            out = audio
        else:
            out += audio
    return out if out is not None else np.zeros_like(next(iter(stems.values())))


# The music bus carries next to nothing above 5.5 kHz (its low-pass), so the images of a 2x upsampling start
# at 16.5 kHz and a short filter removes them: 21 taps (Kaiser, beta 7) are flat to 5.5 kHz and 70 dB down
# from 16.5 kHz, in 0.05 s per 2 minutes instead of 0.14 s for scipy's default 41 taps.
_UPSAMPLE_FIR = signal.firwin(21, SAMPLE_RATE / 4, fs=SAMPLE_RATE, window=("kaiser", 7.0)).astype(np.float32)


def to_output_rate(audio: np.ndarray, rate: int, n: int) -> np.ndarray:
    """`audio` at `rate` (`SAMPLE_RATE` or `MUSIC_RATE`) at `SAMPLE_RATE`, exactly `n` samples."""
    if rate == MUSIC_RATE:
        audio = signal.resample_poly(audio, 2, 1, axis=1, window=_UPSAMPLE_FIR).astype(np.float32, copy=False)
    elif rate != SAMPLE_RATE:
        raise ValueError(f"no resampling from {rate} Hz")
    if audio.shape[1] < n:
        audio = np.pad(audio, ((0, 0), (0, n - audio.shape[1])))
    return np.ascontiguousarray(audio[:, :n])


def in_halves(make_chain, audio: np.ndarray, rate: int, settle_s: float) -> np.ndarray:
    """`audio` through the effects chain `make_chain()` makes (`effects.run_chain`; a fresh chain per half:
    pedalboard plugins keep state), in two halves at once, on this thread and the effects helper.

    An effects chain is causal and forgets its input within `settle_s` (`effects.settle_seconds`): the second
    half starts that long before the middle, so by the middle it is in the state the whole run would be in,
    to 120 dB, and its run-in is dropped. The result equals the chain run in one piece (to 1e-7, tested); on
    2 minutes it takes about 60 % of the time.
    """

    def run(part: np.ndarray) -> np.ndarray:
        return effects.run_chain(make_chain(), part, rate)

    n, settle = audio.shape[1], int(settle_s * rate)
    mid = n // 2
    if mid < 2 * settle:  # a short track: the run-in would cost more than the halves save
        return run(audio)
    second = bus_pool("effects").submit(run, audio[:, mid - settle :])
    out = np.empty_like(audio)
    out[:, :mid] = run(audio[:, :mid])
    out[:, mid:] = second.result()[:, settle:]
    return out


def music_wet(dry: np.ndarray, rate: int, fx: dict, seed: int) -> np.ndarray:
    """The music bus through the tape wobble and the music chain (in halves)."""
    wobbled = effects.tape_wobble(dry, rate, fx["wow_ms"], fx["flutter_ms"], seed)
    return in_halves(
        lambda: effects.music_chain(fx), wobbled, rate, effects.settle_seconds(fx["reverb_size"])
    )


def drums_wet(dry: np.ndarray, rate: int, fx: dict) -> np.ndarray:
    """The drum bus through the drum chain (in halves)."""
    return in_halves(lambda: effects.drum_chain(fx), dry, rate, effects.settle_seconds(effects.DRUM_ROOM))


@dataclass
class Bus:
    """One bus after its chain, at `SAMPLE_RATE`: the wet audio (None when the bus has no notes), how many LU
    louder the chain made it, the mean square of the dry bus (it sets the ambience level) and the loudest
    raw sample of its parts (the silence check)."""

    wet: np.ndarray | None
    change: float = float("nan")
    dry_mean_square: float = 0.0
    peak: float = 0.0


def render_bus(
    arrangement,
    bus: str,
    soundfont: Path,
    seconds: float,
    sound: dict,
    seed: int,
    in_process: bool,
) -> Bus:
    """Synthesise, balance and process one bus (`BUSES`) of `arrangement`, `seconds` long."""
    stems = render_parts(arrangement, bus, soundfont, seconds, in_process)
    if not stems:
        return Bus(None)
    peak = max(float(np.max(np.abs(a))) for a in stems.values())
    dry = balance(stems, sound.get("mix"), BUSES[bus][1])
    del stems
    return finish_bus(bus, dry, seconds, sound, seed, peak)


def render_parts(
    arrangement, bus: str, soundfont: Path, seconds: float, in_process: bool
) -> dict[str, np.ndarray]:
    """The parts of `bus` that have notes, synthesised apart at the bus's rate."""
    names, rate = BUSES[bus]
    parts = [p for p in names if any(n.part == p for n in arrangement.notes)]
    return {p: render_stem(arrangement, p, soundfont, seconds, rate, in_process) for p in parts}


def bus_wet(bus: str, dry: np.ndarray, sound: dict, seed: int) -> np.ndarray:
    """`dry` (at the bus's rate) through the bus's effects, still at the bus's rate."""
    rate = BUSES[bus][1]
    fx = effects.settings(sound.get("effects"))
    return music_wet(dry, rate, fx, seed) if bus == "music" else drums_wet(dry, rate, fx)


def finish_bus(bus: str, dry: np.ndarray, seconds: float, sound: dict, seed: int, peak: float) -> Bus:
    """The balanced `dry` bus through its effects, at `SAMPLE_RATE` and `seconds` long."""
    rate = BUSES[bus][1]
    wet = bus_wet(bus, dry, sound, seed)
    change = level(wet, rate) - level(dry, rate)
    n = int(round(seconds * SAMPLE_RATE))
    return Bus(to_output_rate(wet, rate, n), change, float(np.mean(np.square(dry[:, ::7]))), peak)


def render_buses(
    arrangement,
    soundfont: Path,
    seconds: float,
    sound: dict,
    seed: int,
    *,
    in_process: bool | None = None,
) -> tuple[Bus, Bus, np.ndarray]:
    """(music, drums, ambience bed at reference level 1) for one track, the two buses in parallel.

    The bed is `music.ambience.ambience` with a reference RMS of 1: its level is linear in that RMS, so the
    caller scales it once both dry buses are known. RenderError when there are no notes or all is silent.
    """
    if not any(n.part in PARTS for n in arrangement.notes):
        raise RenderError("the arrangement has no notes to render")
    check_soundfont(soundfont)
    if in_process is None:
        in_process = synth.available()
    jobs = {
        bus: bus_pool(bus).submit(render_bus, arrangement, bus, soundfont, seconds, sound, seed, in_process)
        for bus in BUSES
    }
    n = int(round(seconds * SAMPLE_RATE))
    bed = bus_pool("music").submit(amb.ambience, n, SAMPLE_RATE, sound.get("ambience"), 1.0, seed)
    music, drums = jobs["music"].result(), jobs["drums"].result()
    if max(music.peak, drums.peak) < SILENCE_PEAK:
        raise RenderError(f"the track rendered silent with {soundfont} (broken soundfont?)")
    return music, drums, bed.result()
