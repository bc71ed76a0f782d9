"""A track request (what a user asks for) and the plan it becomes (every musical choice, fixed by the seed)."""

from __future__ import annotations

import math
import random
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from music.arrange import plan_sections
from music.errors import MoodError
from music.form import BarPlan, plan_form
from music.keys import key_text, parse_key
from music.limits import LONGEST_TRACK_S, MAX_BPM, MIN_BPM, SEED_MAX, quoted
from music.score import TICKS_PER_BEAT, bar_ticks
from music.tokens import DENSITIES, Representation

MOODS_FILE = Path(__file__).with_name("moods.toml")
RANDOM_MOOD = "random"


@dataclass(frozen=True)
class Mood:
    """One preset from `moods.toml`. `sound` holds the sections the audio side reads (instruments, effects...)."""

    name: str
    description: str
    mode: str
    tempo: tuple[float, float]
    density: str
    time_signature: tuple[int, int]
    tonics: tuple[int, ...]
    temperature: float
    top_p: float
    sound: dict = field(default_factory=dict, hash=False, compare=False)


@lru_cache(maxsize=4)
def load_moods(path: Path = MOODS_FILE) -> dict[str, Mood]:
    """All presets in `path`; MoodError naming the mood and field for anything malformed."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise MoodError(f"cannot read mood presets {path}: {exc}") from exc
    moods = {}
    known = {"description", "mode", "tempo", "density", "time_signature", "tonics", "temperature", "top_p"}
    for name, d in data.items():
        try:
            mood = Mood(
                name=name,
                description=str(d.get("description", "")),
                mode=d["mode"],
                tempo=(float(d["tempo"][0]), float(d["tempo"][1])),
                density=d["density"],
                time_signature=(int(d["time_signature"][0]), int(d["time_signature"][1])),
                tonics=tuple(int(t) % 12 for t in d["tonics"]),
                temperature=float(d["temperature"]),
                top_p=float(d["top_p"]),
                sound={k: v for k, v in d.items() if k not in known},
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise MoodError(f"mood {name!r} in {path} is malformed: {exc!r}") from exc
        if mood.mode not in ("major", "minor") or mood.density not in DENSITIES or not mood.tonics:
            raise MoodError(f"mood {name!r}: mode, density or tonics out of range")
        if not (20 <= mood.tempo[0] <= mood.tempo[1] <= 300) or not (0 < mood.temperature <= 3):
            raise MoodError(f"mood {name!r}: tempo or temperature out of range")
        moods[name] = mood
    if RANDOM_MOOD in moods:
        raise MoodError(f"'{RANDOM_MOOD}' is reserved")
    return moods


def mood_names() -> list[str]:
    """Every mood a user may ask for, `random` last."""
    return [*load_moods(), RANDOM_MOOD]


@dataclass(frozen=True)
class TrackRequest:
    """What a user asked for: a length in seconds, a mood (or 'random'), a seed, an optional tempo and an
    optional key ("Eb major"; "Eb" alone takes the mood's mode), kept as `music.keys.key_text` writes it.

    `radio`: a piece for the radio, made to be crossfaded with the next: no intro or outro, no fades and no
    final chord ringing past the bars (so it lasts whole bars, up to `length_s`), so a transition keeps the
    level of the music around it. A `/lofi` track (False) is exactly as before."""

    length_s: float
    mood: str
    seed: int
    bpm: float | None = None
    key: str | None = None
    radio: bool = False

    def __post_init__(self):
        if self.mood not in mood_names():
            raise MoodError(f"unknown mood {quoted(self.mood)}; choose one of: {', '.join(mood_names())}")
        if not (
            isinstance(self.length_s, int | float) and self.length_s > 0 and math.isfinite(self.length_s)
        ):
            raise ValueError(f"length must be a positive number of seconds, not {quoted(self.length_s)}")
        if self.length_s > LONGEST_TRACK_S:  # planning and composing grow with the length: bound them first
            raise ValueError(
                f"length must be at most {LONGEST_TRACK_S:.0f} s (one hour), not {quoted(self.length_s)}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= SEED_MAX:
            raise ValueError(f"seed must be a whole number from 0 to {SEED_MAX}, not {quoted(self.seed)}")
        if self.bpm is not None and not (
            isinstance(self.bpm, int | float) and MIN_BPM <= self.bpm <= MAX_BPM
        ):
            raise ValueError(f"tempo must be between {MIN_BPM} and {MAX_BPM} bpm, not {quoted(self.bpm)}")
        if not isinstance(self.radio, bool):
            raise ValueError(f"radio must be true or false, not {quoted(self.radio)}")
        if self.key is not None:
            # One spelling per key, so that equal requests compare equal and the DB and the wire hold one form.
            object.__setattr__(self, "key", key_text(self.key))  # KeyNameError (a ValueError) if not a key


@dataclass(frozen=True)
class TrackPlan:
    """Every musical decision for one track, derived deterministically from a request."""

    request: TrackRequest
    mood: Mood
    mode: str
    tonic: int
    bpm: float
    time_signature: tuple[int, int]
    density: str
    n_bars: int
    header: tuple[str, ...]
    temperature: float
    top_p: float
    form: tuple[BarPlan, ...] = ()

    @property
    def seconds(self) -> float:
        """Exact length of `n_bars` bars at `bpm` (at most `length_s`: the rest is the last chord ringing)."""
        return self.n_bars * bar_ticks(*self.time_signature) / TICKS_PER_BEAT * 60.0 / self.bpm

    @property
    def length_s(self) -> float:
        """The length of the finished track: exactly what was asked for."""
        return float(self.request.length_s)


def fit_bars(
    length_s: float, bpm: float, beats_per_bar: float, tempo: tuple[float, float] | None
) -> tuple[int, float]:
    """(bars, tempo) for a track of `length_s` seconds.

    With a tempo range (the mood's), the bar count whose exact tempo lies in the range and nearest `bpm`:
    the bars then fill `length_s` exactly. When no whole number of bars fits the range (short tracks, narrow
    ranges), or the tempo is fixed (`tempo` None: the user asked for one), the most whole bars that fit, at
    the range's fastest tempo or at `bpm`; the remainder (under one bar) is the final chord ringing out.
    """
    bar_s = lambda b: beats_per_bar * 60.0 / b  # noqa: E731
    if tempo is not None:
        lo, hi = tempo
        first = max(2, math.ceil(length_s / bar_s(lo) - 1e-9))
        last = math.floor(length_s / bar_s(hi) + 1e-9)
        if first <= last:
            # the tempo grows with the bar count: the nearest is one of the two counts around `bpm`'s
            # (constant time: no list of every count in range, which was millions for long lengths)
            ideal = length_s * bpm / (beats_per_bar * 60.0)
            near = {min(max(c, first), last) for c in (math.floor(ideal), math.ceil(ideal))}
            n = min(near, key=lambda c: (abs(c * beats_per_bar * 60.0 / length_s - bpm), c))
            return n, n * beats_per_bar * 60.0 / length_s
        bpm = hi
    return max(2, math.floor(length_s / bar_s(bpm) + 1e-9)), float(bpm)


def plan_track(request: TrackRequest, rep: Representation | None = None) -> TrackPlan:
    """The plan for `request`: mood resolved, key and tempo drawn from the seed unless asked for, length in
    whole bars.

    The tempo is fitted within the mood's range so that whole bars fill the requested seconds exactly
    (`fit_bars`); where they cannot, the final chord rings out over the remainder. Either way the track is
    exactly `request.length_s` long.
    """
    rep = rep or Representation()
    rng = random.Random(request.seed)
    moods = load_moods()
    name = request.mood if request.mood != RANDOM_MOOD else rng.choice(sorted(moods))
    mood = moods[name]
    bpm = request.bpm if request.bpm is not None else round(rng.uniform(*mood.tempo))
    beats_per_bar = bar_ticks(*mood.time_signature) / TICKS_PER_BEAT
    n_bars, bpm = fit_bars(
        request.length_s, bpm, beats_per_bar, None if request.bpm is not None else mood.tempo
    )
    tonic, mode = rng.choice(mood.tonics), mood.mode  # drawn even with a key: nothing after reads `rng`
    if request.key is not None:
        # The header's mode is what the models write in and the tonic is where the decoder places their
        # tonic-relative music, so the asked-for key is the key the track is in.
        tonic, asked = parse_key(request.key)
        mode = asked or mood.mode
    header = tuple(rep.header(mode, mood.time_signature, bpm, mood.density))
    return TrackPlan(
        request,
        mood,
        mode,
        tonic,
        float(bpm),
        mood.time_signature,
        mood.density,
        n_bars,
        header,
        mood.temperature,
        mood.top_p,
        plan_form(plan_sections(n_bars, edges=not request.radio), mood.density, request.seed),
    )
