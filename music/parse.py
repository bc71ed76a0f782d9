"""Reading music files into a `Score`: MIDI (POP909 or generic) and MusicXML lead sheets.

MIDI is read with music21's low-level reader (`music21.midi.MidiFile`) and walked event by event, about
20x faster than `music21.converter`; MusicXML goes through `music21.converter`. Every time is quantised
to the `TICKS_PER_BEAT` grid, and melody durations to the representation's duration grid, so that a
parsed score encodes exactly (what the quantisation changed is counted in `ParseInfo`).

Nothing here imports TensorFlow or touches the disk beyond reading the given file and its POP909
side-cars (`chord_midi.txt`, `key_audio.txt` in the same folder).
"""

from __future__ import annotations

import bisect
import io
import math
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from music.chords import NO_CHORD, QUALITIES, match_quality, pitch_classes
from music.errors import CorpusFileError
from music.limits import DRUM_CHANNEL
from music.score import TICKS_PER_BEAT, Chord, Note, Score, TimeSignature, Voicing, bar_ticks
from music.tokens import DURATIONS, TIME_SIGNATURES

PARSER_VERSION = "parse-v5"  # v5: chord inference (templates, bass, key, Viterbi) and downbeats
MIDI_SUFFIXES = (".mid", ".midi")
XML_SUFFIXES = (".mxl", ".musicxml", ".xml")
MUSIC_SUFFIXES = MIDI_SUFFIXES + XML_SUFFIXES
CHORD_SIDECAR = "chord_midi.txt"
KEY_SIDECAR = "key_audio.txt"
SIDECARS = (CHORD_SIDECAR, KEY_SIDECAR)

DEFAULT_BPM = 120.0  # the MIDI and MusicXML default when a file has no tempo mark
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_MXL_XML_BYTES = 64 * 1024 * 1024  # uncompressed score inside an .mxl
MAX_MXL_RATIO = 200
MAX_BARS = 2000
MIN_MELODY_NOTES = 8
CHORD_GRID = 6  # chord changes snap to eighth notes
MELODY_NAMES = ("melody", "lead", "vocal", "voice", "singer")
M21_DRUM_CHANNEL = DRUM_CHANNEL + 1  # music21 numbers channels from 1

PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}

# Harte shorthands (Harte et al. 2005, plus the extensions POP909 uses) as semitone sets.
HARTE_SHORTHANDS: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "dim": (0, 3, 6),
    "aug": (0, 4, 8),
    "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10),
    "7": (0, 4, 7, 10),
    "dim7": (0, 3, 6, 9),
    "hdim7": (0, 3, 6, 10),
    "minmaj7": (0, 3, 7, 11),
    "maj6": (0, 4, 7, 9),
    "min6": (0, 3, 7, 9),
    "9": (0, 4, 7, 10, 14),
    "maj9": (0, 4, 7, 11, 14),
    "min9": (0, 3, 7, 10, 14),
    "sus2": (0, 2, 7),
    "sus4": (0, 5, 7),
    "11": (0, 4, 7, 10, 14, 17),
    "min11": (0, 3, 7, 10, 14, 17),
    "13": (0, 4, 7, 10, 14, 21),
    "maj13": (0, 4, 7, 11, 14, 21),
    "min13": (0, 3, 7, 10, 14, 21),
    "5": (0, 7),
    "1": (0,),
}
DEGREE_SEMITONES = {1: 0, 2: 2, 3: 4, 4: 5, 5: 7, 6: 9, 7: 11, 8: 12, 9: 14, 10: 16, 11: 17, 12: 19, 13: 21}

# music21 ChordSymbol.chordKind -> quality, for the kinds that have an exact match.
KIND_QUALITY = {
    "major": "maj",
    "minor": "min",
    "diminished": "dim",
    "augmented": "aug",
    "suspended-second": "sus2",
    "suspended-fourth": "sus4",
    "major-sixth": "maj6",
    "minor-sixth": "min6",
    "dominant-seventh": "dom7",
    "dominant": "dom7",
    "major-seventh": "maj7",
    "minor-seventh": "min7",
    "minor-major-seventh": "minmaj7",
    "half-diminished-seventh": "hdim7",
    "half-diminished": "hdim7",
    "diminished-seventh": "dim7",
    "augmented-seventh": "aug7",
    "seventh-flat-five": None,
    "dominant-ninth": "dom9",
    "major-ninth": "maj9",
    "minor-ninth": "min9",
    "minor-11th": "min11",
    "dominant-13th": "dom13",
    "suspended-fourth-seventh": "7sus4",
}

# Krumhansl-Kessler key profiles (the ones music21's KrumhanslKessler analysis uses).
KK_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
KK_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)


