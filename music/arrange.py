"""A lead sheet becomes a LoFi arrangement: Rhodes voicings, bass, Groove-MIDI drums and the melody, in sections.

The arrangement has exactly the requested number of bars (the source's bars, looped or cut), and is written
as a standard MIDI file with mido: one track per part, program changes, drums on channel 10, tempo, time and
key signature meta events.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from pathlib import Path

import mido

from music.chords import NO_CHORD, QUALITIES
from music.drums import GrooveLibrary, load_library, shape_pattern
from music.limits import DRUM_CHANNEL
from music.score import TICKS_PER_BEAT, Chord, Score

MIDI_TPB = 480
SCALE = MIDI_TPB // TICKS_PER_BEAT
KEYS_LOW = 48  # nothing below C3 in the keys: low clusters are mud
KEYS_HIGH = 84
BASS_LOW, BASS_HIGH = 33, 50
CHANNELS = {"keys": 0, "bass": 1, "melody": 2, "drums": DRUM_CHANNEL}
MIX = {"keys": (100, 58), "bass": (108, 64), "melody": (92, 74), "drums": (112, 64)}  # CC7 volume, CC10 pan
# mido's key names: sharps where a flat minor key does not exist
MINOR_KEYS = ("Cm", "C#m", "Dm", "Ebm", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "Bbm", "Bm")
MAJOR_KEYS = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
# LoFi colour for plain qualities: sevenths (and ninths) everywhere
LOFI_TONES = {
    "maj": (0, 4, 7, 11),
    "min": (0, 3, 7, 10),
    "dim": (0, 3, 6, 9),
    "aug": (0, 4, 8, 10),
    "sus2": (0, 2, 7, 10),
    "sus4": (0, 5, 7, 10),
    "add9": (0, 4, 7, 11, 14),
}
NO_NINTH = {"dim", "dim7", "hdim7", "aug", "aug7", "dom7b9"}
# The tonic chord as 1-3-5-9 (add9), not a seventh chord with its ninth voiced rootless: Cmaj9 without
# its root is a G triad over E and Cm9 without it is Ebmaj7, so a loop that keeps coming home to them
# reads as the key a fifth above or the relative key (measured on 40 real songs through this arranger:
# music21 found their key in 43% with rootless ninths on the tonic).
HOME_TONES = {"major": (0, 4, 7, 14), "minor": (0, 3, 7, 14)}
MAJOR_TONICS = {"maj", "maj7", "maj6", "maj9", "add9"}
MINOR_TONICS = {"min", "min7", "min6", "min9", "min11"}


def home_tones(chord: Chord, tonic: int) -> tuple[int, ...] | None:
    """The add9 tones for a tonic chord (root on the key's tonic), else None (the usual LoFi tones)."""
    if chord.root % 12 != tonic % 12:
        return None
    if chord.quality in MAJOR_TONICS:
        return HOME_TONES["major"]
    if chord.quality in MINOR_TONICS:
        return HOME_TONES["minor"]
    return None


def _in_midi_range(pitch: int) -> int:
    """`pitch` moved by octaves into MIDI's 0..127: the melody is shifted as a whole towards the mood's
    register, so a rare outlier far from its median could otherwise leave the range (and mido refuses it)."""
    while pitch > 127:
        pitch -= 12
    while pitch < 0:
        pitch += 12
    return pitch


def key_name(tonic: int, mode: str) -> str:
    """A readable key such as 'D minor' or 'F# minor' (the usual spelling of each key)."""
    name = mido_key(tonic, mode).removesuffix("m")
    return f"{name} {mode}"


def mido_key(tonic: int, mode: str) -> str:
    """The key for a MIDI key_signature meta event."""
    return (MINOR_KEYS if mode == "minor" else MAJOR_KEYS)[tonic % 12]


@dataclass
class ArrangedNote:
    """One note of the arrangement, in MIDI ticks (480 per quarter)."""

    part: str
    pitch: int
    start: int
    duration: int
    velocity: int


@dataclass
class Arrangement:
    """The arranged track: notes per part, programs, tempo, key and sections."""

    notes: list[ArrangedNote]
    programs: dict[str, int]
    bpm: float
    tonic: int
    mode: str
    bar_lengths: list[int]  # MIDI ticks of each bar
    time_signatures: list[tuple[int, int, int]]  # (bar, numerator, denominator)
    sections: list[tuple[str, int, int]]  # (name, first bar, end bar)
    title: str = ""
    fade_bars: int = 0
    meta: dict = field(default_factory=dict)
    ring_ticks: int = 0  # after the last bar: the final chord holds this long (a track longer than its bars)

    @property
    def n_bars(self) -> int:
        """Bars in the track."""
        return len(self.bar_lengths)

    @property
    def total_ticks(self) -> int:
        """Length in MIDI ticks (whole bars)."""
        return sum(self.bar_lengths)

    @property
    def seconds(self) -> float:
        """Length in seconds."""
        return self.total_ticks / MIDI_TPB * 60.0 / self.bpm

    @property
    def key(self) -> str:
        """E.g. 'D minor'."""
        return key_name(self.tonic, self.mode)

    def midi(self, parts: tuple[str, ...] | None = None) -> mido.MidiFile:
        """A type-1 MIDI file of the given parts (all by default), with a conductor track first."""
        parts = parts or tuple(p for p in CHANNELS if any(n.part == p for n in self.notes) or p != "drums")
        mid = mido.MidiFile(type=1, ticks_per_beat=MIDI_TPB)
        conductor = [
            (0, mido.MetaMessage("track_name", name=self.title or "lofi", time=0)),
            (0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(self.bpm), time=0)),
            (0, mido.MetaMessage("key_signature", key=mido_key(self.tonic, self.mode), time=0)),
        ]
        starts = self.bar_starts()
        for bar, num, den in self.time_signatures:
            conductor.append(
                (starts[bar], mido.MetaMessage("time_signature", numerator=num, denominator=den))
            )
        mid.tracks.append(_track(conductor, self.total_ticks + max(self.ring_ticks, 0)))
        for part in parts:
            ch = CHANNELS[part]
            vol, pan = MIX[part]
            events = [
                (0, mido.MetaMessage("track_name", name=part, time=0)),
                (0, mido.Message("program_change", channel=ch, program=self.programs.get(part, 0))),
                (0, mido.Message("control_change", channel=ch, control=7, value=vol)),
                (0, mido.Message("control_change", channel=ch, control=10, value=pan)),
                (0, mido.Message("control_change", channel=ch, control=91, value=0)),
                (0, mido.Message("control_change", channel=ch, control=93, value=0)),
            ]
            end = self.total_ticks
            stop = end + max(self.ring_ticks, 0)
            for n in self.notes:
                if n.part != part:
                    continue
                on = min(max(n.start, 0), end - 1)
                off = min(max(on + 1, n.start + n.duration), end)
                if stop > end and off >= end - MIDI_TPB // 2 and part != "drums":
                    off = stop  # what sounds as the last bar ends (the final chord) rings on to the very end
                events.append((on, mido.Message("note_on", channel=ch, note=n.pitch, velocity=n.velocity)))
                events.append((off, mido.Message("note_off", channel=ch, note=n.pitch, velocity=0)))
            mid.tracks.append(_track(events, stop))
        return mid

    def bar_starts(self) -> list[int]:
        """MIDI tick of each bar start, plus the end."""
        out, t = [], 0
        for b in self.bar_lengths:
            out.append(t)
            t += b
        return [*out, t]

    def write(self, path: Path, parts: tuple[str, ...] | None = None) -> Path:
        """Write the MIDI file (or a stem of some parts) to `path`."""
        self.midi(parts).save(path)
        return Path(path)


