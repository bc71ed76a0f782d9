"""Drum grooves from the Groove MIDI Dataset: per-bar 4/4 patterns with their micro-timing and velocities.

Each pattern is one bar of a real performance: hits as (onset in quarter-note beats from the bar start,
GM drum note, velocity). Onsets keep the drummer's timing off the grid, so a pattern played at any tempo
keeps its feel. Fills come from the dataset's `fill` files. The library is extracted once and cached as JSON.
"""

from __future__ import annotations

import csv
import json
import logging
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import mido

log = logging.getLogger(__name__)

LIBRARY_VERSION = 2  # 2: open-hat notes played with the pedal closed are closed hats (`hat_note`)
DEFAULT_STYLES = ("hiphop", "soul", "jazz", "funk")
# Roland TD-11 (the dataset's kit) -> General MIDI drum notes, as in the dataset's own documentation.
GM_MAP = {
    36: 36,
    38: 38,
    40: 38,
    37: 37,
    48: 50,
    50: 50,
    45: 47,
    47: 47,
    43: 43,
    58: 43,
    46: 46,
    26: 46,
    42: 42,
    22: 42,
    44: 44,
    49: 49,
    55: 49,
    57: 49,
    52: 49,
    51: 51,
    59: 51,
    53: 51,
}
KICK, SNARE, RIM, CLOSED_HAT, PEDAL_HAT, OPEN_HAT, RIDE, CRASH = 36, 38, 37, 42, 44, 46, 51, 49
# The TD-11's hi-hat sound follows the pedal (control change 4: 0 = open, 90 = pressed shut in this dataset),
# whichever of its notes (46/26 open, 42/22 closed) the module sent: 17-20% of the dataset's open-hat notes were
# struck with the pedal fully down. At or above this the hat sounds closed; the closed notes' pedal lies here
# 95% of the time (their 5th percentile is 34-83, the open notes' median 33-35).
HAT_PEDAL_CLOSED = 60
HAT_CONTROL = 4
CYMBALS = {CRASH}
TOMS = {43, 47, 50}


@dataclass(frozen=True)
class Pattern:
    """One bar of drums: `hits` are (beat offset within the bar, GM note, velocity); `style`/`bpm` of the source."""

    hits: tuple[tuple[float, int, int], ...]
    style: str
    bpm: float
    source: str


# The bundled corpus's grooves; the entry layer passes `<DATA_DIR>/groove` when the settings say otherwise.
BUNDLED_GROOVE_DIR = Path(__file__).resolve().parent.parent / "data" / "corpus" / "groove"


def default_groove_dir() -> Path:
    """The bundled groove corpus (data/corpus/groove)."""
    return BUNDLED_GROOVE_DIR


def hat_note(gm_note: int, pedal: int | None) -> int:
    """The General MIDI note of a hit as the dataset's kit sounded it: an open-hat note struck with the hi-hat
    pedal down (control change 4 at or above `HAT_PEDAL_CLOSED`) is a closed hat; other notes are unchanged.
    `pedal` None: no pedal message yet (the note as sent)."""
    if gm_note == OPEN_HAT and pedal is not None and pedal >= HAT_PEDAL_CLOSED:
        return CLOSED_HAT
    return gm_note


