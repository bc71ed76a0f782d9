"""Per-track features of an arranged MIDI file, as a listener would judge the track.

The input is the arranger's output (`music.arrange.Arrangement.write`): a type-1 MIDI file with a conductor
track (tempo, time and key signature) and one track per part, named after it: `keys` (Rhodes, channel 1),
`bass` (channel 2), `melody` (channel 3) and `drums` (channel 10). The file is read back with mido alone, so
these numbers do not depend on the arranger's own objects: the melody is the track named `melody` (or, in a
file without track names, the notes on the arranger's melody channel). Onsets are humanised by the arranger
(a few milliseconds); every onset is snapped back to the 12-per-beat grid of `music.score` before it is used.

The features (see `FEATURES`), each a number per track:

- `notes_per_bar`: melody notes (all of them, chords included) per bar.
- `empty_bars`: share of bars in which no melody note sounds (onset or held note).
- `mean_interval`: mean absolute interval in semitones between consecutive melody notes (the top note of an
  onset with several), leaving out pairs separated by a rest longer than a bar (a phrase boundary).
- `leaps`: share of those intervals wider than a fifth (more than 7 semitones).
- `pitch_class_entropy`: Shannon entropy (bits) of the melody's pitch-class histogram. MusPy's
  `pitch_class_entropy`, applied to the melody track.
- `scale_consistency`: the largest share of melody notes inside one major or (natural) minor scale, over all
  24. MusPy's `scale_consistency`, applied to the melody track.
- `groove_consistency`: 1 - mean Hamming distance between the onset patterns (one slot per grid tick) of
  consecutive bars, divided by the slots per bar. MusPy's `groove_consistency`
  (Wu & Yang 2020, after Yang & Lerch 2018), applied to the melody's snapped onsets and the file's own bars
  (MusPy counts one extra bar past the last note's end; here a track has exactly its bars).
- `phrase_similarity`: how much the melody comes back. A 2-bar window starts at every bar; its content is the
  set of (onset within the window in grid ticks, MIDI pitch) of the notes starting in it. Two windows are
  compared by the Jaccard index of their sets (1 = the same notes at the same places, 0 = nothing shared).
  For every non-empty window the best match among the earlier windows that end before it starts is taken,
  and these best matches are averaged (windows with no earlier non-overlapping window are left out). A
  phrase played twice scores 1; independent random notes score near 0. Windows start at every bar, not only
  at even ones, so a phrase that returns an odd number of bars later is found as well.
- `chord_loops`: share of bars whose chords return 4 or 8 bars later. The chords are read from the Rhodes
  (`keys`) part: each bar is sampled at the middle of every half beat, and the sample is the set of pitch
  classes sounding there; two bars hold the same chords when every sample agrees. The keys part is used
  rather than chord symbols because it exists, made the same way, for generated tracks and for real pieces
  played through the arranger alike (the symbols of a generated track live in tokens, a real piece's in
  annotations or inference), so one reader serves both; the arranger's voicings keep a chord's pitch classes
  whatever the voice leading, and the keys play from the first bar to the last (the bass skips the intro).
  Of the bars that have a bar 4 later and sound a chord, the share that equals bar +4 or bar +8.

Besides the features, `key_found` is music21's key finder (`Stream.analyze('key')`, Aarden-Essen profiles)
on the whole file, and `key_planned` the key the file declares (its key_signature meta event, which the
arranger writes from the plan).

Pure Python + numpy + mido (music21 only for the key); no TensorFlow.
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import mido
import numpy as np

GRID = 12  # ticks per beat of the analysis grid (music.score.TICKS_PER_BEAT: 16ths and triplets exactly)
# How music/arrange.py lays out its MIDI file (CHANNELS there, 0-based channels here as in mido).
MELODY_TRACK, KEYS_TRACK = "melody", "keys"
MELODY_CHANNEL, KEYS_CHANNEL, DRUM_CHANNEL = 2, 0, 9
LEAP = 7  # semitones: wider than a fifth is a leap
PHRASE_BARS = 2
LOOP_LAGS = (4, 8)
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)
PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}

FEATURES: dict[str, str] = {
    "notes_per_bar": "melody notes per bar",
    "empty_bars": "share of bars without a melody note",
    "mean_interval": "mean absolute melodic interval (semitones)",
    "leaps": "share of melodic intervals wider than a fifth",
    "pitch_class_entropy": "entropy of the melody's pitch classes (bits)",
    "scale_consistency": "share of melody notes in the best-fitting major/minor scale",
    "groove_consistency": "melody onset-pattern similarity of consecutive bars",
    "phrase_similarity": "best match of each 2-bar melody phrase with an earlier one",
    "chord_loops": "share of bars whose chords return 4 or 8 bars later",
}


@dataclass(frozen=True)
class MidiNote:
    """A note of a MIDI file in file ticks, with its track and channel."""

    pitch: int
    start: int
    end: int
    velocity: int
    channel: int
    track: str


@dataclass
class MidiPiece:
    """What the features need of a MIDI file: its notes, bars and declared key."""

    notes: list[MidiNote]
    ticks_per_beat: int
    bar_starts: list[int]  # file ticks of each bar, plus the end
    key_signature: tuple[int, str] | None = None  # (tonic pitch class, 'major' | 'minor')
    path: Path | None = None

    @property
    def n_bars(self) -> int:
        """Bars in the file."""
        return len(self.bar_starts) - 1

    def grid(self, tick: float) -> int:
        """File ticks -> the nearest tick of the 12-per-beat analysis grid."""
        return int(math.floor(tick * GRID / self.ticks_per_beat + 0.5))

    def bar_of(self, tick: int) -> int:
        """The bar holding file tick `tick` (clamped to the piece)."""
        i = int(np.searchsorted(self.bar_starts, tick, side="right")) - 1
        return min(max(i, 0), self.n_bars - 1)


@dataclass
class TrackFeatures:
    """The features of one track (see the module docstring); NaN where a feature is undefined."""

    notes_per_bar: float
    empty_bars: float
    mean_interval: float
    leaps: float
    pitch_class_entropy: float
    scale_consistency: float
    groove_consistency: float
    phrase_similarity: float
    chord_loops: float
    n_bars: int = 0
    melody_notes: int = 0
    key_planned: tuple[int, str] | None = None
    key_found: tuple[int, str] | None = None
    extra: dict = field(default_factory=dict)

    def values(self) -> dict[str, float]:
        """{feature: value} for the names in `FEATURES`."""
        return {k: float(getattr(self, k)) for k in FEATURES}

    def to_dict(self) -> dict:
        """A JSON-ready copy (NaN as None)."""
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, float) and not math.isfinite(v):
                d[k] = None
        return d


# ------------------------------------------------------------------------------------------- reading
def key_from_name(name: str) -> tuple[int, str] | None:
    """mido's key_signature name ('Dm', 'Eb', 'F#m') -> (tonic pitch class, mode); None if unreadable."""
    mode = "minor" if name.endswith("m") else "major"
    root = name.removesuffix("m")
    if not root or root[0] not in PITCH_CLASS:
        return None
    pc = PITCH_CLASS[root[0]] + sum(1 if c == "#" else -1 if c == "b" else 0 for c in root[1:])
    return pc % 12, mode