def _track(events: list[tuple[int, object]], end: int) -> mido.MidiTrack:
    # note_offs sort before note_ons at the same tick so a repeated note is not cut
    order = {"note_off": 0, "note_on": 2}
    events = sorted(events, key=lambda e: (e[0], order.get(getattr(e[1], "type", ""), 1)))
    track, now = mido.MidiTrack(), 0
    for tick, msg in events:
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=max(0, end - now)))
    return track


# ------------------------------------------------------------------------------------------------ sections
def plan_sections(n_bars: int, edges: bool = True) -> list[tuple[str, int, int]]:
    """(name, first bar, end bar) covering `n_bars`: intro, main, breakdown (drums out), main, outro.

    Without `edges` (a radio piece): no intro and no outro, so the piece opens and ends on full-texture main
    bars and the radio's crossfade joins two full mixes (a sparse intro under a thinning outro sagged)."""
    if n_bars < 6:
        return [("main", 0, n_bars)]
    if not edges:
        merged: list[tuple[str, int, int]] = []
        for name, lo, hi in _body(n_bars):
            name = "main" if name in ("intro", "outro") else name
            if merged and merged[-1][0] == name:  # the intro and outro join the main sections around them
                lo = merged.pop()[1]
            merged.append((name, lo, hi))
        return merged
    return _body(n_bars)


