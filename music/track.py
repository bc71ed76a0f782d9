"""One track from a generated score: arrange -> render (FluidSynth) -> effects + ambience -> master -> MP3."""

from __future__ import annotations

import logging
import os
import random
import re
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from music import ambience as amb
from music import effects, synth
from music.arrange import MIDI_TPB, arrange, mido_key
from music.drums import load_library
from music.errors import RenderError
from music.export import UPLOAD_LIMIT_BYTES, write_cover, write_mp3
from music.master import loudness, master
from music.progress import Progress, Stage
from music.render import DEFAULT_SOUNDFONT, SAMPLE_RATE, SILENCE_PEAK, check_soundfont, render_midi
from music.request import TrackPlan
from music.score import Score

log = logging.getLogger(__name__)

ADJECTIVES = (
    "quiet",
    "faded",
    "velvet",
    "hazy",
    "amber",
    "slow",
    "paper",
    "blue",
    "soft",
    "late",
    "warm",
    "dusty",
)
NOUNS = (
    "window",
    "tram",
    "letters",
    "streetlight",
    "tea",
    "cassette",
    "balcony",
    "rooftop",
    "notebook",
    "harbor",
    "sweater",
    "polaroid",
)


@dataclass
class TrackFiles:
    """Everything the bot posts for one rendered track."""

    mp3: Path
    midi: Path
    cover: Path
    duration_s: float
    bpm: float
    key: str
    mood: str
    seed: int
    title: str
    loudness_lufs: float
    true_peak_dbtp: float
    timings: dict[str, float] = field(default_factory=dict)


def track_title(mood: str, seed: int) -> str:
    """A short seeded title such as 'hazy cassette'."""
    rng = random.Random(f"{mood}:{seed}")
    return f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"


def fit_to_plan(score: Score, plan: TrackPlan) -> Score:
    """`score` moved to the plan's tonic (by the smaller interval) and tempo."""
    shift = (plan.tonic - score.tonic) % 12
    if shift > 6:
        shift -= 12
    out = score.transposed(shift) if shift else score
    return replace(out, bpm=float(plan.bpm), tonic=plan.tonic % 12)


def _fade(audio: np.ndarray, sample_rate: int, fade_s: float) -> np.ndarray:
    n = audio.shape[1]
    fin = min(int(0.02 * sample_rate), n)
    audio[:, :fin] *= np.linspace(0, 1, fin, dtype=np.float32)
    fout = min(int(fade_s * sample_rate), n)
    if fout > 0:
        audio[:, n - fout :] *= np.linspace(1, 0, fout, dtype=np.float32) ** 1.5
    return audio


PARTS = ("keys", "bass", "melody", "drums")
MIX_DEFAULTS = {"keys": 0.0, "bass": -1.0, "melody": 1.0, "drums": 0.0}  # LU relative to the reference level
STEM_LUFS = -22.0  # each part is brought to about this loudness before the effects


_STEM_POOL: ThreadPoolExecutor | None = None
_STEM_POOL_LOCK = threading.Lock()


def _stem_pool() -> ThreadPoolExecutor:
    """The threads that render stems, one per core, each keeping its own synthesizer loaded (`music.synth`)."""
    global _STEM_POOL
    with _STEM_POOL_LOCK:
        if _STEM_POOL is None:
            _STEM_POOL = ThreadPoolExecutor(max(1, os.cpu_count() or 1), thread_name_prefix="lofi-synth")
        return _STEM_POOL


def warm_up(
    soundfont: Path = DEFAULT_SOUNDFONT, groove_dir: Path | None = None, cache_dir: Path | None = None
) -> None:
    """Load what the first render would otherwise wait for: the groove library and, in every stem thread,
    a synthesizer with the soundfont loaded. A process can run this in the background while it loads its
    models (`lofi generate` does); any failure is left for the real render to report."""
    load_library(groove_dir, cache_dir)
    if not synth.available():
        return
    check_soundfont(soundfont)
    pool = _stem_pool()
    workers = pool._max_workers
    ready = threading.Barrier(workers)

    def load_one():  # the barrier holds each thread until all have one: every thread loads its own synth
        synth.thread_synth(soundfont, SAMPLE_RATE, 0.5)
        ready.wait(timeout=60)

    for f in [pool.submit(load_one) for _ in range(workers)]:
        f.result()


