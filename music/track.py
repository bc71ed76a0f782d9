"""One track from a generated score: arrange -> the two buses (FluidSynth + effects) -> mix with the ambience
-> master -> MP3 and cover; `render_track` runs the steps, one function each."""

from __future__ import annotations

import errno
import logging
import random
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from music import buses, synth
from music.arrange import MIDI_TPB, Arrangement, arrange, mido_key
from music.drums import GrooveLibrary, load_library
from music.errors import OutOfSpace
from music.export import write_cover, write_mp3
from music.master import master
from music.progress import Progress, Stage
from music.render_config import SAMPLE_RATE, RenderConfig
from music.request import TrackPlan
from music.score import Score

log = logging.getLogger(__name__)

RADIO_DECLICK_S = 0.05  # a radio piece's only fade-out: the cut at its last bar line, should it play alone

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


def warm_up(render: RenderConfig | None = None) -> None:
    """Load what the first render would otherwise wait for: the groove library and each bus thread's
    synthesizer with the soundfont loaded. A process can run this in the background while it loads its
    models (`lofi generate` and `lofi bot` do); any failure is left for the real render to report."""
    render = render or RenderConfig()
    load_library(render.groove_dir, render.cache_dir)
    if synth.available():
        buses.warm_up(render.soundfont)


def render_track(
    score: Score,
    plan: TrackPlan,
    out_dir: Path,
    *,
    render: RenderConfig | None = None,
    progress: Progress | None = None,
) -> TrackFiles:
    """Arrange, render, mix, master and encode one track; blocking and CPU-bound (run it in a worker).

    Args:
        score: the decoded generated score (at the plan's tonic, or at tonic 0: it is moved to the plan's).
        plan: the track plan (mood, tempo, key, bars, seed).
        out_dir: where the .mp3, .mid and .png go (created if needed).
        render: the soundfont, the drum groove corpus (and its cache) and the largest MP3 in bytes (default:
            `RenderConfig()`: the General MIDI font of fluid-soundfont-gm, the bundled grooves, no cache,
            Discord's upload limit).
        progress: called with Stage.ARRANGING, RENDERING, MASTERING and ENCODING as each starts.
    Returns:
        The files and facts of the track.
    Raises:
        RenderError: soundfont or FluidSynth problems, silent output; OutOfSpace (one) for a full disk.
        Whatever fails, the track's files are removed.
    """
    out_dir = Path(out_dir)
    title = score.title or track_title(plan.mood.name, plan.request.seed)
    slug = re.sub(r"[^a-z0-9]+", "-", f"{title}-{plan.mood.name}-{plan.request.seed}".lower()).strip("-")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        return _render_files(score, plan, out_dir, slug, title, render or RenderConfig(), progress)
    except BaseException as exc:
        # A failed track leaves nothing: a partial MP3, or a 0-byte MIDI of a full disk, is never a result.
        for suffix in (".mid", ".mp3", ".png"):
            (out_dir / f"{slug}{suffix}").unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise OutOfSpace(f"the disk is full: cannot write the track in {out_dir}") from exc
        raise


def _render_files(
    score: Score,
    plan: TrackPlan,
    out_dir: Path,
    slug: str,
    title: str,
    render: RenderConfig,
    progress: Progress | None,
) -> TrackFiles:
    """`render_track`'s steps, writing `slug`.mid, .mp3 and .png in `out_dir`."""
    report = progress or (lambda *_: None)
    timings: dict[str, float] = {}
    report(Stage.ARRANGING)
    with _timer(timings, "arrange"):
        arrangement, seconds = arrange_track(
            score, plan, title, load_library(render.groove_dir, render.cache_dir)
        )
        midi_path = arrangement.write(out_dir / f"{slug}.mid")
    report(Stage.RENDERING)
    mix = _mix_buses(arrangement, plan, Path(render.soundfont), seconds, timings)
    report(Stage.MASTERING)
    with _timer(timings, "master"):
        mastered, lufs, tp = master(mix, SAMPLE_RATE)
    report(Stage.ENCODING)
    mp3_path, cover_path, kbps = _export(
        mastered, arrangement, plan, out_dir, slug, render.size_limit, timings
    )
    files = TrackFiles(
        mp3=mp3_path,
        midi=midi_path,
        cover=cover_path,
        duration_s=mastered.shape[1] / SAMPLE_RATE,
        bpm=float(plan.bpm),
        key=arrangement.key,
        mood=plan.mood.name,
        seed=plan.request.seed,
        title=title,
        loudness_lufs=lufs,
        true_peak_dbtp=tp,
        timings=timings,
    )
    _log_rendered(files, seconds, kbps)
    return files