def _body(n_bars: int) -> list[tuple[str, int, int]]:
    """`plan_sections` with edges (at least 6 bars)."""
    intro = 2 if n_bars < 16 else 4
    outro = 2 if n_bars < 20 else 4
    out = [("intro", 0, intro)]
    body_end = n_bars - outro
    if n_bars >= 20:
        length = 2 if n_bars < 32 else 4
        start = min(max(intro + 4, int(round(n_bars * 0.55 / 4)) * 4), body_end - length - 2)
        out += [
            ("main", intro, start),
            ("breakdown", start, start + length),
            ("main", start + length, body_end),
        ]
    else:
        out.append(("main", intro, body_end))
    out.append(("outro", body_end, n_bars))
    return [s for s in out if s[2] > s[1]]


# ------------------------------------------------------------------------------------------------ voicings
def chord_tones(quality: str, extensions: str = "9") -> tuple[int, ...]:
    """Intervals above the root a LoFi player would use: sevenths always, ninths when `extensions` is '9'."""
    tones = LOFI_TONES.get(quality, QUALITIES.get(quality, (0, 4, 7)))
    if (
        extensions == "9"
        and len(tones) == 4
        and 14 not in tones
        and 2 not in tones
        and quality not in NO_NINTH
    ):
        tones = (*tones, 14)
    return tones


def _degree(interval: int) -> int:
    i = interval % 12
    return {0: 1, 1: 9, 2: 9, 3: 3, 4: 3, 5: 3, 6: 5, 7: 5, 8: 5, 9: 7, 10: 7, 11: 7}[i]


def candidate_voicings(
    root: int, tones: tuple[int, ...], spread: str | None, low: int = KEYS_LOW, high: int = KEYS_HIGH
) -> list[tuple[int, ...]]:
    """Close and drop-2 voicings of the chord (rootless when it has five tones) inside [low, high]."""
    pcs = [(root + t) % 12 for t in tones]
    if len(pcs) >= 5:
        pcs = pcs[1:5]  # rootless: the bass has the root; 3-5-7-9 (and inversions)
    pcs = list(dict.fromkeys(pcs))
    out = set()
    for rot in range(len(pcs)):
        order = pcs[rot:] + pcs[:rot]
        for base in range(low - 12, high):
            if base % 12 != order[0]:
                continue
            stack = [base]
            for pc in order[1:]:
                p = stack[-1] + 1
                while p % 12 != pc:
                    p += 1
                stack.append(p)
            voicings = []
            if spread in (None, "close"):
                voicings.append(tuple(stack))
            if spread in (None, "open") and len(stack) >= 3:
                drop = sorted([*stack[:-2], stack[-2] - 12, stack[-1]])
                voicings.append(tuple(drop))
            for v in voicings:
                if v[0] >= low and v[-1] <= high:
                    out.add(v)
    return sorted(out)


