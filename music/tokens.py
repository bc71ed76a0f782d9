"""The token representation: one object that encodes a `Score` for training and decodes generated tokens.

A piece is written relative to its tonic (as if in C) so that a small corpus teaches harmony by function
(scale degree), not by absolute key; the real tonic is metadata, and a mood picks the tonic at render time.

    header  BOS MODE_<major|minor> TS_<n>/<d> TEMPO_<k> DENS_<low|mid|high>
    body    BAR [TS_<n>/<d>] { POS_<t> [chord] { [VEL_<v>] PITCH_<p> DUR_<d> } } ... EOS
    chord   CHORD_<root>_<quality> BASS_<interval> [VOICING_<close|open>_<top>]   |   CHORD_N

`POS_t` is the onset within the bar in ticks (12 per quarter note), strictly increasing inside a bar; a
chord lasts until the next chord; `VEL_v` is a running dynamic level, written only when it changes (and
before the first note). The header is the conditioning: the models take it as a separate input so every
window sees it, and a mood chooses it at generation time.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from music.chords import NO_CHORD, QUALITIES
from music.errors import DecodeError
from music.score import TICKS_PER_BEAT, Chord, Note, Score, TimeSignature, Voicing, bar_ticks

REPR_VERSION = "lofi-tokens-v2"

PAD, BOS, EOS, BAR = "PAD", "BOS", "EOS", "BAR"
PITCH_MIN, PITCH_MAX = 21, 108
MAX_BAR_TICKS = 8 * TICKS_PER_BEAT
DURATIONS: tuple[int, ...] = tuple(
    sorted(set(range(1, 49)) | set(range(54, 97, 6)) | set(range(108, 193, 12)) | {216, 240, 288, 336, 384})
)
VELOCITIES: tuple[int, ...] = (20, 36, 52, 64, 76, 88, 104, 120)
TIME_SIGNATURES: tuple[tuple[int, int], ...] = (
    (4, 4),
    (3, 4),
    (2, 4),
    (5, 4),
    (6, 4),
    (2, 2),
    (3, 2),
    (6, 8),
    (3, 8),
    (9, 8),
    (12, 8),
    (5, 8),
    (7, 8),
)
# Tempo buckets: upper bounds (bpm) and the tempo a decoded bucket plays at.
TEMPO_EDGES: tuple[float, ...] = (60, 70, 80, 90, 100, 115, 130, 150, float("inf"))
TEMPO_CENTERS: tuple[float, ...] = (56, 65, 75, 85, 95, 107, 122, 140, 165)
DENSITIES = ("low", "mid", "high")
DENSITY_EDGES = (2.5, 5.0)  # melody notes per bar
VOICING_SPREADS = ("close", "open")
VOICING_TOPS = (1, 3, 5, 7, 9)
HEADER_LEN = 5  # BOS MODE TS TEMPO DENS
MAX_NOTES_PER_ONSET = 6
# Tonic chords that may open the first and the final bar (the first is the one a plain ending uses).
TONIC_CHORDS = {
    "major": ("maj", "maj7", "maj6", "maj9", "add9"),
    "minor": ("min", "min7", "min6", "min9", "min11"),
}
# The state features the models see beside the tokens (their `aux` input), one row per predicted token.
# What the window holds only implicitly (the previous melody pitch may be 10+ tokens back, the current chord
# a bar back) is given explicitly, and the plan's notes per bar steer density: this is what lets a small
# model learn melodic lines in minutes.
AUX_FEATURES = ("prev_pitch", "chord", "chord_root", "pos", "bar_in_phrase", "notes_left")
PHRASE_BARS = 8
MAX_NOTES_LEFT = 8


def tempo_bucket(bpm: float) -> int:
    """Index of the tempo bucket holding `bpm`."""
    return bisect.bisect_left(TEMPO_EDGES, bpm)


def density_of(score: Score) -> str:
    """'low', 'mid' or 'high' by melody notes per bar."""
    per_bar = len(score.melody) / max(score.n_bars, 1)
    return DENSITIES[bisect.bisect_right(DENSITY_EDGES, per_bar)]


def nearest(values: tuple[int, ...], x: float) -> int:
    """The element of sorted `values` closest to `x`."""
    i = bisect.bisect_left(values, x)
    if i == 0:
        return values[0]
    if i == len(values):
        return values[-1]
    return values[i] if values[i] - x < x - values[i - 1] else values[i - 1]


def _build_vocab() -> list[str]:
    toks = [PAD, BOS, EOS, BAR]
    toks += [f"MODE_{m}" for m in ("major", "minor")]
    toks += [f"TS_{n}/{d}" for n, d in TIME_SIGNATURES]
    toks += [f"TEMPO_{i}" for i in range(len(TEMPO_CENTERS))]
    toks += [f"DENS_{d}" for d in DENSITIES]
    toks += [f"POS_{t}" for t in range(MAX_BAR_TICKS)]
    toks += [f"CHORD_{r}_{q}" for r in range(12) for q in QUALITIES]
    toks += [f"CHORD_{NO_CHORD}"]
    toks += [f"BASS_{i}" for i in range(12)]
    toks += [f"VOICING_{s}_{t}" for s in VOICING_SPREADS for t in VOICING_TOPS]
    toks += [f"VEL_{v}" for v in VELOCITIES]
    toks += [f"PITCH_{p}" for p in range(PITCH_MIN, PITCH_MAX + 1)]
    toks += [f"DUR_{d}" for d in DURATIONS]
    return toks


@dataclass
class EncodeReport:
    """What `encode` had to change to fit the representation, by reason (counts of notes or chords)."""

    notes_in: int = 0
    notes_exact: int = 0
    lost: Counter = field(default_factory=Counter)


class Vocab:
    """Token strings <-> integer ids. The vocabulary is fixed by the grammar, not by a corpus."""

    def __init__(self, tokens: list[str] | None = None):
        self.tokens = list(tokens) if tokens is not None else _build_vocab()
        self.index = {t: i for i, t in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            raise ValueError("duplicate tokens in vocabulary")

    def __len__(self) -> int:
        return len(self.tokens)

    def id(self, token: str) -> int:
        """Id of `token`; KeyError if unknown."""
        return self.index[token]

    def ids(self, tokens: list[str]) -> list[int]:
        """Ids of many tokens."""
        return [self.index[t] for t in tokens]

    def strs(self, ids) -> list[str]:
        """Tokens of many ids; DecodeError for an id outside the vocabulary."""
        out = []
        for i in ids:
            try:
                i = int(i)
            except (TypeError, ValueError, OverflowError) as exc:
                raise DecodeError(f"token id {i!r} is not an integer") from exc
            if not 0 <= i < len(self.tokens):
                raise DecodeError(f"token id {i} is outside the vocabulary (size {len(self.tokens)})")
            out.append(self.tokens[i])
        return out

    def prefix_range(self, prefix: str) -> tuple[int, int]:
        """[start, stop) of the ids whose token starts with `prefix` (they are contiguous)."""
        ids = [i for i, t in enumerate(self.tokens) if t.startswith(prefix)]
        if not ids or ids[-1] - ids[0] + 1 != len(ids):
            raise ValueError(f"tokens with prefix {prefix!r} are not contiguous")
        return ids[0], ids[-1] + 1


class Representation:
    """Encodes scores to tokens and decodes tokens to scores; also gives the grammar for generation."""

    version = REPR_VERSION

    def __init__(self) -> None:
        self.vocab = Vocab()
        self.id_tables = _IdTables(self.vocab)

    # ---------------------------------------------------------------- encode
    def header(self, mode: str, time_signature: tuple[int, int], bpm: float, density: str) -> list[str]:
        """The conditioning header for a piece (or a generation request)."""
        if mode not in ("major", "minor"):
            raise ValueError(f"mode must be major or minor, not {mode!r}")
        if tuple(time_signature) not in TIME_SIGNATURES:
            raise ValueError(f"time signature {time_signature} is not supported")
        if density not in DENSITIES:
            raise ValueError(f"density must be one of {DENSITIES}, not {density!r}")
        n, d = time_signature
        return [BOS, f"MODE_{mode}", f"TS_{n}/{d}", f"TEMPO_{tempo_bucket(bpm)}", f"DENS_{density}"]

    def encode(self, score: Score, report: EncodeReport | None = None) -> list[str]:
        """Tokens of `score` (transposed to a C tonic first). Lossy cases are counted in `report`."""
        report = report if report is not None else EncodeReport()
        shift = -score.tonic if score.tonic <= 6 else 12 - score.tonic
        score = score.transposed(shift) if shift else score
        sigs = {ts.bar: ts for ts in score.time_signatures}
        first = min(score.time_signatures, key=lambda s: s.bar)
        if (first.numerator, first.denominator) not in TIME_SIGNATURES:
            raise ValueError(f"time signature {first.numerator}/{first.denominator} is not supported")
        tokens = self.header(score.mode, (first.numerator, first.denominator), score.bpm, density_of(score))
        starts = score.bar_starts()
        report.notes_in += len(score.melody)

        events = _events(score, starts[-1], report)
        velocity = None
        ticks = sorted(events)
        ti = 0
        for bar in range(score.n_bars):
            tokens.append(BAR)
            if bar in sigs and bar > first.bar:
                tokens.append(f"TS_{sigs[bar].numerator}/{sigs[bar].denominator}")
            lo, hi = starts[bar], starts[bar + 1]
            while ti < len(ticks) and ticks[ti] < hi:
                tick = ticks[ti]
                ti += 1
                ev = events[tick]
                tokens.append(f"POS_{tick - lo}")
                if ev["chord"] is not None:
                    tokens += self._chord_tokens(ev["chord"])
                for n in sorted(ev["notes"], key=lambda n: n.pitch):
                    velocity = _note_tokens(n, velocity, tokens, report)
        tokens.append(EOS)
        return tokens

    @staticmethod
    def _chord_tokens(c: Chord) -> list[str]:
        if c.quality == NO_CHORD:
            return [f"CHORD_{NO_CHORD}"]
        out = [f"CHORD_{c.root % 12}_{c.quality}", f"BASS_{c.bass % 12}"]
        if c.voicing is not None:
            out.append(f"VOICING_{c.voicing.spread}_{c.voicing.top}")
        return out

    # ---------------------------------------------------------------- decode
    def decode(self, tokens: list[str] | list[int], tonic: int = 0, bpm: float | None = None) -> Score:
        """The `Score` written by `tokens` (strings or ids), placed at `tonic`; DecodeError if invalid.

        A sequence cut short (no EOS) decodes to the bars it completed, so a partial generation is usable.
        """
        tokens = list(tokens)  # also accepts numpy arrays and other sequences
        if tokens and not isinstance(tokens[0], str):
            tokens = self.vocab.strs(tokens)
        for i, t in enumerate(tokens):
            if not isinstance(t, str) or t not in self.vocab.index:
                raise DecodeError(f"unknown token {t!r} at position {i}")
        state = GrammarState(self)
        for i, t in enumerate(tokens):
            if t == PAD and state.phase == "done":
                continue
            state.push_token(t, where=i)
        if state.phase in ("header",) or state.header_len < HEADER_LEN:
            raise DecodeError("token sequence ends inside the header (BOS MODE TS TEMPO DENS)")
        return state.to_score(tonic=tonic, bpm=bpm)

    def split(self, ids: list[int]) -> tuple[list[int], list[int]]:
        """(header ids, body ids) of an encoded piece."""
        if len(ids) < HEADER_LEN or ids[0] != self.vocab.id(BOS):
            raise DecodeError("sequence does not start with a full header")
        return list(ids[:HEADER_LEN]), list(ids[HEADER_LEN:])

    def grammar(self, header: list[str] | list[int]) -> GrammarState:
        """A grammar state positioned after `header`, for masking a generation step by step."""
        state = GrammarState(self)
        if header and not isinstance(header[0], str):
            header = self.vocab.strs(header)
        for t in header:
            state.push_token(t)
        return state


def _kind(token: str) -> str:
    return token.split("_", 1)[0]


def _events(score: Score, end: int, report: EncodeReport) -> dict[int, dict]:
    """tick -> {"chord": Chord | None, "notes": [Note]} of what `encode` writes; the notes it cannot write
    (outside the bars, a pitch repeated at an onset, too many at one onset) are counted in `report`."""
    events: dict[int, dict] = {}
    for c in score.chords:
        if 0 <= c.start < end:
            events.setdefault(c.start, {"chord": None, "notes": []})["chord"] = c
    seen: set[tuple[int, int]] = set()
    for n in score.melody:
        reason = None
        if not 0 <= n.start < end:
            reason = "outside the piece's bars"
        elif (n.start, n.pitch) in seen:
            reason = "duplicate pitch at one onset"
        elif len(events.get(n.start, {"notes": ()})["notes"]) >= MAX_NOTES_PER_ONSET:
            reason = f"more than {MAX_NOTES_PER_ONSET} notes at one onset"
        if reason:
            report.lost[reason] += 1
            continue
        seen.add((n.start, n.pitch))
        events.setdefault(n.start, {"chord": None, "notes": []})["notes"].append(n)
    return events


def _note_tokens(n: Note, velocity: int | None, tokens: list[str], report: EncodeReport) -> int:
    """Append the tokens of note `n` (a VEL first when its level differs from `velocity`), counting in `report`
    whether it was written exactly; returns the velocity level now current."""
    pitch, reason = n.pitch, None
    while pitch < PITCH_MIN:
        pitch += 12
    while pitch > PITCH_MAX:
        pitch -= 12
    if pitch != n.pitch:
        reason = "pitch outside piano range (moved by octaves)"
    dur = nearest(DURATIONS, n.duration)
    if dur != n.duration and reason is None:
        reason = "duration not on the duration grid"
    v = nearest(VELOCITIES, n.velocity)
    if v != velocity:
        tokens.append(f"VEL_{v}")
        velocity = v
    tokens += [f"PITCH_{pitch}", f"DUR_{dur}"]
    if reason:
        report.lost[reason] += 1
    else:
        report.notes_exact += 1
    return velocity


class GrammarState:
    """Tracks where a token sequence is in the grammar; `allowed()` masks what may come next.

    Also collects the decoded music as tokens are pushed, so decoding and masking can never disagree.
    """

    def __init__(self, rep: Representation):
        self.rep = rep
        v = rep.vocab
        self.v = v
        self.phase = "start"  # start, header, body, done
        self.header: list[str] = []
        self.after = None  # kind of the last body token
        self.bar = -1
        self.bar_start = 0
        self.bar_len = 0
        self.pos = -1
        self.velocity: int | None = None
        self.pitches_here: set[int] = set()
        self.chord_here = False
        self.notes: list[Note] = []
        self.chords: list[tuple[int, int, str, int, Voicing | None]] = []
        self.sigs: list[TimeSignature] = []
        self.pending_pitch: int | None = None
        n = len(v)
        self._masks: dict[str, np.ndarray] = {}

        def mask_of(*prefixes: str) -> np.ndarray:
            m = np.zeros(n, dtype=bool)
            for p in prefixes:
                if p in v.index:
                    m[v.index[p]] = True
                else:
                    a, b = v.prefix_range(p)
                    m[a:b] = True
            return m

        self._mask_of = mask_of
        self._pos_range = v.prefix_range("POS_")

    @property
    def header_len(self) -> int:
        return len(self.header)

    @property
    def bars(self) -> int:
        """Bars started so far."""
        return self.bar + 1

    # The masks depend only on (phase, after), except for POS (the position must advance) and
    # PITCH (no repeated pitch at one onset); those are fixed up in `allowed`.
    def _base(self, key: str, *prefixes: str) -> np.ndarray:
        m = self._masks.get(key)
        if m is None:
            m = self._masks[key] = self._mask_of(*prefixes)
        return m

    def allowed(self) -> np.ndarray:
        """Boolean mask over the vocabulary: the tokens that keep the sequence valid."""
        if self.phase == "start":
            return self._base("start", BOS)
        if self.phase == "header":
            nxt = ("MODE_", "TS_", "TEMPO_", "DENS_", BAR)[len(self.header) - 1]
            return self._base("h" + nxt, nxt)
        if self.phase == "done":
            return self._base("done", PAD)
        a = self.after
        if a == "BAR":
            m = self._base("bar", "TS_", "POS_", BAR, EOS).copy()
        elif a == "TS":
            m = self._base("ts", "POS_", BAR, EOS).copy()
        elif a == "POS":
            return self._pitch_fix(self._base("pos", "CHORD_", "VEL_", "PITCH_"))
        elif a == "CHORD":
            return self._base("chord", "BASS_")
        elif a == "VEL":
            return self._pitch_fix(self._base("vel", "PITCH_"))
        elif a == "PITCH":
            return self._base("pitch", "DUR_")
        elif a in ("BASS", "VOICING", "CHORDN", "DUR"):
            key = {"BASS": "bass", "VOICING": "voicing", "CHORDN": "chordn", "DUR": "dur"}[a]
            prefixes = ["VEL_", "PITCH_", "POS_", BAR, EOS]
            if a == "BASS":
                prefixes.append("VOICING_")
            m = self._pitch_fix(self._base(key, *prefixes)).copy()
        else:  # pragma: no cover - every kind is handled above
            raise AssertionError(a)
        # POS must move forward inside the bar.
        lo, _ = self._pos_range
        m[lo : lo + self.pos + 1] = False
        m[lo + self.bar_len : lo + MAX_BAR_TICKS] = False
        return m

    def _pitch_fix(self, m: np.ndarray) -> np.ndarray:
        # No repeated pitch at one onset, at most MAX_NOTES_PER_ONSET notes there, no VEL that
        # repeats the current level (so every piece has exactly one spelling), and a level first.
        if not self.pitches_here and self.velocity is None:
            return m if self.after == "VEL" else self._without(m, "PITCH_")
        m = m.copy()
        if self.velocity is not None and self.after != "VEL":
            m[self.v.index[f"VEL_{self.velocity}"]] = False
        if len(self.pitches_here) >= MAX_NOTES_PER_ONSET:
            return self._without(self._without(m, "PITCH_"), "VEL_")
        for p in self.pitches_here:
            m[self.v.index[f"PITCH_{p}"]] = False
        if self.velocity is None and self.after != "VEL":
            m = self._without(m, "PITCH_")
        return m

    def _without(self, m: np.ndarray, prefix: str) -> np.ndarray:
        m = m.copy()
        a, b = self.v.prefix_range(prefix)
        m[a:b] = False
        return m

    def push(self, token_id: int) -> None:
        """Advance by one token id; DecodeError if it is not allowed here."""
        self.push_token(self.v.strs([token_id])[0])

    def push_token(self, t: str, where: int | None = None) -> None:
        """Advance by one token string; DecodeError if it is not allowed here."""
        tid = self.v.index.get(t)
        if tid is None or not self.allowed()[tid]:
            at = f" at position {where}" if where is not None else ""
            raise DecodeError(f"token {t!r}{at} is not allowed after {self._describe()}")
        if self.phase == "start":
            self.phase = "header"
            self.header.append(t)
        elif self.phase == "header":
            if t == BAR:
                self._end_header()
            else:
                self.header.append(t)
        elif t == EOS:
            self.phase = "done"
            self.after = "EOS"
        elif t == BAR:
            self._start_bar()
        else:
            self._BODY_EVENTS[_kind(t)](self, t)
            self.after = "CHORDN" if t == f"CHORD_{NO_CHORD}" else _kind(t)

    def _end_header(self) -> None:
        self.phase = "body"
        n, d = self.header[2][3:].split("/")
        self.sigs.append(TimeSignature(0, int(n), int(d)))
        self.bar_len = bar_ticks(int(n), int(d))
        self._start_bar()

    def _on_time_signature(self, t: str) -> None:
        n, d = t[3:].split("/")
        self.sigs.append(TimeSignature(self.bar, int(n), int(d)))
        self.bar_len = bar_ticks(int(n), int(d))

    def _on_position(self, t: str) -> None:
        self.pos = int(t[4:])
        self.pitches_here = set()

    def _on_chord(self, t: str) -> None:
        body = t[6:]
        if body == NO_CHORD:
            self.chords.append((self.bar_start + self.pos, 0, NO_CHORD, 0, None))
        else:
            root, quality = body.split("_", 1)
            self.chords.append((self.bar_start + self.pos, int(root), quality, 0, None))

    def _on_bass(self, t: str) -> None:
        s, r, q, _, _ = self.chords[-1]
        self.chords[-1] = (s, r, q, int(t[5:]), None)

    def _on_voicing(self, t: str) -> None:
        _, spread, top = t.split("_")
        s, r, q, b, _ = self.chords[-1]
        self.chords[-1] = (s, r, q, b, Voicing(spread, int(top)))

    def _on_velocity(self, t: str) -> None:
        self.velocity = int(t[4:])

    def _on_pitch(self, t: str) -> None:
        self.pending_pitch = int(t[6:])
        self.pitches_here.add(self.pending_pitch)

    def _on_duration(self, t: str) -> None:
        self.notes.append(Note(self.pending_pitch, self.bar_start + self.pos, int(t[4:]), self.velocity))

    # what each kind of body token does to the state (the grammar mask has already admitted it)
    _BODY_EVENTS: ClassVar[dict[str, Callable[[GrammarState, str], None]]] = {
        "TS": _on_time_signature,
        "POS": _on_position,
        "CHORD": _on_chord,
        "BASS": _on_bass,
        "VOICING": _on_voicing,
        "VEL": _on_velocity,
        "PITCH": _on_pitch,
        "DUR": _on_duration,
    }

    def _start_bar(self) -> None:
        # A TS token right after BAR sets the length of that bar, so the bar that just ended
        # has length `bar_len` whatever came in it.
        if self.bar >= 0:
            self.bar_start += self.bar_len
        self.bar += 1
        self.pos = -1
        self.pitches_here = set()
        self.after = "BAR"

    def _describe(self) -> str:
        if self.phase == "start":
            return "the start (expected BOS)"
        if self.phase == "header":
            return f"header {' '.join(self.header)}"
        if self.phase == "done":
            return "EOS"
        return f"{self.after} in bar {self.bar} at position {self.pos}"

    def to_score(self, tonic: int = 0, bpm: float | None = None) -> Score:
        """The music pushed so far as a `Score` in `tonic` (tokens are relative to a C tonic)."""
        if len(self.header) < HEADER_LEN:
            raise DecodeError("no complete header")
        n_bars = max(self.bar + 1, 0)
        sigs = sorted({s.bar: s for s in self.sigs}.values(), key=lambda s: s.bar) or [TimeSignature(0)]
        score = Score(
            melody=list(self.notes),
            chords=[],
            time_signatures=sigs,
            bpm=bpm if bpm is not None else TEMPO_CENTERS[int(self.header[3][6:])],
            mode=self.header[1][5:],
            tonic=0,
            n_bars=n_bars,
        )
        end = score.total_ticks
        chords = []
        for i, (s, r, q, b, voicing) in enumerate(self.chords):
            stop = self.chords[i + 1][0] if i + 1 < len(self.chords) else end
            if stop > s:
                chords.append(Chord(s, stop - s, r, q, b, voicing))
        score.chords = chords
        # Undo `encode`'s shift exactly: it moved tonics 7..11 up (by 12 - tonic), not down.
        shift = tonic % 12
        shift = shift if shift <= 6 else shift - 12
        return score.transposed(shift) if shift else score


# ---------------------------------------------------------------- aux features
def aux_sizes(vocab: Vocab) -> tuple[int, ...]:
    """Number of values of each `AUX_FEATURES` entry (embedding table sizes)."""
    n_chords = sum(1 for t in vocab.tokens if t.startswith("CHORD_"))
    return (PITCH_MAX - PITCH_MIN + 2, n_chords + 1, 13, MAX_BAR_TICKS + 1, PHRASE_BARS, MAX_NOTES_LEFT + 1)


class _IdTables:
    """Per-id lookups (kind and value) so the aux features cost one array read per token."""

    KIND_OTHER, KIND_BAR, KIND_POS, KIND_CHORD, KIND_PITCH = 0, 1, 2, 3, 4

    def __init__(self, vocab: Vocab):
        n = len(vocab)
        self.kind = np.zeros(n, np.int8)
        self.value = np.zeros(n, np.int32)  # POS tick, pitch - PITCH_MIN + 1, chord index + 1
        self.root = np.zeros(n, np.int32)  # chord root + 1 (0 = no chord)
        chord_index = 0
        for i, t in enumerate(vocab.tokens):
            if t == BAR:
                self.kind[i] = self.KIND_BAR
            elif t.startswith("POS_"):
                self.kind[i], self.value[i] = self.KIND_POS, int(t[4:])
            elif t.startswith("CHORD_"):
                chord_index += 1
                self.kind[i], self.value[i] = self.KIND_CHORD, chord_index
                body = t[6:]
                self.root[i] = 0 if body == NO_CHORD else int(body.split("_", 1)[0]) + 1
            elif t.startswith("PITCH_"):
                self.kind[i], self.value[i] = self.KIND_PITCH, int(t[6:]) - PITCH_MIN + 1


class AuxState:
    """The `aux` row for the next token of a `[BOS] + body` sequence, updated one token at a time.

    Training computes the rows of whole pieces with it (`aux_rows`), generation pushes each sampled token,
    so both sides see exactly the same features. `notes_per_bar(bar)` is the number of melody notes planned
    for (or, in training, present in) a bar; `notes_left` counts down as notes are written.
    """

    def __init__(self, rep: Representation, notes_per_bar):
        self.t = rep.id_tables
        self.notes_per_bar = notes_per_bar
        self.prev_pitch = self.chord = self.chord_root = 0
        self.pos = 0
        self.bar = -1
        self.notes_here = 0

    def row(self) -> tuple[int, int, int, int, int, int]:
        """The features for predicting the next token."""
        left = 0
        if self.bar >= 0:
            left = min(max(self.notes_per_bar(self.bar) - self.notes_here, 0), MAX_NOTES_LEFT)
        bar_in_phrase = max(self.bar, 0) % PHRASE_BARS
        return (self.prev_pitch, self.chord, self.chord_root, self.pos, bar_in_phrase, left)

    def push(self, token_id: int) -> None:
        """Advance past one token id."""
        t = self.t
        k = t.kind[token_id]
        if k == t.KIND_BAR:
            self.bar += 1
            self.pos = 0
            self.notes_here = 0
        elif k == t.KIND_POS:
            self.pos = int(t.value[token_id]) + 1
        elif k == t.KIND_CHORD:
            self.chord, self.chord_root = int(t.value[token_id]), int(t.root[token_id])
        elif k == t.KIND_PITCH:
            self.prev_pitch = int(t.value[token_id])
            self.notes_here += 1


def notes_per_bar(rep: Representation, sequence) -> list[int]:
    """Melody notes in each bar of a token id sequence."""
    t = rep.id_tables
    kinds = t.kind[np.asarray(sequence, dtype=np.int64)]
    counts: list[int] = []
    for k in kinds:
        if k == t.KIND_BAR:
            counts.append(0)
        elif k == t.KIND_PITCH and counts:
            counts[-1] += 1
    return counts


def aux_rows(rep: Representation, sequence) -> np.ndarray:
    """int32 [len(sequence), len(AUX_FEATURES)]: row i is the state before token i of `[BOS] + body`."""
    counts = notes_per_bar(rep, sequence)
    state = AuxState(rep, lambda b: counts[b] if b < len(counts) else 0)
    out = np.zeros((len(sequence), len(AUX_FEATURES)), np.int32)
    for i, tok in enumerate(sequence):
        out[i] = state.row()
        state.push(int(tok))
    return out


def trim_intro(rep: Representation, ids: list[int], keep_bars: int = 1) -> list[int]:
    """`ids` (header + body) without the melody-less bars that open it, but `keep_bars` of them.

    Pop songs open with 4-20 bars of accompaniment whose melody track is silent; a model trained on them
    opens every track that way. The chord sounding where the kept part starts is restated at its first
    beat, so the harmony is unchanged. Pieces whose metre changes inside the cut part are left as they are.
    """
    toks = rep.vocab.strs(ids)
    bars = [i for i, t in enumerate(toks) if t == BAR]
    first_pitch = next((i for i, t in enumerate(toks) if t.startswith("PITCH_")), None)
    if first_pitch is None or not bars:
        return list(ids)
    first_melody_bar = max(b for b, at in enumerate(bars) if at < first_pitch)
    cut_bar = first_melody_bar - keep_bars
    if cut_bar <= 0:
        return list(ids)
    cut_at = bars[cut_bar]
    dropped = toks[HEADER_LEN:cut_at]
    if any(t.startswith("TS_") for t in dropped):
        return list(ids)
    chord: list[str] = []
    for i, t in enumerate(dropped):
        if t.startswith("CHORD_"):
            chord = [t]
            j = i + 1
            while j < len(dropped) and dropped[j].startswith(("BASS_", "VOICING_")):
                chord.append(dropped[j])
                j += 1
    rest = toks[cut_at + 1 :]
    lead = [rest.pop(0)] if rest and rest[0].startswith("TS_") else []
    if chord:
        if rest and rest[0] == "POS_0":
            if not (len(rest) > 1 and rest[1].startswith("CHORD_")):
                rest = ["POS_0", *chord, *rest[1:]]
        else:
            rest = ["POS_0", *chord, *rest]
    out = toks[:HEADER_LEN] + [BAR] + lead + rest
    return rep.vocab.ids(out)


def chord_events(rep: Representation, bar_ids: list[int]) -> list[tuple[int, list[int]]]:
    """(POS tick, chord ids: CHORD [BASS] [VOICING]) of each chord in one bar's body ids."""
    t = rep.id_tables
    out: list[tuple[int, list[int]]] = []
    pos, in_chord = 0, False
    for tok in bar_ids:
        k = t.kind[tok]
        if k == t.KIND_POS:
            pos, in_chord = int(t.value[tok]), False
        elif k == t.KIND_CHORD:
            out.append((pos, [int(tok)]))
            in_chord = True
        elif in_chord and rep.vocab.tokens[tok].startswith(("BASS_", "VOICING_")):
            out[-1][1].append(int(tok))
        else:
            in_chord = False
    return out