@dataclass
class ParseInfo:
    """What parsing found and had to change, for `lofi corpus stats/check` (counts)."""

    kind: str = ""  # 'pop909', 'midi', 'leadsheet'
    melody_from: str = ""  # 'track:<name>', 'skyline', 'part:<name>'
    key_from: str = ""  # 'key_audio.txt', 'key signature', 'analysis'
    chords_from: str = ""  # 'chord_midi.txt', 'chord symbols', 'inferred', 'none'
    metre: str = ""  # how an unusable metre was replaced, if it was
    tempo_from: str = ""  # 'mark' or 'default'
    beat_offset: float = 0.0  # beats a MIDI file was delayed by to put its beats on the grid
    downbeat_shift: float = 0.0  # beats a file without trusted bar lines was delayed by (inferred chords)
    notes_source: int = 0  # melody notes in the file
    notes_dropped: Counter = field(default_factory=Counter)  # reason -> count
    durations_snapped: int = 0  # durations moved to the duration grid
    chord_symbols: int = 0
    chord_symbols_exact: int = 0  # symbols whose quality has an exact QUALITIES match
    chord_approx: Counter = field(default_factory=Counter)  # source label -> count, when approximated

    def to_dict(self) -> dict:
        """A JSON-ready copy."""
        return {
            "kind": self.kind,
            "melody_from": self.melody_from,
            "key_from": self.key_from,
            "chords_from": self.chords_from,
            "metre": self.metre,
            "tempo_from": self.tempo_from,
            "beat_offset": self.beat_offset,
            "downbeat_shift": self.downbeat_shift,
            "notes_source": self.notes_source,
            "notes_dropped": dict(self.notes_dropped),
            "durations_snapped": self.durations_snapped,
            "chord_symbols": self.chord_symbols,
            "chord_symbols_exact": self.chord_symbols_exact,
            "chord_approx": dict(self.chord_approx),
        }


# ---------------------------------------------------------------------------------------------- entry
def parse_file(
    path: Path | str,
    data: bytes | None = None,
    sidecars: dict[str, bytes] | None = None,
    info: ParseInfo | None = None,
) -> Score:
    """The `Score` in the music file `path` (its bytes may be given as `data`).

    Args:
        path: the file's name (its suffix picks the reader); read from disk when `data` is None.
        data: the file's bytes, e.g. from a zip member.
        sidecars: POP909 annotations by file name (`chord_midi.txt`, `key_audio.txt`); when None they
            are read from beside `path` if it is a real file.
        info: filled with what parsing found and changed.
    Returns:
        The score, quantised to the tick grid. Raises CorpusFileError with a clear reason otherwise.
    """
    path = Path(path)
    info = info if info is not None else ParseInfo()
    suffix = path.suffix.lower()
    if suffix not in MUSIC_SUFFIXES:
        raise CorpusFileError(f"not a music file (suffix {suffix or 'none'!r})")
    if data is None:
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise CorpusFileError(f"file larger than {MAX_FILE_BYTES // 2**20} MiB")
            data = path.read_bytes()
        except OSError as exc:
            raise CorpusFileError(f"cannot read file: {exc.strerror or exc}") from exc
        if sidecars is None:
            sidecars = {}
            for name in SIDECARS:
                side = path.parent / name
                if side.is_file() and side.stat().st_size < 1 << 20:
                    sidecars[name] = side.read_bytes()
    if len(data) > MAX_FILE_BYTES:
        raise CorpusFileError(f"file larger than {MAX_FILE_BYTES // 2**20} MiB")
    if not data:
        raise CorpusFileError("empty file")
    try:
        if suffix in MIDI_SUFFIXES:
            score = parse_midi(data, sidecars or {}, info)
        else:
            score = parse_musicxml(data, suffix, info)
    except CorpusFileError:
        raise
    except Exception as exc:  # music21 raises many kinds on corrupt input
        raise CorpusFileError(f"corrupt or unreadable file ({type(exc).__name__}: {exc})"[:300]) from exc
    score.title = score.title or path.stem
    return score


# ----------------------------------------------------------------------------------------------- MIDI
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