def choose_voicing(
    chord: Chord,
    prev: tuple[int, ...] | None,
    center: int,
    extensions: str = "9",
    rng: random.Random | None = None,
    tones: tuple[int, ...] | None = None,
) -> tuple[int, ...]:
    """The candidate nearest the previous voicing (smooth voice leading), near `center`, honouring the
    chord's voicing hint (close/open spread, chord degree on top) and avoiding muddy seconds down low.

    Args:
        chord: the chord symbol (root pitch class, quality, optional Voicing hint).
        prev: the previous voicing, or None at the start.
        center: MIDI pitch the voicing should gather around.
        extensions: '7' or '9'.
        rng: tie-breaking noise (seeded).
        tones: intervals to voice instead of the quality's LoFi tones (see `home_tones`).
    Returns:
        Sorted MIDI pitches.
    """
    home = tones
    tones = tones or chord_tones(chord.quality, extensions)
    hint = chord.voicing
    # The tonic's own tones (`home_tones`) have few drop-2 shapes in range: let it take either spread, so the
    # mood's register still decides where it sits.
    spread = hint.spread if hint and home is None else None
    cands = candidate_voicings(chord.root, tones, spread)
    if not cands:
        cands = candidate_voicings(chord.root, tones, None, KEYS_LOW - 6, KEYS_HIGH + 6)

    def cost(v: tuple[int, ...]) -> float:
        c = 0.1 * (sum(v) / len(v) - center) ** 2  # the mood's register pulls harder the further it drifts
        if prev:
            if len(prev) == len(v):
                c += sum(abs(a - b) for a, b in zip(prev, v, strict=True))
            else:
                c += sum(min(abs(a - b) for b in prev) for a in v)
        if hint is not None and _degree(v[-1] - chord.root) != hint.top:
            c += 5.0
        c += sum(6.0 for a, b in zip(v, v[1:], strict=False) if b - a <= 2 and a < 57)
        c += 0.25 * max(0, 55 - v[0])
        return c + (rng.random() * 0.5 if rng else 0.0)

    return min(cands, key=cost)


# ------------------------------------------------------------------------------------------------ the arranger
def _segments(score: Score) -> tuple[list[int], list[list[tuple[int, int, Chord, bool]]], list[list]]:
    """Source bar starts, the chord segments of each bar (local start, local end, chord, is onset) and the
    melody notes of each bar (local start, note)."""
    starts = score.bar_starts()
    n = score.n_bars
    chords: list[list] = [[] for _ in range(n)]
    melody: list[list] = [[] for _ in range(n)]
    for c in sorted(score.chords, key=lambda c: c.start):
        for b in range(n):
            lo, hi = starts[b], starts[b + 1]
            s, e = max(c.start, lo), min(c.start + c.duration, hi)
            if s < e:
                chords[b].append((s - lo, e - lo, c, c.start >= lo))
    for note in score.melody:
        for b in range(n):
            if starts[b] <= note.start < starts[b + 1]:
                melody[b].append((note.start - starts[b], note))
                break
    return starts, chords, melody


@dataclass
class _Timeline:
    """What every pitched part is played against: the track's bars (the source's, looped or cut), their
    sections, the source's chords and melody by bar, and the humanising random generator.

    The parts draw from the one generator in turn (keys, then bass, then melody), so that a seed keeps giving
    the track it gave before; a part that drew from its own would change every track.
    """

    src_n: int  # bars in the source score
    bar_len: list[int]  # MIDI ticks of each track bar
    bar_start: list[int]  # MIDI tick of each track bar, plus the end
    time_signatures: list[tuple[int, int, int]]  # (bar, numerator, denominator) where the metre changes
    sections: list[tuple[str, int, int]]
    section_of: dict[int, str]
    outro: tuple[int, int] | None
    chord_bars: list[list[tuple[int, int, Chord, bool]]]  # per source bar, see `_segments`
    melody_bars: list[list]  # per source bar: (local start, note)
    ticks_per_s: float
    rng: random.Random

    @property
    def n_bars(self) -> int:
        """Bars in the track."""
        return len(self.bar_len)

    def ms(self, x: float) -> int:
        """MIDI ticks in `x` milliseconds."""
        return int(round(x / 1000.0 * self.ticks_per_s))

    def human(self, t: int, sigma_ms: float, late_ms: float = 0.0) -> int:
        """Tick `t` played a little late and loose, as a player would."""
        return t + self.ms(late_ms + self.rng.gauss(0.0, sigma_ms))

    def vel(self, v: float, spread: int = 6) -> int:
        """Velocity `v` give or take `spread`, within MIDI's 1..127."""
        return max(1, min(127, int(round(v + self.rng.randint(-spread, spread)))))

    def fade(self, b: int) -> float:
        """The level of bar `b` (falling over the outro)."""
        return _outro_fade(self.outro, b)