def render_stems(
    arrangement, soundfont: Path, seconds: float, *, in_process: bool | None = None
) -> dict[str, np.ndarray]:
    """One FluidSynth render per part that has notes, in parallel; RenderError if all are silent.

    In-process (pyfluidsynth, a synth kept loaded per thread) when available, else the command line.
    """
    parts = [p for p in PARTS if any(n.part == p for n in arrangement.notes)]
    if not parts:
        raise RenderError("the arrangement has no notes to render")
    check_soundfont(soundfont)
    if in_process is None:
        in_process = synth.available()
    if in_process:
        pool = _stem_pool()

        def one(part):
            return synth.thread_synth(soundfont, SAMPLE_RATE, 0.5).render(arrangement.midi((part,)), seconds)

        futures = {p: pool.submit(one, p) for p in parts}
        stems = {p: f.result() for p, f in futures.items()}
    else:
        with tempfile.TemporaryDirectory(prefix="lofi-stems-") as tmp, ThreadPoolExecutor(len(parts)) as pool:
            futures = {
                p: pool.submit(
                    render_midi,
                    arrangement.write(Path(tmp) / f"{p}.mid", (p,)),
                    soundfont,
                    seconds=seconds,
                    gain=0.5,
                    allow_silent=True,
                )
                for p in parts
            }
            stems = {p: f.result() for p, f in futures.items()}
    if max(float(np.max(np.abs(a))) for a in stems.values()) < SILENCE_PEAK:
        raise RenderError(f"the track rendered silent with {soundfont} (broken soundfont?)")
    return stems