def read_midi(source: Path | str | bytes | mido.MidiFile) -> MidiPiece:
    """A MIDI file (path, bytes or mido object) as notes per track, bars and the declared key."""
    path = None
    if isinstance(source, mido.MidiFile):
        mid = source
    elif isinstance(source, bytes | bytearray):
        mid = mido.MidiFile(file=io.BytesIO(source))
    else:
        path = Path(source)
        mid = mido.MidiFile(path)
    tpb = mid.ticks_per_beat
    notes: list[MidiNote] = []
    sigs: list[tuple[int, int, int]] = []
    key = None
    end = 0
    for track in mid.tracks:
        tick, name = 0, ""
        sounding: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for msg in track:
            tick += msg.time
            if msg.type == "track_name" and not name:
                name = msg.name.strip()
            elif msg.type == "time_signature":
                sigs.append((tick, msg.numerator, msg.denominator))
            elif msg.type == "key_signature" and key is None:
                key = key_from_name(msg.key)
            elif msg.type == "note_on" and msg.velocity > 0:
                sounding.setdefault((msg.channel, msg.note), []).append((tick, msg.velocity))
            elif msg.type in ("note_on", "note_off"):
                stack = sounding.get((msg.channel, msg.note))
                if stack:
                    on, vel = stack.pop(0)
                    notes.append(MidiNote(msg.note, on, max(tick, on + 1), vel, msg.channel, name))
        for (ch, pitch), stack in sounding.items():  # never released: they end with the track
            notes += [MidiNote(pitch, on, max(tick, on + 1), vel, ch, name) for on, vel in stack]
        end = max(end, tick)
    end = max([end] + [n.end for n in notes])
    return MidiPiece(notes, tpb, _bar_starts(sigs, tpb, end), key, path)


def _bar_starts(sigs: list[tuple[int, int, int]], tpb: int, end: int) -> list[int]:
    """Bar starts under the time signatures (4/4 before the first), covering `end` (at least one bar).

    A track that ends within a few grid ticks of a bar line (note-offs rounded by the arranger) does not get
    an extra, nearly empty bar.
    """
    sigs = sorted(sigs) or [(0, 4, 4)]
    if sigs[0][0] > 0:
        sigs.insert(0, (0, 4, 4))
    slack = tpb // GRID
    starts, t, i = [0], 0, 0
    while True:
        while i + 1 < len(sigs) and sigs[i + 1][0] <= t:
            i += 1
        _, num, den = sigs[i]
        t += max(1, round(num * 4 * tpb / den))
        starts.append(t)
        if t >= end - slack:
            return starts