def _timeline(score: Score, n_bars: int, seed: int, edges: bool = True) -> _Timeline:
    """The track's bars for `score` (at least one bar) looped or cut to `n_bars`, with their sections."""
    rng = random.Random(seed * 7919 + 17)
    src_n = score.n_bars
    starts, chord_bars, melody_bars = _segments(score)
    src_len = [(starts[i + 1] - starts[i]) for i in range(src_n)]
    bar_len = [src_len[b % src_n] * SCALE for b in range(n_bars)]
    sigs = sorted(score.time_signatures, key=lambda s: s.bar)
    ts_events, last = [], None
    for b in range(n_bars):
        s = next((s for s in reversed(sigs) if s.bar <= b % src_n), sigs[0])
        if (s.numerator, s.denominator) != last:
            ts_events.append((b, s.numerator, s.denominator))
            last = (s.numerator, s.denominator)
    bar_start = [0]
    for length in bar_len:
        bar_start.append(bar_start[-1] + length)
    sections = plan_sections(n_bars, edges)
    return _Timeline(
        src_n=src_n,
        bar_len=bar_len,
        bar_start=bar_start,
        time_signatures=ts_events,
        sections=sections,
        section_of={b: name for name, lo, hi in sections for b in range(lo, hi)},
        outro=next(((lo, hi) for name, lo, hi in sections if name == "outro"), None),
        chord_bars=chord_bars,
        melody_bars=melody_bars,
        ticks_per_s=MIDI_TPB * score.bpm / 60.0,
        rng=rng,
    )


def arrange(
    score: Score,
    mood_sound: dict,
    *,
    n_bars: int | None = None,
    seed: int = 0,
    library: GrooveLibrary | None = None,
    title: str = "",
    edges: bool = True,
) -> Arrangement:
    """Arrange `score` (at its own tonic and tempo) for `n_bars` bars with a mood's sound settings.

    Args:
        score: the lead sheet (melody + chord symbols), already in its real key.
        mood_sound: the mood's sound tables (`instruments`, `drums`, ...); missing keys get defaults.
        n_bars: bars in the track; the source bars are looped or cut to fit (default: the score's bars).
        seed: seeds every humanising and choosing RNG.
        library: groove library (default: the cached one from the corpus).
        title: track title for the MIDI file.
        edges: with an intro and an outro (`plan_sections`); a radio piece has neither.
    Returns:
        The arrangement (write it with `.write(path)`).
    """
    inst = dict(mood_sound.get("instruments", {}))
    n_bars = n_bars or max(score.n_bars, 1)
    if score.n_bars <= 0:
        score = replace(score, n_bars=1)
    tl = _timeline(score, n_bars, seed, edges)
    # In this order: the three parts draw from the timeline's one generator in turn (see `_Timeline`).
    notes = _keys(tl, inst, score.tonic)
    notes += _bass(tl, inst)
    notes += _melody(tl, inst)
    # The drums depend only on the bars and sections (`arrange_drums`).
    feel = dict(mood_sound.get("drums", {}))
    drum_notes, pats = arrange_drums(tl.bar_len, tl.sections, score.bpm, feel, seed, lib=library)
    notes.extend(drum_notes)

    programs = {
        "keys": int(inst.get("keys", 4)),
        "bass": int(inst.get("bass", 32)),
        "melody": int(inst.get("melody", 4)),
        "drums": 0,
    }
    arr = Arrangement(
        notes,
        programs,
        score.bpm,
        score.tonic,
        score.mode,
        tl.bar_len,
        tl.time_signatures,
        tl.sections,
        title,
        fade_bars=tl.outro[1] - tl.outro[0] if tl.outro else 0,
    )
    arr.meta["drum_patterns"] = [p.source for p in pats]
    return arr