def parse_midi(data: bytes, sidecars: dict[str, bytes], info: ParseInfo) -> Score:
    """A MIDI file (with optional POP909 side-cars) as a `Score`."""
    tpq, tracks, tempos, sigs, keys = _read_midi(data)
    pitched = [t for t in tracks if t.notes and not t.drums]
    if not pitched:
        if any(t.notes for t in tracks):
            raise CorpusFileError("drum track only")
        raise CorpusFileError("no notes")
    scale = TICKS_PER_BEAT / tpq
    phase = beat_phase([n.on for t in pitched for n in t.notes], tpq)
    delay = (tpq - phase) % tpq  # delay by under a beat so the file's beats fall on grid beats
    if delay:
        info.beat_offset = round(delay / tpq, 3)

    def q(tick: float) -> int:
        return int(math.floor((tick + delay) * scale + 0.5))

    names = {t.name.strip().upper(): t for t in pitched}
    pop909 = "MELODY" in names and "PIANO" in names
    info.kind = "pop909" if pop909 else "midi"
    melody_track = None
    for t in pitched:
        if any(word in t.name.lower() for word in MELODY_NAMES):
            melody_track = t
            break
    others = [n for t in pitched for n in t.notes if n.channel != M21_DRUM_CHANNEL]
    if melody_track is not None:
        info.melody_from = f"track:{melody_track.name}"
        raw = [n for n in melody_track.notes if n.channel != M21_DRUM_CHANNEL]
    else:
        info.melody_from = "skyline"
        raw = others

    # Metre: the first signature, and later ones that fall on a bar line of the one before. MIDI
    # metres are often placeholders (POP909 writes 1/4 or 2/4 in most files of what is 4/4 pop): an
    # unsupported metre, and POP909's 1/4 and 2/4, become 4/4 with the changes dropped.
    ordered = sorted(sigs)
    first_ts = (ordered[0][1], ordered[0][2]) if ordered else (4, 4)
    later = [(q(tick), n, d) for tick, n, d in ordered[1:]]
    if first_ts not in TIME_SIGNATURES or (pop909 and first_ts in ((1, 4), (2, 4))):
        info.metre = f"{first_ts[0]}/{first_ts[1]} read as 4/4"
        first_ts, later = (4, 4), []
    try:
        time_signatures = _metres(first_ts, later)
    except CorpusFileError as exc:
        info.metre = f"{exc}: later metre changes dropped"
        time_signatures = _metres(first_ts, [])

    tmap = TempoMap(tpq, tempos)
    bpm = 60e6 / sorted(tempos)[0][1] if tempos else DEFAULT_BPM
    info.tempo_from = "mark" if tempos else "default"
    melody = _quantise_melody(raw, q, info, skyline=melody_track is None)

    key_text = sidecars.get(KEY_SIDECAR)
    tonic_mode = _harte_key(key_text) if key_text else None
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
    tonic, mode = tonic_mode

    end = max([n.start + n.duration for n in melody] + [q(n.off) for n in others] + [1])
    n_bars = _bars_to_cover(time_signatures, end)
    score = Score(melody, [], time_signatures, float(bpm), mode, tonic, n_bars)
    if n_bars > MAX_BARS:
        raise CorpusFileError(f"piece longer than {MAX_BARS} bars")

    chord_text = sidecars.get(CHORD_SIDECAR)
    piano = names.get("PIANO")
    if chord_text and pop909:
        info.chords_from = CHORD_SIDECAR
        score.chords = _pop909_chords(chord_text, tmap, q, piano, score, info)
        score = _align_bars(score)
    else:
        info.chords_from = "inferred"
        accompaniment = [n for n in others if melody_track is None or n not in melody_track.notes]
        notes = [(n.pitch, q(n.on), max(q(n.off), q(n.on) + 1)) for n in accompaniment or others]
        if pop909 or info.metre or not sigs:  # the file's bar lines are not to be trusted
            shift = downbeat_shift(notes, score)
            if shift:
                info.downbeat_shift = shift / TICKS_PER_BEAT
                notes = [(p, on + shift, off + shift) for p, on, off in notes]
                score.melody = [Note(n.pitch, n.start + shift, n.duration, n.velocity) for n in score.melody]
                score.n_bars = _bars_to_cover(score.time_signatures, score.total_ticks + shift)
        score.chords = infer_chords(notes, score)
    return _trim(score)


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


def _metres(first: tuple[int, int], later: list[tuple[int, int, int]]) -> list[TimeSignature]:
    if first not in TIME_SIGNATURES:
        raise CorpusFileError(f"time signature {first[0]}/{first[1]} is not supported")
    sigs = [TimeSignature(0, *first)]
    bar, bar_start, length = 0, 0, bar_ticks(*first)
    for tick, n, d in later:
        if (n, d) == (sigs[-1].numerator, sigs[-1].denominator):
            continue
        whole, rem = divmod(tick - bar_start, length)
        if rem:  # a change off the bar line: keep the metre we have
            continue
        if (n, d) not in TIME_SIGNATURES:
            raise CorpusFileError(f"time signature {n}/{d} is not supported")
        bar, bar_start = bar + whole, tick
        length = bar_ticks(n, d)
        if sigs[-1].bar == bar:
            sigs[-1] = TimeSignature(bar, n, d)
        else:
            sigs.append(TimeSignature(bar, n, d))
    return sigs


def _bars_to_cover(sigs: list[TimeSignature], end: int) -> int:
    bars, tick = 0, 0
    while tick < end:
        ts = next(s for s in reversed(sigs) if s.bar <= bars)
        tick += ts.ticks
        bars += 1
        if bars > MAX_BARS:
            break
    return max(bars, 1)


def snap_duration(ticks: int, limit: int | None = None) -> int:
    """The duration-grid value nearest `ticks` (never above `limit`, when given)."""
    i = bisect.bisect_left(DURATIONS, ticks)
    cands = [DURATIONS[j] for j in (i - 1, i) if 0 <= j < len(DURATIONS)]
    best = min(cands, key=lambda d: (abs(d - ticks), d))
    if limit is not None and best > limit:
        j = bisect.bisect_right(DURATIONS, limit) - 1
        best = DURATIONS[max(j, 0)]
    return best


def _quantise_melody(raw: list[_MidiNote], q, info: ParseInfo, skyline: bool) -> list[Note]:
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
    return _legato(by_onset, info)


def _legato(by_onset: dict[int, tuple[int, int, int]], info: ParseInfo) -> list[Note]:
    onsets = sorted(by_onset)
    out = []
    for i, start in enumerate(onsets):
        pitch, dur, vel = by_onset[start]
        limit = onsets[i + 1] - start if i + 1 < len(onsets) else None
        snapped = snap_duration(min(dur, limit) if limit else dur, limit)
        if snapped != dur:
            info.durations_snapped += 1
        out.append(Note(pitch, start, snapped, max(1, min(127, vel))))
    return out


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
    score.n_bars = _bars_to_cover(score.time_signatures, score.total_ticks + best)
    return score


