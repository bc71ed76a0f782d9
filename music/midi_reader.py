"""A MIDI file (POP909 or generic) as a `Score`: its melody line, metre, tempo, key and chords.

The file is read with music21's low-level reader (`music21.midi.MidiFile`) and walked event by event, about
20x faster than `music21.converter`. Every time is quantised to the `TICKS_PER_BEAT` grid (after delaying the
file by under a beat when it was recorded against a beat grid that does not start at tick 0).
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from music.chord_inference import downbeat_shift, infer_chords
from music.chords import NO_CHORD
from music.errors import CorpusFileError
from music.key_finding import key_from_histogram
from music.limits import DRUM_CHANNEL
from music.parse_info import ParseInfo
from music.pop909_sidecars import CHORD_SIDECAR, KEY_SIDECAR, sidecar_chords, sidecar_key
from music.score import TICKS_PER_BEAT, Chord, Note, Score, TimeSignature
from music.score_building import (
    DEFAULT_BPM,
    MAX_BARS,
    MELODY_NAMES,
    bars_to_cover,
    legato_melody,
    metres,
    trim_leading_bars,
)
from music.tokens import TIME_SIGNATURES

M21_DRUM_CHANNEL = DRUM_CHANNEL + 1  # music21 numbers channels from 1

Quantiser = Callable[[float], int]  # file ticks -> grid ticks


@dataclass
class _MidiNote:
    pitch: int
    on: int  # file ticks
    off: int
    velocity: int
    channel: int


@dataclass
class _MidiTrack:
    name: str = ""
    notes: list[_MidiNote] = field(default_factory=list)

    @property
    def drums(self) -> bool:
        return bool(self.notes) and all(n.channel == M21_DRUM_CHANNEL for n in self.notes)


class TempoMap:
    """File ticks <-> seconds under the tempo changes of a MIDI file."""

    def __init__(self, tpq: int, changes: list[tuple[int, int]]):
        self.tpq = tpq
        changes = sorted(changes) or [(0, 500000)]
        if changes[0][0] != 0:
            changes.insert(0, (0, 500000))
        self.ticks, self.us, self.secs = [], [], []
        sec = 0.0
        for i, (tick, us) in enumerate(changes):
            if i:
                sec += (tick - self.ticks[-1]) * self.us[-1] / 1e6 / tpq
            self.ticks.append(tick)
            self.us.append(us)
            self.secs.append(sec)

    def to_ticks(self, seconds: float) -> float:
        """File ticks at `seconds`."""
        i = max(bisect.bisect_right(self.secs, seconds) - 1, 0)
        return self.ticks[i] + (seconds - self.secs[i]) * 1e6 / self.us[i] * self.tpq


def parse_midi(data: bytes, sidecars: dict[str, bytes], info: ParseInfo) -> Score:
    """A MIDI file (with optional POP909 side-cars) as a `Score`."""
    tpq, tracks, tempos, sigs, keys = _read_midi(data)
    pitched = [t for t in tracks if t.notes and not t.drums]
    if not pitched:
        if any(t.notes for t in tracks):
            raise CorpusFileError("drum track only")
        raise CorpusFileError("no notes")
    q = _quantiser(pitched, tpq, info)
    names = {t.name.strip().upper(): t for t in pitched}
    pop909 = "MELODY" in names and "PIANO" in names
    info.kind = "pop909" if pop909 else "midi"
    melody_track = next((t for t in pitched if any(w in t.name.lower() for w in MELODY_NAMES)), None)
    others = [n for t in pitched for n in t.notes if n.channel != M21_DRUM_CHANNEL]
    if melody_track is not None:
        info.melody_from = f"track:{melody_track.name}"
        raw = [n for n in melody_track.notes if n.channel != M21_DRUM_CHANNEL]
    else:
        info.melody_from = "skyline"
        raw = others
    time_signatures = _time_signatures(sigs, q, pop909, info)
    bpm = 60e6 / sorted(tempos)[0][1] if tempos else DEFAULT_BPM
    info.tempo_from = "mark" if tempos else "default"
    melody = _quantise_melody(raw, q, info, skyline=melody_track is None)
    tonic, mode = _key(sidecars.get(KEY_SIDECAR), keys, others, info)

    end = max([n.start + n.duration for n in melody] + [q(n.off) for n in others] + [1])
    n_bars = bars_to_cover(time_signatures, end)
    score = Score(melody, [], time_signatures, float(bpm), mode, tonic, n_bars)
    if n_bars > MAX_BARS:
        raise CorpusFileError(f"piece longer than {MAX_BARS} bars")

    chord_text = sidecars.get(CHORD_SIDECAR)
    if chord_text and pop909:
        info.chords_from = CHORD_SIDECAR
        tmap, piano = TempoMap(tpq, tempos), names.get("PIANO")
        piano_notes = [(q(n.on), q(n.off), n.pitch) for n in piano.notes] if piano else []
        score.chords = sidecar_chords(chord_text, lambda s: q(tmap.to_ticks(s)), piano_notes, info)
        score = _align_bars(score)
    else:
        accompaniment = [n for n in others if melody_track is None or n not in melody_track.notes]
        notes = [(n.pitch, q(n.on), max(q(n.off), q(n.on) + 1)) for n in accompaniment or others]
        trusted_bars = not (pop909 or info.metre or not sigs)
        _infer_chords(score, notes, trusted_bars, info)
    return trim_leading_bars(score)


def _check_chunks(data: bytes) -> None:
    """Reject what music21 would half-read: a missing header or tracks cut short."""
    if data[:4] != b"MThd":
        raise CorpusFileError("not a MIDI file (no MThd header)")
    if len(data) < 14:
        raise CorpusFileError("truncated MIDI file (header cut short)")
    n_tracks = int.from_bytes(data[10:12], "big")
    pos, found = 8 + int.from_bytes(data[4:8], "big"), 0
    while pos + 8 <= len(data) and found < n_tracks:
        length = int.from_bytes(data[pos + 4 : pos + 8], "big")
        if data[pos : pos + 4] == b"MTrk":
            found += 1
        if pos + 8 + length > len(data):
            raise CorpusFileError("truncated MIDI file (a track runs past the end of the file)")
        pos += 8 + length
    if found < n_tracks:
        raise CorpusFileError(f"truncated MIDI file ({found} of {n_tracks} tracks present)")
    if int.from_bytes(data[12:14], "big") & 0x8000:
        raise CorpusFileError("SMPTE time division is not supported")


def _read_midi(data: bytes):
    """(ticks per quarter, tracks, tempos, time signatures, key signatures) of a MIDI file, in file ticks.

    Notes are paired on and off per channel and pitch, first in first out; a note never released ends with
    its track. Tempos are (tick, microseconds per quarter), signatures (tick, numerator, denominator) and keys
    (tick, sharps (negative: flats), minor).
    """
    from music21 import midi

    _check_chunks(data)
    mf = midi.MidiFile()
    mf.readstr(data)
    tpq = mf.ticksPerQuarterNote
    if not tpq or tpq <= 0:
        raise CorpusFileError("MIDI file has no ticks-per-quarter division")
    tracks: list[_MidiTrack] = []
    tempos: list[tuple[int, int]] = []
    sigs: list[tuple[int, int, int]] = []
    keys: list[tuple[int, int, int]] = []
    for mtrack in mf.tracks:
        tick = 0
        track = _MidiTrack()
        sounding: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for ev in mtrack.events:
            if isinstance(ev, midi.DeltaTime):
                tick += ev.time or 0
                continue
            t = ev.type
            if t == midi.ChannelVoiceMessages.NOTE_ON and ev.velocity:
                sounding.setdefault((ev.channel, ev.pitch), []).append((tick, ev.velocity))
            elif t in (midi.ChannelVoiceMessages.NOTE_ON, midi.ChannelVoiceMessages.NOTE_OFF):
                stack = sounding.get((ev.channel, ev.pitch))
                if stack:
                    on, vel = stack.pop(0)
                    track.notes.append(_MidiNote(ev.pitch, on, tick, vel, ev.channel))
            elif t == midi.MetaEvents.SET_TEMPO and len(ev.data) >= 3:
                us = int.from_bytes(ev.data[:3], "big")
                if us > 0:
                    tempos.append((tick, us))
            elif t == midi.MetaEvents.TIME_SIGNATURE and len(ev.data) >= 2:
                sigs.append((tick, ev.data[0], 2 ** ev.data[1]))
            elif t == midi.MetaEvents.KEY_SIGNATURE and len(ev.data) >= 2:
                sf = ev.data[0] - 256 if ev.data[0] > 127 else ev.data[0]
                keys.append((tick, sf, ev.data[1]))
            elif t == midi.MetaEvents.SEQUENCE_TRACK_NAME and not track.name:
                track.name = bytes(ev.data).decode("latin-1", "replace").strip()
        for (channel, pitch), stack in sounding.items():  # never released: end with the track
            track.notes += [_MidiNote(pitch, on, max(tick, on + 1), vel, channel) for on, vel in stack]
        tracks.append(track)
    return tpq, tracks, tempos, sigs, keys


def _quantiser(pitched: list[_MidiTrack], tpq: int, info: ParseInfo) -> Quantiser:
    """File ticks -> grid ticks, the file delayed by under a beat so that its beats fall on grid beats
    (the delay is noted in `info.beat_offset`)."""
    scale = TICKS_PER_BEAT / tpq
    phase = beat_phase([n.on for t in pitched for n in t.notes], tpq)
    delay = (tpq - phase) % tpq
    if delay:
        info.beat_offset = round(delay / tpq, 3)

    def q(tick: float) -> int:
        return int(math.floor((tick + delay) * scale + 0.5))

    return q


# Weight of an onset by where it falls in the beat: on it, on the half, on a quarter, on a third.
_PHASE_WEIGHTS = ((0.0, 4.0), (0.5, 2.0), (0.25, 1.0), (0.75, 1.0), (1 / 3, 0.5), (2 / 3, 0.5), (1.0, 4.0))


def beat_phase(onsets: list[int], tpq: int) -> int:
    """Where the beat falls in a MIDI file, in file ticks after each multiple of `tpq` (0 if aligned).

    Some files (POP909 among them) are recorded against a beat grid that does not start at tick 0;
    quantising them from tick 0 would put every note off the beat. The phase chosen is the one that
    puts the most onsets on beats, half beats and quarter beats; 0 unless another is clearly better.
    """
    if not onsets:
        return 0
    hist = Counter(t % tpq for t in onsets)
    tol = tpq / 48

    def fit(o: int) -> float:
        total = 0.0
        for ph, count in hist.items():
            d = ((ph - o) % tpq) / tpq
            total += count * next((w for x, w in _PHASE_WEIGHTS if abs(d - x) * tpq <= tol), 0.0)
        return total

    aligned = fit(0)
    best = max((o for o, _ in hist.most_common(24)), key=lambda o: (fit(o), -o))
    return best if fit(best) > 1.1 * aligned else 0


def _time_signatures(
    sigs: list[tuple[int, int, int]], q: Quantiser, pop909: bool, info: ParseInfo
) -> list[TimeSignature]:
    """The file's metres: the first signature, and later ones that fall on a bar line of the one before.

    MIDI metres are often placeholders (POP909 writes 1/4 or 2/4 in most files of what is 4/4 pop): an
    unsupported metre, and POP909's 1/4 and 2/4, become 4/4 with the changes dropped (noted in `info.metre`).
    """
    ordered = sorted(sigs)
    first_ts = (ordered[0][1], ordered[0][2]) if ordered else (4, 4)
    later = [(q(tick), n, d) for tick, n, d in ordered[1:]]
    if first_ts not in TIME_SIGNATURES or (pop909 and first_ts in ((1, 4), (2, 4))):
        info.metre = f"{first_ts[0]}/{first_ts[1]} read as 4/4"
        first_ts, later = (4, 4), []
    try:
        return metres(first_ts, later)
    except CorpusFileError as exc:
        info.metre = f"{exc}: later metre changes dropped"
        return metres(first_ts, [])


def _quantise_melody(raw: list[_MidiNote], q: Quantiser, info: ParseInfo, skyline: bool) -> list[Note]:
    """Melody notes on the grid: one note per onset (the highest), cut where the next onset begins."""
    info.notes_source = len(raw)
    by_onset: dict[int, tuple[int, int, int]] = {}
    for n in raw:
        start = q(n.on)
        end = max(q(n.off), start + 1)
        prev = by_onset.get(start)
        if prev is None or n.pitch > prev[0]:
            if prev is not None:
                info.notes_dropped[
                    "lower note at one onset" if not skyline else "skyline: not the top line"
                ] += 1
            by_onset[start] = (n.pitch, end - start, n.velocity)
        else:
            info.notes_dropped["lower note at one onset" if not skyline else "skyline: not the top line"] += 1
    return legato_melody(by_onset, info)


def _key(
    key_text: bytes | None, keys: list[tuple[int, int, int]], others: list[_MidiNote], info: ParseInfo
) -> tuple[int, str]:
    """(tonic, mode): from POP909's `key_audio.txt`, else the first key signature, else analysed from how
    long each pitch class sounds (where it came from is noted in `info.key_from`)."""
    tonic_mode = sidecar_key(key_text) if key_text else None
    if tonic_mode:
        info.key_from = KEY_SIDECAR
    elif keys:
        _, sf, mi = sorted(keys)[0]
        tonic_mode = ((sf * 7 + (9 if mi else 0)) % 12, "minor" if mi else "major")
        info.key_from = "key signature"
    else:
        hist = [0.0] * 12
        for n in others:
            hist[n.pitch % 12] += max(n.off - n.on, 1)
        tonic_mode = key_from_histogram(hist)
        info.key_from = "analysis"
    return tonic_mode


def _infer_chords(
    score: Score, notes: list[tuple[int, int, int]], trusted_bars: bool, info: ParseInfo
) -> None:
    """Give `score` chords inferred from the accompaniment `notes` (pitch, start, end on the grid).

    When the file's bar lines are not to be trusted (POP909's placeholders, a replaced metre, none at all),
    the piece is first delayed by whole beats so that the chord changes fall on bar lines (`downbeat_shift`).
    """
    info.chords_from = "inferred"
    if not trusted_bars:
        shift = downbeat_shift(notes, score)
        if shift:
            info.downbeat_shift = shift / TICKS_PER_BEAT
            notes = [(p, on + shift, off + shift) for p, on, off in notes]
            score.melody = [Note(n.pitch, n.start + shift, n.duration, n.velocity) for n in score.melody]
            score.n_bars = bars_to_cover(score.time_signatures, score.total_ticks + shift)
    score.chords = infer_chords(notes, score)


def _align_bars(score: Score) -> Score:
    """Delay a one-metre piece by whole beats so that most chord changes fall on bar lines.

    POP909's MIDI files do not mark downbeats (their metre events are placeholders), but its chord
    changes mostly fall on them.
    """
    if len(score.time_signatures) != 1 or not score.chords:
        return score
    length = score.time_signatures[0].ticks
    starts = [c.start for c in score.chords if c.quality != NO_CHORD]
    best = max(
        range(0, length, TICKS_PER_BEAT), key=lambda s: (sum((t + s) % length == 0 for t in starts), -s)
    )
    if not best:
        return score
    score.melody = [Note(n.pitch, n.start + best, n.duration, n.velocity) for n in score.melody]
    score.chords = [
        Chord(c.start + best, c.duration, c.root, c.quality, c.bass, c.voicing) for c in score.chords
    ]
    score.n_bars = bars_to_cover(score.time_signatures, score.total_ticks + best)
    return score