def _keys(tl: _Timeline, inst: dict, tonic: int) -> list[ArrangedNote]:
    """The Rhodes: each chord voiced near the last (`choose_voicing`), rolled gently from the bottom up, and
    in the main sections a long chord now and then re-struck softly, as a LoFi player comps."""
    center = int(inst.get("keys_center", 62))
    ext = str(inst.get("extensions", "9"))
    kv = float(inst.get("keys_velocity", 62))
    ms, rng = tl.ms, tl.rng
    notes = []
    prev = None
    for b in range(tl.n_bars):
        sec = tl.section_of[b]
        level = kv * (0.85 if sec in ("intro", "breakdown") else 1.0) * tl.fade(b)
        for s, e, chord, _onset in tl.chord_bars[b % tl.src_n]:
            if chord.quality == NO_CHORD:
                continue
            voicing = choose_voicing(chord, prev, center, ext, rng, tones=home_tones(chord, tonic))
            prev = voicing
            t0 = tl.bar_start[b] + s * SCALE
            dur = (e - s) * SCALE
            last_bar = b == tl.n_bars - 1
            hits = [(0, dur)]
            # a LoFi comp: a long chord is re-struck, softly, on the "and" of 2 or beat 3 now and then
            if dur >= 3 * MIDI_TPB and sec == "main" and rng.random() < 0.35 and not last_bar:
                split = (5 * MIDI_TPB) // 2 if rng.random() < 0.5 else 2 * MIDI_TPB
                hits = [(0, split), (split, dur - split)]
            for k, (off, length) in enumerate(hits):
                start = tl.human(t0 + off, 6.0, late_ms=12.0)
                if b == 0 and s == 0 and off == 0:
                    start = max(start, 0)
                hold = length - ms(40) if not last_bar else tl.bar_start[-1] - (t0 + off)
                for i, p in enumerate(voicing):  # a gentle roll, bottom up
                    notes.append(
                        ArrangedNote(
                            "keys",
                            p,
                            start + ms(7 * i),
                            max(hold - ms(7 * i), ms(60)),
                            tl.vel(level * (0.8 if k else 1.0) * (0.92 if i == 0 else 1.0)),
                        )
                    )
    return notes


def _bass(tl: _Timeline, inst: dict) -> list[ArrangedNote]:
    """The bass: out in the intro and the outro's last bar, the chord's bass note (nearest the last) on each
    chord, and on a long chord a fifth or the root on beat 3 and now and then a chromatic approach to the next
    chord; in the breakdown only the held bass note."""
    busy = float(inst.get("bass_busy", 0.3))
    bv = float(inst.get("bass_velocity", 82))
    ms, rng, outro = tl.ms, tl.rng, tl.outro
    notes = []
    prev_bass = 40
    beat = MIDI_TPB
    for b in range(tl.n_bars):
        sec = tl.section_of[b]
        if sec == "intro" or (outro and b >= outro[1] - 1 and outro[1] - outro[0] > 1):
            continue
        segs = tl.chord_bars[b % tl.src_n]
        nxt = tl.chord_bars[(b + 1) % tl.src_n] if b + 1 < tl.n_bars else []
        for i, (s, e, chord, _onset) in enumerate(segs):
            if chord.quality == NO_CHORD:
                continue
            pc = (chord.root + chord.bass) % 12
            cands = [p for p in range(BASS_LOW, BASS_HIGH + 1) if p % 12 == pc]
            root = min(cands, key=lambda p: abs(p - prev_bass) + 0.3 * abs(p - 40))
            prev_bass = root
            t0, t1 = tl.bar_start[b] + s * SCALE, tl.bar_start[b] + e * SCALE
            length = t1 - t0
            level = bv * tl.fade(b) * (0.85 if sec == "breakdown" else 1.0)
            first = min(length, 2 * beat) if sec != "breakdown" else length
            notes.append(
                ArrangedNote("bass", root, tl.human(t0, 5.0, 6.0), first - ms(30), tl.vel(level + 6))
            )
            if sec == "breakdown" or length < 3 * beat:
                continue
            fifth_pc = (chord.root + (6 if chord.quality in ("dim", "dim7", "hdim7") else 7)) % 12
            fifth = next(p for p in range(root - 7, root + 12) if p % 12 == fifth_pc)
            second = fifth if rng.random() < busy + 0.2 else root
            approach = None
            following = segs[i + 1] if i + 1 < len(segs) else (nxt[0] if nxt and nxt[0][0] == 0 else None)
            if following and following[2].quality != NO_CHORD and rng.random() < busy:
                tpc = (following[2].root + following[2].bass) % 12
                target = min(
                    (p for p in range(BASS_LOW, BASS_HIGH + 1) if p % 12 == tpc), key=lambda p: abs(p - root)
                )
                approach = target + (1 if rng.random() < 0.5 else -1)
            t2 = t0 + 2 * beat
            end2 = t1 - beat // 2 if approach is not None else t1
            notes.append(
                ArrangedNote(
                    "bass", second, tl.human(t2, 5.0, 6.0), max(end2 - t2 - ms(40), ms(80)), tl.vel(level - 4)
                )
            )
            if approach is not None:
                ta = t1 - beat // 2
                notes.append(
                    ArrangedNote(
                        "bass", approach, tl.human(ta, 5.0, 8.0), beat // 2 - ms(30), tl.vel(level - 10)
                    )
                )
    return notes