def _trim(score: Score) -> Score:
    """Drop leading empty bars (pickup silence, count-ins) so a piece starts where its music does."""
    if len(score.melody) < MIN_MELODY_NOTES:
        raise CorpusFileError(f"melody has fewer than {MIN_MELODY_NOTES} notes")
    starts = score.bar_starts()
    first = min([n.start for n in score.melody] + [c.start for c in score.chords if c.quality != NO_CHORD])
    bar = max(bisect.bisect_right(starts, first) - 1, 0)
    if bar == 0:
        return score
    # Only whole bars of one metre can be removed without moving the bar lines of later metres.
    if any(0 < s.bar <= bar for s in score.time_signatures):
        return score
    shift = starts[bar]
    score.melody = [Note(n.pitch, n.start - shift, n.duration, n.velocity) for n in score.melody]
    chords = []
    for c in score.chords:
        end = c.start + c.duration
        if end <= shift:
            continue
        start = max(c.start - shift, 0)
        chords.append(Chord(start, end - shift - start, c.root, c.quality, c.bass, c.voicing))
    score.chords = chords
    score.time_signatures = [
        TimeSignature(max(s.bar - bar, 0), s.numerator, s.denominator) for s in score.time_signatures
    ]
    score.n_bars -= bar
    return score


# ------------------------------------------------------------------------------------------- keys
def key_from_histogram(hist: list[float], candidates: list[tuple[int, str]] | None = None) -> tuple[int, str]:
    """(tonic, mode) best correlated with the Krumhansl-Kessler profiles (over `candidates` if given)."""
    import numpy as np

    h = np.asarray(hist, dtype=float)
    if h.sum() <= 0:
        return 0, "major"
    best, best_r = (0, "major"), -2.0
    for tonic in range(12):
        for mode, prof in (("major", KK_MAJOR), ("minor", KK_MINOR)):
            if candidates is not None and (tonic, mode) not in candidates:
                continue
            p = np.roll(np.asarray(prof), tonic)
            r = float(np.corrcoef(h, p)[0, 1]) if h.std() > 0 else 0.0
            if r > best_r:
                best, best_r = (tonic, mode), r
    return best


def pitch_class_of(name: str) -> int:
    """Pitch class of a note name such as 'C#', 'Bb', 'Gb'; ValueError otherwise."""
    m = re.fullmatch(r"([A-Ga-g])([#b]*)", name.strip())
    if not m:
        raise ValueError(f"bad pitch name {name!r}")
    return (PITCH_CLASS[m.group(1).upper()] + m.group(2).count("#") - m.group(2).count("b")) % 12


def _harte_key(text: bytes) -> tuple[int, str] | None:
    for line in text.decode("utf-8", "replace").splitlines():
        parts = line.split()
        if len(parts) >= 3 and ":" in parts[2]:
            root, mode = parts[2].split(":", 1)
            try:
                return pitch_class_of(root), "minor" if mode.startswith("min") else "major"
            except ValueError:
                return None
    return None


# ----------------------------------------------------------------------------------------- chords
def quality_of_intervals(intervals: set[int]) -> tuple[str, bool]:
    """(quality, exact) for semitone `intervals` above a root: an exact QUALITIES match if one exists."""
    pcs = frozenset(i % 12 for i in intervals)
    for name in QUALITIES:
        if pitch_classes(name) == pcs:
            return name, True
    if len(pcs) < 3:  # power chords and bare roots: call them major
        return "maj", False
    return match_quality(set(pcs)), False


def harte_chord(label: str) -> tuple[int, str, int, bool] | None:
    """(root, quality, bass interval, exact) of a Harte label such as 'C:maj/3'; None for 'N'/'X'.

    ValueError for a label that cannot be read.
    """
    label = label.strip()
    if label in ("N", "X", ""):
        return None
    root_s, _, rest = label.partition(":")
    root = pitch_class_of(root_s)
    rest = rest or "maj"
    rest, _, bass_s = rest.partition("/")
    m = re.fullmatch(r"([a-z0-9]*)(?:\(([^)]*)\))?", rest)
    if not m:
        raise ValueError(f"bad chord label {label!r}")
    short, degrees = m.group(1) or ("maj" if not m.group(2) else "1"), m.group(2)
    if short not in HARTE_SHORTHANDS:
        raise ValueError(f"unknown chord shorthand {short!r} in {label!r}")
    intervals = set(HARTE_SHORTHANDS[short])
    for deg in (degrees or "").split(","):
        deg = deg.strip()
        if not deg:
            continue
        remove = deg.startswith("*")
        semis = _degree(deg.lstrip("*"))
        if remove:
            intervals.discard(semis)
            intervals.discard(semis % 12)
        else:
            intervals.add(semis)
    bass = _degree(bass_s) % 12 if bass_s else 0
    quality, exact = quality_of_intervals(intervals)
    return root, quality, bass, exact