def with_chord_at_start(rep: Representation, bar_ids: list[int], chord: list[int]) -> list[int]:
    """One bar's body ids with `chord` (the chord sounding as it starts) restated at its first beat.

    A bar brought back elsewhere must carry its harmony with it: the chord it inherited from the bar
    before it may not be the one sounding before its copy.
    """
    events = chord_events(rep, bar_ids)
    if not chord or (events and events[0][0] == 0):
        return list(bar_ids)
    pos0 = rep.vocab.id("POS_0")
    ids = [int(i) for i in bar_ids]
    lead = [ids.pop(0)] if ids and rep.vocab.tokens[ids[0]].startswith("TS_") else []
    if ids and ids[0] == pos0:
        return lead + [pos0, *chord, *ids[1:]]
    return lead + [pos0, *chord, *ids]


TOKEN_CLASSES = ("structure", "onset", "chord", "velocity", "pitch", "duration", "header")


def token_classes(rep: Representation) -> np.ndarray:
    """The index into `TOKEN_CLASSES` of every vocabulary id (for per-class evaluation)."""
    prefixes = {
        "POS_": "onset",
        "CHORD_": "chord",
        "BASS_": "chord",
        "VOICING_": "chord",
        "VEL_": "velocity",
        "PITCH_": "pitch",
        "DUR_": "duration",
        "MODE_": "header",
        "TEMPO_": "header",
        "DENS_": "header",
    }
    out = np.zeros(len(rep.vocab), np.int8)
    for i, t in enumerate(rep.vocab.tokens):
        cls = next((c for p, c in prefixes.items() if t.startswith(p)), "structure")
        out[i] = TOKEN_CLASSES.index(cls)
    return out