def _level(audio: np.ndarray) -> float:
    """A quick loudness estimate (LUFS) from every third sample."""
    return loudness(audio[:, ::3], SAMPLE_RATE // 3)


def balance(stems: dict[str, np.ndarray], mix: dict | None, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """(music, drums): every part brought to `STEM_LUFS` plus the mood's `[mix]` offset, measured on the
    rendered audio (GM instruments differ by 15 dB and more in level), then the pitched parts summed."""
    offsets = {**MIX_DEFAULTS, **{k: float(v) for k, v in (mix or {}).items() if k in MIX_DEFAULTS}}
    n = int(round(seconds * SAMPLE_RATE))
    music = np.zeros((2, n), dtype=np.float32)
    drums = np.zeros((2, n), dtype=np.float32)
    for part, audio in stems.items():
        level = _level(audio)  # a decimated estimate is plenty for a gain
        if not np.isfinite(level):
            continue
        gain = np.float32(10 ** ((STEM_LUFS + offsets[part] - level) / 20.0))
        target = drums if part == "drums" else music
        target += audio * gain
    return music, drums


def render_track(
    score: Score,
    plan: TrackPlan,
    out_dir: Path,
    *,
    soundfont: Path = DEFAULT_SOUNDFONT,
    size_limit: int = UPLOAD_LIMIT_BYTES,
    progress: Progress | None = None,
    groove_dir: Path | None = None,
    cache_dir: Path | None = None,
) -> TrackFiles:
    """Arrange, render, mix, master and encode one track; blocking and CPU-bound (run it in a worker).

    Args:
        score: the decoded generated score (at the plan's tonic, or at tonic 0: it is moved to the plan's).
        plan: the track plan (mood, tempo, key, bars, seed).
        out_dir: where the .mp3, .mid and .png go (created if needed).
        soundfont: .sf2 file (default: the General MIDI font of fluid-soundfont-gm).
        size_limit: maximum MP3 size in bytes.
        progress: called with Stage.ARRANGING, RENDERING, MASTERING and ENCODING as each starts.
        groove_dir: the drum groove corpus (default: the bundled one).
        cache_dir: where the extracted groove library is cached (default: not cached on disk).
    Returns:
        The files and facts of the track.
    Raises:
        RenderError: soundfont or FluidSynth problems, silent output.
    """
    report = progress or (lambda *_: None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seed = plan.request.seed
    mood = plan.mood
    title = score.title or track_title(mood.name, seed)
    slug = re.sub(r"[^a-z0-9]+", "-", f"{title}-{mood.name}-{seed}".lower()).strip("-")
    timings: dict[str, float] = {}
    sound = mood.sound or {}

    report(Stage.ARRANGING)
    t = time.perf_counter()
    fitted = fit_to_plan(score, plan)
    library = load_library(groove_dir, cache_dir)
    arrangement = arrange(fitted, sound, n_bars=plan.n_bars, seed=seed, title=title, library=library)
    # exactly the asked length: whole bars, and any remainder (under a bar) is the final chord ringing out
    seconds = plan.length_s if plan.length_s > 0 else arrangement.seconds
    tail_s = max(seconds - arrangement.seconds, 0.0)
    if tail_s > 0:
        arrangement = replace(arrangement, ring_ticks=int(round(tail_s * arrangement.bpm / 60.0 * MIDI_TPB)))
    midi_path = arrangement.write(out_dir / f"{slug}.mid")
    timings["arrange"] = time.perf_counter() - t

    report(Stage.RENDERING)
    t = time.perf_counter()
    stems = render_stems(arrangement, Path(soundfont), seconds)
    music_audio, drums_audio = balance(stems, sound.get("mix"), seconds)
    timings["render"] = time.perf_counter() - t

    t = time.perf_counter()
    fx = effects.settings(sound.get("effects"))
    # the ambience sits under the music: its level follows the dry stems' RMS (close enough to the wet mix)
    rms = float(np.sqrt(np.mean(np.square(music_audio[:, ::7] + drums_audio[:, ::7]))))

    def chain(process, dry, *args):
        wet = process(dry, SAMPLE_RATE, fx, *args)
        return wet, _level(wet) - _level(dry)  # how much louder the chain made it

    def drums_and_ambience():
        wet, change = chain(effects.process_drums, drums_audio)
        return wet, change, amb.ambience(wet.shape[1], SAMPLE_RATE, sound.get("ambience"), rms, seed)

    # pedalboard and numpy release the GIL: the two halves run in parallel
    with ThreadPoolExecutor(2) as pool:
        music_f = pool.submit(chain, effects.process_music, music_audio, seed)
        drums_wet, drums_change, ambience = pool.submit(drums_and_ambience).result()
        music_wet, music_change = music_f.result()
    # the chains compress and colour differently: keep the drums where the mix put them relative to the music
    if np.isfinite(drums_change) and np.isfinite(music_change):
        drums_wet *= np.float32(10 ** ((music_change - drums_change) / 20.0))
    mix = music_wet + drums_wet + ambience
    bar_s = arrangement.seconds / max(plan.n_bars, 1)
    fade_s = min(8.0, max(bar_s, arrangement.fade_bars * bar_s * 0.5, tail_s))
    mix = _fade(mix, SAMPLE_RATE, min(fade_s, seconds))
    timings["effects"] = time.perf_counter() - t

    report(Stage.MASTERING)
    t = time.perf_counter()
    mastered, lufs, tp = master(mix, SAMPLE_RATE)
    timings["master"] = time.perf_counter() - t

    report(Stage.ENCODING)
    key = arrangement.key
    tags = {
        "title": title,
        "artist": "lofi bot",
        "album": f"lofi {mood.name}",
        "genre": "LoFi",
        "comment": f"mood={mood.name} bpm={plan.bpm:.1f} key={key} seed={seed}",
        "TBPM": str(round(plan.bpm)),
        "TKEY": mido_key(arrangement.tonic, arrangement.mode),  # ID3 spelling: "Dm", "Eb"
        "mood": mood.name,
        "seed": str(seed),
    }
    with ThreadPoolExecutor(1) as pool:
        t_cover = time.perf_counter()

        def cover_job():
            write_cover(
                arrangement.notes,
                arrangement.total_ticks,
                out_dir / f"{slug}.png",
                title=title,
                subtitle=f"{mood.name} \u00b7 {key} \u00b7 {plan.bpm:.0f} bpm",
                colors=(sound.get("cover") or {}).get("colors"),
            )
            return time.perf_counter() - t_cover

        cover_f = pool.submit(cover_job)
        t = time.perf_counter()
        mp3_path, kbps = write_mp3(
            mastered, SAMPLE_RATE, out_dir / f"{slug}.mp3", tags=tags, size_limit=size_limit
        )
        timings["encode"] = time.perf_counter() - t
        timings["cover"] = cover_f.result()
    log.info(
        "rendered %s (%s, %.1f s, %d kbps, %.1f LUFS, %.1f dBTP) in %s",
        mp3_path.name,
        mood.name,
        seconds,
        kbps,
        lufs,
        tp,
        {k: round(v, 2) for k, v in timings.items()},
    )
    return TrackFiles(
        mp3=mp3_path,
        midi=midi_path,
        cover=out_dir / f"{slug}.png",
        duration_s=mastered.shape[1] / SAMPLE_RATE,
        bpm=float(plan.bpm),
        key=key,
        mood=mood.name,
        seed=seed,
        title=title,
        loudness_lufs=lufs,
        true_peak_dbtp=tp,
        timings=timings,
    )