def _degree(text: str) -> int:
    m = re.fullmatch(r"([b#]*)(\d+)", text.strip())
    if not m or int(m.group(2)) not in DEGREE_SEMITONES:
        raise ValueError(f"bad chord degree {text!r}")
    return DEGREE_SEMITONES[int(m.group(2))] + m.group(1).count("#") - m.group(1).count("b")


def voicing_of(root: int, quality: str, pitches: list[int]) -> Voicing | None:
    """The voicing of sounding `pitches` for a chord: spread of the upper voices and top chord degree.

    'close' when the notes above the bass span at most an octave; the top degree is 1, 3, 5, 7 or 9
    (9 for any extension, the 6th of a sixth chord included).
    """
    if not pitches:
        return None
    ps = sorted(set(pitches))
    upper = ps[1:] if len(ps) >= 3 else ps
    spread = "close" if upper[-1] - upper[0] <= 12 else "open"
    rel = (ps[-1] - root) % 12
    degree = {0: 1, 1: 9, 2: 9, 3: 3, 4: 3, 5: 9, 6: 5, 7: 5, 8: 5, 9: 9, 10: 7, 11: 7}[rel]
    if quality == "dim7" and rel == 9:
        degree = 7
    elif quality in ("sus4", "7sus4") and rel == 5 or quality == "sus2" and rel == 2:
        degree = 3
    return Voicing(spread, degree)


def _pop909_chords(
    text: bytes, tmap: TempoMap, q, piano: _MidiTrack | None, score: Score, info: ParseInfo
) -> list[Chord]:
    piano_notes = [(q(n.on), q(n.off), n.pitch) for n in piano.notes] if piano else []
    chords: list[Chord] = []
    for line in text.decode("utf-8", "replace").splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        try:
            start_s, end_s = float(parts[0]), float(parts[1])
            parsed = harte_chord(parts[2])
        except ValueError:
            info.chord_approx[parts[2]] += 1
            info.chord_symbols += 1
            continue
        start = _snap(q(tmap.to_ticks(start_s)), CHORD_GRID)
        end = _snap(q(tmap.to_ticks(end_s)), CHORD_GRID)
        if end <= start:
            continue
        info.chord_symbols += 1
        if parsed is None:
            chords.append(Chord(start, end - start, 0, NO_CHORD))
            info.chord_symbols_exact += 1
            continue
        root, quality, bass, exact = parsed
        if exact:
            info.chord_symbols_exact += 1
        else:
            info.chord_approx[parts[2].split(":", 1)[-1]] += 1
        # Piano notes sounding at the onset (or starting within an eighth after it).
        sounding = [p for on, off, p in piano_notes if on <= start + CHORD_GRID and off > start]
        chords.append(Chord(start, end - start, root, quality, bass, voicing_of(root, quality, sounding)))
    return _merge_chords(chords)


def _snap(tick: int, grid: int) -> int:
    return max(int(math.floor(tick / grid + 0.5)) * grid, 0)


def _merge_chords(chords: list[Chord]) -> list[Chord]:
    """Sorted, one chord per onset (the last wins), repeated symbols merged into one."""
    by_start: dict[int, Chord] = {}
    for c in sorted(chords, key=lambda c: c.start):
        by_start[c.start] = c
    out: list[Chord] = []
    for c in sorted(by_start.values(), key=lambda c: c.start):
        if out and (out[-1].root, out[-1].quality, out[-1].bass, out[-1].voicing) == (
            c.root,
            c.quality,
            c.bass,
            c.voicing,
        ):
            prev = out[-1]
            out[-1] = Chord(
                prev.start,
                c.start + c.duration - prev.start,
                prev.root,
                prev.quality,
                prev.bass,
                prev.voicing,
            )
        else:
            out.append(c)
    return out


# Chord inference: the qualities it may choose, each with a prior cost (simple triads first: a quality is
# chosen only when its extra tones are really there), and the tuning of the scores below.
INFER_QUALITIES: dict[str, float] = {
    "maj": 0.0,
    "min": 0.0,
    "dom7": 0.1,
    "maj7": 0.1,
    "min7": 0.1,
    "sus2": 0.3,
    "sus4": 0.3,
    "7sus4": 0.3,
    "dim": 0.2,
    "hdim7": 0.2,
    "aug": 0.3,
    "maj6": 0.2,
    "min6": 0.2,
}
INFER_OUTSIDE = 0.5  # cost of the weight of tones outside the chord (per unit of the span's weight)
INFER_MISSING = 0.12  # cost of each chord tone that does not sound (at under 5% of the weight)
INFER_BASS_ROOT = 0.35  # reward when the bass (the lowest sounding notes) is the root
INFER_BASS_TONE = 0.1  # ... when it is another chord tone (an inversion)
INFER_DIATONIC = 0.05  # reward for a chord whose tones all lie in the piece's key
INFER_CHANGE = 0.12  # cost of a chord change between two spans (fewer changes: a smoothed path)
INFER_ONSET = 0.5  # extra weight of a note that starts in the span (on top of how long it sounds there)
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)