def _bars_of(path: Path, beats_per_bar: int = 4) -> list[list[tuple[float, int, int]]]:
    """The hits of a MIDI file grouped by 4/4 bar, onsets in beats from each bar's start; hi-hat openness
    from the pedal (`hat_note`)."""
    mid = mido.MidiFile(path)
    tpb = mid.ticks_per_beat
    bars: dict[int, list[tuple[float, int, int]]] = {}
    for track in mid.tracks:
        tick, pedal = 0, None
        for msg in track:
            tick += msg.time
            if msg.type == "control_change" and msg.control == HAT_CONTROL:
                pedal = int(msg.value)
            elif msg.type == "note_on" and msg.velocity > 0 and msg.note in GM_MAP:
                beat = tick / tpb
                # a hit a few ms before the bar line belongs to the next bar (pushed downbeat)
                bar = int((beat + 0.12) // beats_per_bar)
                note = hat_note(GM_MAP[msg.note], pedal)
                bars.setdefault(bar, []).append(
                    (round(beat - bar * beats_per_bar, 4), note, int(msg.velocity))
                )
    if not bars:
        return []
    return [sorted(bars.get(b, [])) for b in range(max(bars) + 1)]


def extract_library(groove_dir: Path, styles: tuple[str, ...] = DEFAULT_STYLES) -> dict:
    """Beat and fill patterns of the 4/4 performances in `groove_dir` (info.csv) whose style is in `styles`."""
    info = Path(groove_dir) / "info.csv"
    beats, fills = [], []
    with info.open(newline="") as fh:
        for row in csv.DictReader(fh):
            style = row["style"].split("/")[0]
            if style not in styles or row["time_signature"] != "4-4":
                continue
            path = Path(groove_dir) / row["midi_filename"]
            try:
                bars = _bars_of(path)
            except (OSError, ValueError, EOFError) as exc:  # a broken file: skip it, keep the rest
                log.warning("skipping groove file %s: %s", path, exc)
                continue
            bpm = float(row["bpm"])
            if row["beat_type"] == "fill":
                full = [b for b in bars if len(b) >= 4]
                if full:
                    fills.append(
                        {"hits": max(full, key=len), "style": style, "bpm": bpm, "source": row["id"]}
                    )
                continue
            # the first and last bars are often count-ins or endings; keep up to 12 grooving bars per file
            for b in bars[1:-1][:12]:
                notes = {n for _, n, _ in b}
                if (
                    KICK in notes
                    and (SNARE in notes or RIM in notes)
                    and 6 <= len(b) <= 48
                    and not notes & TOMS
                ):
                    beats.append({"hits": b, "style": style, "bpm": bpm, "source": row["id"]})
    return {"version": LIBRARY_VERSION, "beats": beats, "fills": fills}


@lru_cache(maxsize=4)
def load_library(groove_dir: Path | None = None, cache_dir: Path | None = None) -> GrooveLibrary:
    """The groove library of `groove_dir`, read from the JSON cache in `cache_dir` or extracted (and cached).

    Without `cache_dir` the library is extracted and kept in this process only."""
    if groove_dir is None:
        groove_dir = default_groove_dir()
    cache = Path(cache_dir) / f"groove_library_v{LIBRARY_VERSION}.json" if cache_dir is not None else None
    data = None
    if cache is not None and cache.exists():
        try:
            data = json.loads(cache.read_text())
            if data.get("version") != LIBRARY_VERSION or data.get("root") != str(Path(groove_dir).resolve()):
                data = None
        except (OSError, ValueError):
            data = None
    if data is None:
        if not (Path(groove_dir) / "info.csv").exists():
            log.warning("no groove corpus at %s; using a built-in boom-bap pattern", groove_dir)
            return GrooveLibrary([FALLBACK], [])
        data = extract_library(Path(groove_dir))
        data["root"] = str(Path(groove_dir).resolve())
        if cache is not None:
            _write_cache(cache, data)

    def mk(d):
        return Pattern(
            tuple((float(t), int(n), int(v)) for t, n, v in d["hits"]), d["style"], d["bpm"], d["source"]
        )

    return GrooveLibrary([mk(d) for d in data["beats"]] or [FALLBACK], [mk(d) for d in data["fills"]])


def _write_cache(cache: Path, data: dict) -> None:
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(cache)
    except OSError as exc:
        log.warning("cannot cache the groove library at %s: %s", cache, exc)


# A plain boom-bap bar for when no corpus is present (tests of other packages, fresh checkouts).
FALLBACK = Pattern(
    tuple(
        [(0.0, KICK, 100), (1.0, SNARE, 96), (1.75, KICK, 70), (2.5, KICK, 90), (3.0, SNARE, 100)]
        + [(i * 0.5 + (0.04 if i % 2 else 0.0), CLOSED_HAT, 70 if i % 2 else 84) for i in range(8)]
    ),
    "hiphop",
    88.0,
    "builtin",
)


class GrooveLibrary:
    """Beat and fill patterns, chosen by style, tempo and a seeded RNG."""

    def __init__(self, beats: list[Pattern], fills: list[Pattern]):
        self.beats = beats
        self.fills = fills

    def _pick(self, pool: list[Pattern], styles, bpm: float, rng: random.Random, k: int) -> list[Pattern]:
        cands = [p for p in pool if p.style in styles] or pool
        if not cands:
            return []
        # prefer performances near the track's tempo: their micro-timing was played at that speed
        cands = sorted(cands, key=lambda p: (abs(p.bpm - bpm), p.source, p.hits))[: max(k * 6, 24)]
        picked = rng.sample(cands, min(k, len(cands)))
        return picked + [picked[-1]] * (k - len(picked))

    def beats_for(self, styles, bpm: float, rng: random.Random, k: int = 2) -> list[Pattern]:
        """`k` beat patterns of the given styles near `bpm`."""
        return self._pick(self.beats, styles, bpm, rng, k)

    def fill_for(self, styles, bpm: float, rng: random.Random) -> Pattern | None:
        """One fill of the given styles near `bpm` (None without fills)."""
        got = self._pick(self.fills, styles, bpm, rng, 1)
        return got[0] if got else None


def shape_pattern(
    pattern: Pattern, feel: dict, rng: random.Random, beats_per_bar: float = 4.0, fill: bool = False
) -> list[tuple[float, int, int]]:
    """A pattern adapted to a mood's drum `feel`: swing, ghost-note threshold, hat/kick/snare levels, rim-shot
    snare, no crashes; hits beyond the bar (for metres shorter than 4/4) are dropped.

    Args:
        pattern: the source bar.
        feel: the mood's `[drums]` table (swing, ghost_min, velocity, hat_level, snare, ride).
        rng: seeded RNG for the small velocity variations.
        beats_per_bar: quarter-note beats in the target bar.
        fill: keep toms (fills).
    Returns:
        (beat offset, GM note, velocity) hits.
    """
    swing = float(feel.get("swing", 0.0))  # 0 = as played, 1 = off-beats moved a full triplet late
    ghost_min = int(feel.get("ghost_min", 0))
    scale = float(feel.get("velocity", 0.85))
    hat = float(feel.get("hat_level", 0.8))
    snare_note = RIM if feel.get("snare") == "rim" else SNARE
    ride_to_hat = not feel.get("ride", False)
    sixteenths = bool(feel.get("sixteenths", True))  # False: cymbals on 8ths only, a sparser groove
    out = []
    for t, n, v in pattern.hits:
        if n in CYMBALS or (n in TOMS and not fill):
            continue
        if v < ghost_min:
            continue
        if n == SNARE and snare_note == RIM and v < 110:
            n = RIM
        if n == RIDE and ride_to_hat:
            n = CLOSED_HAT
        grid = round(t * 4) / 4  # nearest 16th of the written part
        if not sixteenths and n in (CLOSED_HAT, PEDAL_HAT, OPEN_HAT, RIDE) and abs(grid % 0.5 - 0.25) < 1e-6:
            continue
        if abs(grid % 1.0 - 0.5) < 1e-6:  # off-beat 8th: late by up to a triplet 8th (swing 1.0)
            t += swing / 6
        elif abs(grid % 0.5 - 0.25) < 1e-6:  # off-beat 16th
            t += swing / 12
        level = hat if n in (CLOSED_HAT, PEDAL_HAT, OPEN_HAT, RIDE) else 1.0
        vel = int(round(v * scale * level * rng.uniform(0.93, 1.05)))
        if t < -0.2 or t >= beats_per_bar - 0.02:
            continue
        out.append((t, n, max(1, min(127, vel))))
    return out
