"""A track taken apart: its parts (keys, bass, melody, drums, ambience) as aligned audio of the track's exact
length that sum to its mix before mastering.

The drums and the ambience are a bus each already. The music bus is keys, bass and melody summed and then sent
through one effects chain whose compressor and saturation are not linear, so each part through the chain
alone does not add up to the bus. Each part alone through the chain is first given the gain the compressor
gave the whole bus (fitted 20 ms at a time); what that leaves (the saturation's intermodulation and the
compressor's gain smeared by the reverb after it: about -21 dB under the bus on a rainy track, 2026-12-04) is
shared out among the parts by their share of the energy there. The five stems then add up to the mix sample
for sample.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import uniform_filter1d

from music import ambience as amb
from music import buses, synth
from music.arrange import Arrangement
from music.drums import load_library
from music.errors import RenderError
from music.render_config import SAMPLE_RATE, SILENCE_PEAK, RenderConfig, check_soundfont
from music.request import TrackPlan
from music.score import Score
from music.track import (
    _mix,
    arrange_track,
    bed_gain,
    drum_gain,
    fade_envelope,
    fade_seconds,
    track_title,
)

STEM_PARTS = ("keys", "bass", "melody", "drums", "ambience")
SHARE_WINDOW_S = 0.02  # the interplay is shared out by each part's energy over this long


@dataclass
class Stems:
    """The parts of one track at `SAMPLE_RATE`, each (2, n) float32, and the mix before mastering they sum to.

    `interplay_db` is the level of what was shared out, relative to the music bus (-inf: none)."""

    arrangement: Arrangement
    title: str
    audio: dict[str, np.ndarray]
    mix: np.ndarray
    interplay_db: float


def render_stems(score: Score, plan: TrackPlan, render: RenderConfig | None = None) -> Stems:
    """The stems of the track `render_track` makes of `score` and `plan` (blocking; run it in a worker).

    Args:
        score: the decoded score, as `render_track` takes it.
        plan: the track's plan.
        render: the soundfont and groove library (default `RenderConfig()`).
    Returns:
        The stems, the pre-master mix and the interplay's level; RenderError when all is silent.
    """
    render = render or RenderConfig()
    title = score.title or track_title(plan.mood.name, plan.request.seed)
    library = load_library(render.groove_dir, render.cache_dir)
    arrangement, seconds = arrange_track(score, plan, title, library)
    soundfont = check_soundfont(Path(render.soundfont))
    sound, seed = plan.mood.sound or {}, plan.request.seed
    n = int(round(seconds * SAMPLE_RATE))
    in_process = synth.available()
    # the buses' own threads, where their synthesizers are loaded (as `buses.render_buses` renders)
    music_job: Future[tuple[buses.Bus, dict[str, np.ndarray], float]] = buses.bus_pool("music").submit(
        _music_parts, arrangement, soundfont, seconds, sound, seed, in_process
    )
    drums_job = buses.bus_pool("drums").submit(
        buses.render_bus, arrangement, "drums", soundfont, seconds, sound, seed, in_process
    )
    bed = amb.ambience(n, SAMPLE_RATE, sound.get("ambience"), 1.0, seed)
    (music, parts, interplay_db), drums = music_job.result(), drums_job.result()
    if max(music.peak, drums.peak) < SILENCE_PEAK:
        raise RenderError(f"the track rendered silent with {soundfont} (broken soundfont?)")
    envelope = fade_envelope(n, fade_seconds(arrangement, plan, seconds))
    audio = {part: parts[part] for part in ("keys", "bass", "melody") if part in parts}
    if drums.wet is not None:
        audio["drums"] = drums.wet * drum_gain(music, drums)
    audio["ambience"] = bed * bed_gain(music, drums)
    for stem in audio.values():
        stem *= envelope
    mix = _mix(arrangement, plan, seconds, music, drums, bed)  # the track's own mixing, in `bed`
    return Stems(arrangement, title, audio, mix, interplay_db)


def _music_parts(
    arrangement: Arrangement, soundfont: Path, seconds: float, sound: dict, seed: int, in_process: bool
) -> tuple[buses.Bus, dict[str, np.ndarray], float]:
    """(the music bus as the track renders it, its parts at `SAMPLE_RATE` summing to its wet audio, the
    interplay's level in dB under the bus)."""
    rate = buses.MUSIC_RATE
    raw = buses.render_parts(arrangement, "music", soundfont, seconds, in_process)
    if not raw:
        return buses.Bus(None), {}, float("-inf")
    peak = max(float(np.max(np.abs(a))) for a in raw.values())
    gains = buses.part_gains(raw, sound.get("mix"), rate)
    dry = {p: raw[p] * np.float32(g) for p, g in gains.items()}
    bus = buses.finish_bus("music", buses.balance(raw, sound.get("mix"), rate), seconds, sound, seed, peak)
    del raw
    assert bus.wet is not None
    n = bus.wet.shape[1]
    wet = {p: buses.to_output_rate(buses.bus_wet("music", d, sound, seed), rate, n) for p, d in dry.items()}
    return bus, *share_out(bus.wet, wet)


def share_out(total: np.ndarray, parts: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], float]:
    """`parts` made to sum to `total`: first the gain the chain's compressor gave their sum (fitted over
    `SHARE_WINDOW_S` at a time), then what they still miss shared out by each one's energy there.

    Args:
        total: (2, n) the bus as its chain made it.
        parts: each part through the same chain alone, (2, n) each.
    Returns:
        (the parts, changed in place, summing to `total` to float32 rounding; the level in dB, relative to
        `total`, of what the gain did not explain and was shared out).
    """
    if not parts:
        return parts, float("-inf")
    size = max(int(SHARE_WINDOW_S * SAMPLE_RATE), 1)
    both = sum(parts.values())
    # a part alone is compressed less than in the bus: the bus's gain on their sum, window by window
    # (least squares), takes the compressor's share out without moving one part's sound into another
    power = uniform_filter1d(np.sum(both * both, axis=0), size)
    cross = uniform_filter1d(np.sum(total * both, axis=0), size)
    gain = np.where(power > 1e-12, cross / np.maximum(power, 1e-12), 1.0).astype(np.float32)
    for audio in parts.values():
        audio *= gain
    rest = total - both * gain
    energy = {p: uniform_filter1d(np.sum(a * a, axis=0), size) for p, a in parts.items()}
    whole = sum(energy.values())
    equal = np.float32(1.0 / len(parts))  # where every part is silent, the rest (if any) is shared alike
    for p, audio in parts.items():
        share = np.where(whole > 1e-18, energy[p] / np.maximum(whole, 1e-18), equal).astype(np.float32)
        audio += rest * share
    ratio = float(np.mean(rest * rest)) / max(float(np.mean(total * total)), 1e-30)
    return parts, 10 * np.log10(ratio) if ratio > 0 else float("-inf")