def _spans(score: Score) -> list[tuple[int, int]]:
    """Half bars (whole bars of an odd number of beats or under four beats)."""
    starts = score.bar_starts()
    spans = []
    for i in range(len(starts) - 1):
        lo, hi = starts[i], starts[i + 1]
        if (hi - lo) % 2 == 0 and (hi - lo) >= 4 * TICKS_PER_BEAT:
            spans += [(lo, lo + (hi - lo) // 2), (lo + (hi - lo) // 2, hi)]
        else:
            spans.append((lo, hi))
    return spans


def _span_profiles(
    notes: list[tuple[int, int, int]], spans: list[tuple[int, int]]
) -> list[tuple[list[float], list[float]] | None]:
    """Per span: (pitch-class weight, bass pitch-class weight), each summing to 1; None for a silent span.

    A note weighs how long it sounds in the span, plus `INFER_ONSET` of that when it starts there (struck
    tones over held ones). The bass is, beat by beat, the lowest sounding pitch, weighted by its overlap.
    """
    notes = sorted(notes, key=lambda n: n[1])
    note_starts = [n[1] for n in notes]
    longest = max((off - on for _, on, off in notes), default=0)
    out: list[tuple[list[float], list[float]] | None] = []
    for lo, hi in spans:
        first = bisect.bisect_left(note_starts, lo - longest)
        sounding = [n for n in notes[first : bisect.bisect_left(note_starts, hi)] if n[2] > lo]
        weight, bass = [0.0] * 12, [0.0] * 12
        for pitch, on, off in sounding:
            overlap = min(off, hi) - max(on, lo)
            if overlap > 0:
                weight[pitch % 12] += overlap * (1.0 + INFER_ONSET * (on >= lo))
        for beat in range(lo, hi, TICKS_PER_BEAT):
            end = min(beat + TICKS_PER_BEAT, hi)
            low = [(p, min(off, end) - max(on, beat)) for p, on, off in sounding if on < end and off > beat]
            if low:
                pitch, overlap = min(low)
                bass[pitch % 12] += overlap
        total, bass_total = sum(weight), sum(bass)
        if total <= 0:
            out.append(None)
            continue
        out.append(([w / total for w in weight], [b / bass_total for b in bass] if bass_total else bass))
    return out


def _candidates(tonic: int, mode: str) -> list[tuple[int, str, tuple[int, ...], float]]:
    """(root, quality, pitch classes, prior) for every root and inferable quality in the key."""
    scale = {(tonic + (3 if mode == "minor" else 0) + i) % 12 for i in MAJOR_SCALE}
    if mode == "minor":
        scale.add((tonic + 11) % 12)  # the leading tone of harmonic minor (V major)
    out = []
    for root in range(12):
        for quality, cost in INFER_QUALITIES.items():
            pcs = tuple(sorted({(root + i) % 12 for i in pitch_classes(quality)}))
            out.append((root, quality, pcs, (INFER_DIATONIC if set(pcs) <= scale else 0.0) - cost))
    return out


def _emission(
    profile: tuple[list[float], list[float]], root: int, pcs: tuple[int, ...], prior: float
) -> float:
    weight, bass = profile
    inside = sum(weight[pc] for pc in pcs)
    missing = sum(weight[pc] < 0.05 for pc in pcs)
    bass_tone = sum(bass[pc] for pc in pcs) - bass[root]
    return (
        inside
        - INFER_OUTSIDE * (1.0 - inside)
        - INFER_MISSING * missing
        + INFER_BASS_ROOT * bass[root]
        + INFER_BASS_TONE * bass_tone
        + prior
    )


def _best_path(profiles: list, cands: list) -> list[int | None]:
    """Per span, the index of its candidate chord (None for a silent span): a Viterbi pass over each run of
    sounding spans, where staying on a chord costs nothing and a change costs `INFER_CHANGE`."""
    path: list[int | None] = []
    i = 0
    while i < len(profiles):
        if profiles[i] is None:
            path.append(None)
            i += 1
            continue
        j = i
        while j < len(profiles) and profiles[j] is not None:
            j += 1
        score_now = [_emission(profiles[i], r, pcs, pr) for r, _, pcs, pr in cands]
        back: list[list[int]] = []
        for k in range(i + 1, j):
            best_prev = max(range(len(cands)), key=score_now.__getitem__)
            switch = score_now[best_prev] - INFER_CHANGE
            step, nxt = [], []
            for s, (r, _, pcs, pr) in enumerate(cands):
                prev, base = (s, score_now[s]) if score_now[s] >= switch else (best_prev, switch)
                step.append(prev)
                nxt.append(base + _emission(profiles[k], r, pcs, pr))
            back.append(step)
            score_now = nxt
        state = max(range(len(cands)), key=score_now.__getitem__)
        run = [state]
        for step in reversed(back):
            state = step[state]
            run.append(state)
        path += reversed(run)
        i = j
    return path


def infer_chords(
    notes: list[tuple[int, int, int]], score: Score, key: tuple[int, str] | None = None
) -> list[Chord]:
    """Chords guessed from sounding notes (pitch, start, end in ticks), one per half bar (or bar).

    Each span's pitch-class profile (weighted by duration, struck notes more than held ones) is matched
    against every root and quality (`INFER_QUALITIES`: simple triads unless the extra tones sound): tones
    inside the chord count for it, tones outside and missing chord tones against it; the bass note is
    evidence for the root, and chords of the piece's key (`key`, default the score's) are preferred. A
    Viterbi pass over each run of sounding spans then picks the best path with a cost per chord change, so
    a passing tone does not change the chord. Silent spans are 'N'.
    """
    tonic, mode = key if key is not None else (score.tonic, score.mode)
    spans = _spans(score)
    profiles = _span_profiles(notes, spans)
    cands = _candidates(tonic, mode)
    chords: list[Chord] = []
    for (lo, hi), profile, state in zip(spans, profiles, _best_path(profiles, cands), strict=True):
        if state is None:
            chords.append(Chord(lo, hi - lo, 0, NO_CHORD))
            continue
        root, quality, _, _ = cands[state]
        bass_pc = max(range(12), key=profile[1].__getitem__)
        rel = (bass_pc - root) % 12
        bass = rel if profile[1][bass_pc] > 0 and rel in pitch_classes(quality) else 0
        chords.append(Chord(lo, hi - lo, root, quality, bass))
    return _merge_chords(chords)


def downbeat_shift(
    notes: list[tuple[int, int, int]], score: Score, key: tuple[int, str] | None = None
) -> int:
    """Ticks (whole beats, under a bar) to delay a one-metre piece by so that the chord changes inferred
    beat by beat fall on bar lines: a MIDI file whose metre is a placeholder does not mark its downbeats.
    0 unless another shift puts clearly more changes on bar lines."""
    if len(score.time_signatures) != 1:
        return 0
    length = score.time_signatures[0].ticks
    tonic, mode = key if key is not None else (score.tonic, score.mode)
    beats = [(t, t + TICKS_PER_BEAT) for t in range(0, score.total_ticks, TICKS_PER_BEAT)]
    cands = _candidates(tonic, mode)
    path = _best_path(_span_profiles(notes, beats), cands)
    changes = [
        beats[k][0]
        for k in range(1, len(path))
        if path[k] is not None and path[k - 1] is not None and path[k] != path[k - 1]
    ]
    if len(changes) < 8:
        return 0
    on_bar = {s: sum((t + s) % length == 0 for t in changes) for s in range(0, length, TICKS_PER_BEAT)}
    best = max(on_bar, key=lambda s: (on_bar[s], -s))
    return best if on_bar[best] > 1.25 * on_bar[0] + 2 else 0


# -------------------------------------------------------------------------------------- MusicXML
def _musicxml_text(data: bytes, suffix: str) -> bytes:
    """The score XML: from inside an .mxl (a zip, read in memory with size limits) or as given."""
    if not data.startswith(b"PK"):
        if suffix == ".mxl":
            raise CorpusFileError("not an MXL file (not a zip archive)")
        return data
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in zf.infolist() if not i.is_dir()]
        root = None
        container = next((i for i in infos if i.filename == "META-INF/container.xml"), None)
        if container is not None and container.file_size < 1 << 20:
            m = re.search(rb'full-path="([^"]+)"', zf.read(container))
            if m:
                root = next((i for i in infos if i.filename == m.group(1).decode("utf-8", "replace")), None)
        if root is None:
            root = next(
                (
                    i
                    for i in infos
                    if i.filename.lower().endswith((".xml", ".musicxml"))
                    and not i.filename.startswith("META-INF")
                ),
                None,
            )
        if root is None:
            raise CorpusFileError("MXL archive holds no score")
        if root.file_size > MAX_MXL_XML_BYTES or root.file_size > MAX_MXL_RATIO * max(root.compress_size, 1):
            raise CorpusFileError("MXL score too large or too compressed (possible zip bomb)")
        with zf.open(root) as fh:
            xml = fh.read(MAX_MXL_XML_BYTES + 1)
        if len(xml) > MAX_MXL_XML_BYTES:
            raise CorpusFileError("MXL score too large")
        return xml
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        EOFError,
        OSError,
        NotImplementedError,
        RuntimeError,
    ) as exc:
        raise CorpusFileError(f"corrupt MXL archive ({exc})") from exc