@contextmanager
def _timer(timings: dict[str, float], name: str) -> Iterator[None]:
    """Adds the seconds the block takes as timings[name] (`TrackFiles.timings`, logged and benchmarked)."""
    t = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - t


def _log_rendered(files: TrackFiles, seconds: float, kbps: int) -> None:
    """One log line per track: what was made and how long each step took."""
    log.info(
        "rendered %s (%s, %.1f s, %d kbps, %.1f LUFS, %.1f dBTP) in %s",
        files.mp3.name,
        files.mood,
        seconds,
        kbps,
        files.loudness_lufs,
        files.true_peak_dbtp,
        {k: round(v, 2) for k, v in files.timings.items()},
    )


def arrange_track(
    score: Score, plan: TrackPlan, title: str, library: GrooveLibrary
) -> tuple[Arrangement, float]:
    """(arrangement, seconds): `score` fitted to the plan and arranged for exactly the asked length: whole
    bars, and any remainder (under a bar) is the final chord ringing out. A radio piece is its whole bars
    alone: a lone chord ringing would sag under the crossfade into the next piece."""
    fitted = fit_to_plan(score, plan)
    radio = plan.request.radio
    arrangement = arrange(
        fitted,
        plan.mood.sound or {},
        n_bars=plan.n_bars,
        seed=plan.request.seed,
        title=title,
        library=library,
        edges=not radio,
    )
    seconds = plan.length_s if plan.length_s > 0 and not radio else arrangement.seconds
    tail_s = max(seconds - arrangement.seconds, 0.0)
    if tail_s > 0:
        arrangement = replace(arrangement, ring_ticks=int(round(tail_s * arrangement.bpm / 60.0 * MIDI_TPB)))
    return arrangement, seconds


def _mix_buses(
    arrangement: Arrangement, plan: TrackPlan, soundfont: Path, seconds: float, timings: dict[str, float]
) -> np.ndarray:
    """The track's mix before mastering: the two buses (music, drums) rendered and mixed over the ambience
    bed, faded in and out; `seconds` long (the final chord rings past the bars when they are shorter).

    Times the buses as timings['stems'] and the mixing as timings['mix'].
    """
    sound = plan.mood.sound or {}
    with _timer(timings, "stems"):
        music, drums, bed = buses.render_buses(arrangement, soundfont, seconds, sound, plan.request.seed)
    with _timer(timings, "mix"):
        return _mix(arrangement, plan, seconds, music, drums, bed)


def _mix(
    arrangement: Arrangement,
    plan: TrackPlan,
    seconds: float,
    music: buses.Bus,
    drums: buses.Bus,
    bed: np.ndarray,
) -> np.ndarray:
    """The buses over the ambience `bed` (mixed in place in it), faded in and out."""
    mix = bed  # the bed is ours: the mix is built in it
    mix *= bed_gain(music, drums)
    if music.wet is not None:
        mix += music.wet
    if drums.wet is not None:
        mix += drums.wet * drum_gain(music, drums)
    return _fade(mix, SAMPLE_RATE, fade_seconds(arrangement, plan, seconds))