def melody_notes(piece: MidiPiece) -> list[MidiNote]:
    """The melody: the track named 'melody', else the arranger's melody channel (never the drums)."""
    named = [n for n in piece.notes if n.track.lower() == MELODY_TRACK and n.channel != DRUM_CHANNEL]
    if named or any(n.track.lower() == MELODY_TRACK for n in piece.notes):
        return sorted(named, key=lambda n: (n.start, n.pitch))
    return sorted((n for n in piece.notes if n.channel == MELODY_CHANNEL), key=lambda n: (n.start, n.pitch))


def keys_notes(piece: MidiPiece) -> list[MidiNote]:
    """The chord part: the track named 'keys', else the arranger's keys channel."""
    named = [n for n in piece.notes if n.track.lower() == KEYS_TRACK]
    return named or [n for n in piece.notes if n.channel == KEYS_CHANNEL and n.track.lower() != MELODY_TRACK]


# ------------------------------------------------------------------------------------------- features
def _entropy(counts: np.ndarray) -> float:
    total = counts.sum()
    if total < 1:
        return math.nan
    p = counts[counts > 0] / total
    return float(-(p * np.log2(p)).sum())


def pitch_class_entropy(pitches: list[int]) -> float:
    """Shannon entropy (bits) of the pitch-class histogram; NaN without notes (MusPy's definition)."""
    return _entropy(np.bincount(np.asarray(pitches, int) % 12, minlength=12).astype(float))


def scale_consistency(pitches: list[int]) -> float:
    """Largest share of notes inside one of the 24 major / natural minor scales; NaN without notes (MusPy)."""
    if not pitches:
        return math.nan
    hist = np.bincount(np.asarray(pitches, int) % 12, minlength=12)
    best = 0
    for scale in (MAJOR_SCALE, MINOR_SCALE):
        for root in range(12):
            best = max(best, int(sum(hist[(root + d) % 12] for d in scale)))
    return best / len(pitches)


def groove_consistency(onsets_by_bar: list[list[int]], slots: int) -> float:
    """1 - mean Hamming distance of consecutive bars' onset patterns / `slots` (MusPy's definition).

    Args:
        onsets_by_bar: per bar, the onsets (grid ticks from the bar start, 0 <= t < slots).
        slots: positions per bar (grid ticks in a bar).
    Returns:
        In [0, 1]; 1 when every bar has the same onsets. NaN with fewer than two bars.
    """
    if len(onsets_by_bar) < 2 or slots < 1:
        return math.nan
    pat = np.zeros((len(onsets_by_bar), slots), bool)
    for b, onsets in enumerate(onsets_by_bar):
        for t in onsets:
            if 0 <= t < slots:
                pat[b, t] = True
    distance = np.count_nonzero(pat[:-1] != pat[1:])
    return 1.0 - distance / (slots * (len(onsets_by_bar) - 1))


def intervals(notes: list[tuple[int, int, int]], max_rest: int) -> list[int]:
    """Signed intervals between consecutive notes of the top line.

    Args:
        notes: (onset, end, pitch) in grid ticks.
        max_rest: a rest longer than this (grid ticks) between two notes ends a phrase: no interval there.
    Returns:
        Semitones, one per pair of consecutive top-line notes inside a phrase.
    """
    top: dict[int, tuple[int, int]] = {}
    for on, end, pitch in notes:
        if on not in top or pitch > top[on][1]:
            top[on] = (end, pitch)
    line = sorted((on, end, pitch) for on, (end, pitch) in top.items())
    out = []
    for (_, end0, p0), (on1, _, p1) in zip(line, line[1:], strict=False):
        if on1 - end0 <= max_rest:
            out.append(p1 - p0)
    return out


def jaccard(a: set, b: set) -> float:
    """|a & b| / |a | b| (1 for two empty sets)."""
    union = len(a | b)
    return len(a & b) / union if union else 1.0


def phrase_similarity(windows: list[set]) -> float:
    """Mean, over non-empty windows, of the best Jaccard match with an earlier, non-overlapping window.

    Args:
        windows: per bar b, the set of (onset within the window, pitch) of the notes starting in bars
            b .. b + PHRASE_BARS - 1.
    Returns:
        In [0, 1]; NaN when no window has an earlier non-overlapping one with notes to compare.
    """
    best = []
    for i, w in enumerate(windows):
        if not w:
            continue
        earlier = [jaccard(w, windows[j]) for j in range(0, i - PHRASE_BARS + 1)]
        if earlier:
            best.append(max(earlier))
    return float(np.mean(best)) if best else math.nan