def parse_musicxml(data: bytes, suffix: str, info: ParseInfo) -> Score:
    """A MusicXML lead sheet (melody part + chord symbols) as a `Score`."""
    from music21 import converter, harmony, key, meter, tempo
    from music21 import note as m21note

    xml = _musicxml_text(data, suffix)
    head = xml[:2000].lstrip()
    if not (head.startswith(b"<") and (b"score-partwise" in xml[:5000] or b"score-timewise" in xml[:5000])):
        raise CorpusFileError("not a MusicXML score")
    s = converter.parseData(xml, format="musicxml")
    info.kind = "leadsheet"
    parts = list(s.parts)
    if not parts:
        raise CorpusFileError("score has no parts")
    part = next((p for p in parts if any(w in (p.partName or "").lower() for w in MELODY_NAMES)), None)
    part = part or next((p for p in parts if p.recurse().notes.first() is not None), parts[0])
    info.melody_from = f"part:{part.partName or 0}"

    measures = list(part.getElementsByClass("Measure"))
    if not measures:
        raise CorpusFileError("melody part has no measures")
    sig0 = part.recurse().getElementsByClass(meter.TimeSignature).first()
    first_ts = (sig0.numerator, sig0.denominator) if sig0 else (4, 4)
    if first_ts not in TIME_SIGNATURES:
        raise CorpusFileError(f"time signature {first_ts[0]}/{first_ts[1]} is not supported")
    # A pickup bar: shift everything so that it ends where the first full bar begins.
    bar_q = bar_ticks(*first_ts) / TICKS_PER_BEAT
    pickup = 0.0
    if len(measures) > 1:
        first_len = float(measures[1].offset - measures[0].offset)
        if 0 < first_len < bar_q:
            pickup = bar_q - first_len
    shift = int(round(pickup * TICKS_PER_BEAT))

    def q(offset) -> int:
        return int(math.floor(float(offset) * TICKS_PER_BEAT + 0.5)) + shift

    later = []
    for ts in part.recurse().getElementsByClass(meter.TimeSignature):
        tick = q(ts.getOffsetInHierarchy(part))
        if tick > 0:
            later.append((tick, ts.numerator, ts.denominator))
    time_signatures = _metres(first_ts, later)

    stripped = part.stripTies()
    by_onset: dict[int, tuple[int, int, int]] = {}
    for el in stripped.recurse().notes:
        if isinstance(el, harmony.Harmony):
            continue
        info.notes_source += 1
        if el.duration.isGrace or el.quarterLength <= 0:
            info.notes_dropped["grace note"] += 1
            continue
        pitch = max(p.midi for p in el.pitches) if not isinstance(el, m21note.Note) else el.pitch.midi
        start = q(el.getOffsetInHierarchy(stripped))
        dur = max(int(math.floor(float(el.quarterLength) * TICKS_PER_BEAT + 0.5)), 1)
        if start in by_onset:
            info.notes_dropped["lower note at one onset"] += 1
            if by_onset[start][0] >= pitch:
                continue
        by_onset[start] = (pitch, dur, 80)
    melody = _legato(by_onset, info)

    mark = next(
        (
            m
            for m in s.recurse().getElementsByClass(tempo.MetronomeMark)
            if m.number is not None or m.numberSounding is not None
        ),
        None,
    )
    bpm = float(mark.getQuarterBPM()) if mark is not None and mark.getQuarterBPM() else DEFAULT_BPM
    info.tempo_from = "mark" if mark is not None and mark.getQuarterBPM() else "default"

    hist = [0.0] * 12
    for n in melody:
        hist[n.pitch % 12] += n.duration
    ks = part.recurse().getElementsByClass(key.KeySignature).first()
    if ks is not None:
        major = ks.asKey("major").tonic.pitchClass
        cands = [(major, "major"), ((major + 9) % 12, "minor")]
        if isinstance(ks, key.Key) and ks.mode in ("major", "minor"):
            cands = [(ks.tonic.pitchClass, ks.mode)]
        info.key_from = "key signature"
    else:
        cands = None
        info.key_from = "analysis"

    chords: list[Chord] = []
    for cs in part.recurse().getElementsByClass(harmony.Harmony):
        start = q(cs.getOffsetInHierarchy(part))
        info.chord_symbols += 1
        if isinstance(cs, harmony.NoChord):
            chords.append(Chord(start, 0, 0, NO_CHORD))
            info.chord_symbols_exact += 1
            continue
        if not isinstance(cs, harmony.ChordSymbol) or cs.root() is None:
            info.chord_approx[type(cs).__name__] += 1
            continue
        root = cs.root().pitchClass
        bass = (cs.bass().pitchClass - root) % 12 if cs.bass() is not None else 0
        quality = KIND_QUALITY.get(cs.chordKind)
        exact = quality is not None and not cs.chordStepModifications
        if not exact:
            quality, exact = quality_of_intervals({(p.pitchClass - root) % 12 for p in cs.pitches} | {0})
        if exact:
            info.chord_symbols_exact += 1
        else:
            info.chord_approx[cs.figure] += 1
        chords.append(Chord(start, 0, root, quality, bass, None))
    end = max([n.start + n.duration for n in melody] + [c.start + 1 for c in chords] + [1])
    n_bars = _bars_to_cover(time_signatures, end)
    if n_bars > MAX_BARS:
        raise CorpusFileError(f"piece longer than {MAX_BARS} bars")
    score = Score(
        melody,
        [],
        time_signatures,
        bpm,
        "major",
        0,
        n_bars,
        title=str(s.metadata.title or "") if s.metadata else "",
    )
    total = score.total_ticks
    chords = sorted({c.start: c for c in chords}.values(), key=lambda c: c.start)
    timed = []
    for i, c in enumerate(chords):
        stop = chords[i + 1].start if i + 1 < len(chords) else total
        if stop > c.start:
            timed.append(Chord(c.start, stop - c.start, c.root, c.quality, c.bass, None))
    score.tonic, score.mode = key_from_histogram(hist, cands)
    if timed:
        info.chords_from = "chord symbols"
        score.chords = _merge_chords(timed)
    else:
        info.chords_from = "inferred"
        score.chords = infer_chords([(n.pitch, n.start, n.start + n.duration) for n in melody], score)
    return _trim(score)