def bed_gain(music: buses.Bus, drums: buses.Bus) -> np.float32:
    """The ambience bed's gain in the mix: it sits under the music, its level following the dry buses' RMS
    (close enough to the wet mix; the buses are uncorrelated, so their mean squares add)."""
    return np.float32(np.sqrt(music.dry_mean_square + drums.dry_mean_square))


def drum_gain(music: buses.Bus, drums: buses.Bus) -> np.float32:
    """The wet drums' gain in the mix: the chains compress and colour differently, so the drums are kept
    where the balance put them next to the music."""
    both = np.isfinite(drums.change) and np.isfinite(music.change)
    return np.float32(10 ** ((music.change - drums.change) / 20.0) if both else 1.0)


def fade_seconds(arrangement: Arrangement, plan: TrackPlan, seconds: float) -> float:
    """How long the mix fades out: the outro's half, at least a bar, or the final chord's ring, at most 8 s.
    A radio piece only loses the click of its cut (the radio's crossfade is its fade)."""
    if plan.request.radio:
        return min(RADIO_DECLICK_S, seconds)
    tail_s = max(seconds - arrangement.seconds, 0.0)
    bar_s = arrangement.seconds / max(plan.n_bars, 1)
    fade_s = min(8.0, max(bar_s, arrangement.fade_bars * bar_s * 0.5, tail_s))
    return min(fade_s, seconds)


def fade_envelope(n: int, fade_s: float) -> np.ndarray:
    """(1, n) float32: the gain `_fade` applies to each sample (the stems take it apart from the mix)."""
    return _fade(np.ones((1, n), dtype=np.float32), SAMPLE_RATE, fade_s)


def _tags(arrangement: Arrangement, plan: TrackPlan) -> dict[str, str]:
    """The MP3's tags: title, artist, album and genre, and the mood, tempo, key and seed that make it again."""
    mood, seed = plan.mood.name, plan.request.seed
    return {
        "title": arrangement.title,
        "artist": "lofi bot",
        "album": f"lofi {mood}",
        "genre": "LoFi",
        "comment": f"mood={mood} bpm={plan.bpm:.1f} key={arrangement.key} seed={seed}",
        "TBPM": str(round(plan.bpm)),
        "TKEY": mido_key(arrangement.tonic, arrangement.mode),  # ID3 spelling: "Dm", "Eb"
        "mood": mood,
        "seed": str(seed),
    }


def _export(
    mastered: np.ndarray,
    arrangement: Arrangement,
    plan: TrackPlan,
    out_dir: Path,
    slug: str,
    size_limit: int,
    timings: dict[str, float],
) -> tuple[Path, Path, int]:
    """(MP3 path, cover path, kbps): the mastered audio encoded with its tags (`_tags`) to `slug`.mp3 in
    `out_dir`, at most `size_limit` bytes, while the cover is drawn to `slug`.png on a second thread.

    Times the encoding as timings['encode'] and the cover as timings['cover'].
    """
    mood = plan.mood
    mp3_path, cover_path = out_dir / f"{slug}.mp3", out_dir / f"{slug}.png"
    with ThreadPoolExecutor(1) as pool:
        t_cover = time.perf_counter()

        def cover_job():
            write_cover(
                arrangement.notes,
                arrangement.total_ticks,
                cover_path,
                title=arrangement.title,
                subtitle=f"{mood.name} \u00b7 {arrangement.key} \u00b7 {plan.bpm:.0f} bpm",
                colors=((mood.sound or {}).get("cover") or {}).get("colors"),
            )
            return time.perf_counter() - t_cover

        cover_f = pool.submit(cover_job)
        with _timer(timings, "encode"):
            written, kbps = write_mp3(
                mastered, SAMPLE_RATE, mp3_path, tags=_tags(arrangement, plan), size_limit=size_limit
            )
        timings["cover"] = cover_f.result()
    return written, cover_path, kbps