def chord_loops(bar_chords: list[tuple[frozenset, ...]]) -> float:
    """Share of bars (that sound a chord and have a bar 4 later) equal to the bar 4 or 8 later; NaN if none."""
    hits = total = 0
    for b, sig in enumerate(bar_chords):
        if b + LOOP_LAGS[0] >= len(bar_chords) or not any(sig):
            continue
        total += 1
        hits += any(b + lag < len(bar_chords) and bar_chords[b + lag] == sig for lag in LOOP_LAGS)
    return hits / total if total else math.nan


def bar_chord_samples(piece: MidiPiece, notes: list[MidiNote]) -> list[tuple[frozenset, ...]]:
    """Per bar, the pitch classes sounding at the middle of every half beat (the bar's chords)."""
    half = piece.ticks_per_beat / 2
    starts = np.asarray([n.start for n in notes])
    ends = np.asarray([n.end for n in notes])
    pcs = np.asarray([n.pitch % 12 for n in notes])
    out = []
    for b in range(piece.n_bars):
        lo, hi = piece.bar_starts[b], piece.bar_starts[b + 1]
        samples = []
        t = lo + half / 2
        while t < hi:
            on = (starts <= t) & (ends > t) if len(notes) else np.zeros(0, bool)
            samples.append(frozenset(int(p) for p in pcs[on]))
            t += half
        out.append(tuple(samples))
    return out


def find_key(path: Path | str) -> tuple[int, str]:
    """music21's key finder on the whole MIDI file: (tonic pitch class, 'major' | 'minor')."""
    import music21

    # forceSource: music21 would otherwise cache the parse by path, and a path reused for new content
    # (bench_music.py --keep) would be read from the stale cache
    k = music21.converter.parse(str(path), forceSource=True).analyze("key")
    return k.tonic.pitchClass, k.mode


def track_features(
    source: Path | str | bytes | mido.MidiFile | MidiPiece, *, key: bool = True
) -> TrackFeatures:
    """Every feature of one arranged MIDI file (and music21's key, when `key` and the source is a path).

    Args:
        source: the MIDI file (path, bytes, mido object) or an already read `MidiPiece`.
        key: run music21's key finder (about 0.3 s a minute of music); needs a file path.
    Returns:
        The features; `key_planned` is the file's key_signature, `key_found` music21's reading (or None).
    """
    piece = source if isinstance(source, MidiPiece) else read_midi(source)
    n_bars = max(piece.n_bars, 1)
    mel = melody_notes(piece)
    grid_notes = [
        (piece.grid(n.start), max(piece.grid(n.end), piece.grid(n.start) + 1), n.pitch) for n in mel
    ]
    grid_starts = [piece.grid(s) for s in piece.bar_starts]
    bar_slots = [b - a for a, b in zip(grid_starts, grid_starts[1:], strict=False)]

    def bar_at(t: int) -> int:
        return min(max(int(np.searchsorted(grid_starts, t, side="right")) - 1, 0), n_bars - 1)

    sounding = np.zeros(n_bars, bool)
    onsets: list[list[int]] = [[] for _ in range(n_bars)]
    content: list[set] = [set() for _ in range(n_bars)]
    for on, end, pitch in grid_notes:
        b = bar_at(on)
        onsets[b].append(on - grid_starts[b])
        content[b].add((on - grid_starts[b], pitch))
        sounding[b : bar_at(end - 1) + 1] = True
    pitches = [p for _, _, p in grid_notes]
    steps = [abs(i) for i in intervals(grid_notes, max_rest=max(bar_slots or [4 * GRID]))]

    windows = []
    for b in range(n_bars - PHRASE_BARS + 1):
        w = set()
        for k in range(PHRASE_BARS):
            offset = grid_starts[b + k] - grid_starts[b]
            w |= {(t + offset, p) for t, p in content[b + k]}
        windows.append(w)

    features = TrackFeatures(
        notes_per_bar=len(mel) / n_bars,
        empty_bars=float(1.0 - sounding.mean()),
        mean_interval=float(np.mean(steps)) if steps else math.nan,
        leaps=float(np.mean([s > LEAP for s in steps])) if steps else math.nan,
        pitch_class_entropy=pitch_class_entropy(pitches),
        scale_consistency=scale_consistency(pitches),
        groove_consistency=float(groove_consistency(onsets, max(bar_slots or [4 * GRID]))),
        phrase_similarity=phrase_similarity(windows),
        chord_loops=chord_loops(bar_chord_samples(piece, keys_notes(piece))),
        n_bars=piece.n_bars,
        melody_notes=len(mel),
        key_planned=piece.key_signature,
    )
    if key and piece.path is not None:
        features.key_found = find_key(piece.path)
    return features