def _melody(tl: _Timeline, inst: dict) -> list[ArrangedNote]:
    """The melody as written, moved by octaves so that its median sits near the mood's register, a little
    softer in the intro."""
    mel = [n for bars in tl.melody_bars for _, n in bars]
    shift = 0
    if mel:
        pitches = sorted(n.pitch for n in mel)
        median = pitches[len(pitches) // 2]
        mc = int(inst.get("melody_center", 72))
        while median + shift < mc - 6:
            shift += 12
        while median + shift > mc + 6:
            shift -= 12
    mv = float(inst.get("melody_velocity", 68))
    notes = []
    for b in range(tl.n_bars):
        sec = tl.section_of[b]
        level = mv * tl.fade(b) * (0.85 if sec == "intro" else 1.0)
        for s, note in tl.melody_bars[b % tl.src_n]:
            t0 = tl.bar_start[b] + s * SCALE
            dur = min(note.duration * SCALE, tl.bar_start[-1] - t0)
            notes.append(
                ArrangedNote(
                    "melody",
                    _in_midi_range(note.pitch + shift),
                    tl.human(t0, 7.0, 4.0),
                    max(dur - tl.ms(25), tl.ms(60)),
                    tl.vel(level * note.velocity / 80.0),
                )
            )
    return notes


def arrange_drums(
    bar_len: list[int],
    sections: list[tuple[str, int, int]],
    bpm: float,
    feel: dict,
    seed: int,
    *,
    lib: GrooveLibrary | None = None,
) -> tuple[list[ArrangedNote], list]:
    """(drum notes, the two grooves used) for bars of `bar_len` ticks in `sections` at `bpm`.

    The drums depend on nothing the models write, only on the bars, sections, tempo, the mood's drum feel and
    the seed: they draw from a random generator of their own, so the other parts' choices do not move them.
    """
    rng = random.Random(seed * 7919 + 23)
    lib = lib or load_library()
    n_bars = len(bar_len)
    bar_start = [0]
    for length in bar_len:
        bar_start.append(bar_start[-1] + length)
    section_of = {b: name for name, lo, hi in sections for b in range(lo, hi)}
    outro = next(((lo, hi) for name, lo, hi in sections if name == "outro"), None)
    styles = tuple(feel.get("styles", ("hiphop",)))
    pats = lib.beats_for(styles, bpm, rng, k=2)
    drum_bars = set()
    for name, lo, hi in sections:
        if name == "main":
            drum_bars.update(range(lo, hi))
        elif name == "outro":
            drum_bars.update(range(lo, lo + (hi - lo) // 2))
    notes = []
    for b in sorted(drum_bars):
        sec_lo = max(lo for name, lo, hi in sections if lo <= b)
        i = b - sec_lo
        pat = pats[1] if (i % 4 == 3 and len(pats) > 1) else pats[0]
        beats = bar_len[b] / MIDI_TPB
        hits = shape_pattern(pat, feel, rng, beats)
        ends_section = (b + 1 not in drum_bars) or section_of.get(b + 1) != section_of[b]
        if (ends_section or i % 8 == 7) and b + 1 < n_bars:
            fill = lib.fill_for(styles, bpm, rng)
            if fill is not None:
                fh = [h for h in shape_pattern(fill, feel, rng, beats, fill=True) if h[0] >= beats / 2]
                hits = [h for h in hits if h[0] < beats / 2] + fh
        for t, note, v in hits:
            start = bar_start[b] + int(round(t * MIDI_TPB))
            if start < 0:
                continue
            velocity = max(1, min(127, int(v * _outro_fade(outro, b))))
            notes.append(ArrangedNote("drums", note, start, MIDI_TPB // 8, velocity))
    return notes, pats


def _outro_fade(outro: tuple[int, int] | None, b: int) -> float:
    """The level of bar `b`: 1, falling by up to 45 % over the outro."""
    if outro and b >= outro[0]:
        return 1.0 - 0.45 * (b - outro[0] + 1) / (outro[1] - outro[0])
    return 1.0
