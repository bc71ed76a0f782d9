"""A MusicXML lead sheet (.musicxml, .xml or a compressed .mxl) as a `Score`: melody part and chord symbols.

The XML goes through `music21.converter`; an .mxl is unzipped in memory with limits on size and compression
ratio, since a user's file may be hostile. Times are quantised to the `TICKS_PER_BEAT` grid, with a pickup
bar shifted to end where the first full bar begins.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from collections.abc import Callable

from music.chord_inference import infer_chords
from music.chords import NO_CHORD, quality_of_intervals
from music.errors import CorpusFileError
from music.key_finding import key_from_histogram
from music.parse_info import ParseInfo
from music.score import TICKS_PER_BEAT, Chord, Note, Score, TimeSignature, bar_ticks
from music.score_building import (
    DEFAULT_BPM,
    MAX_BARS,
    MELODY_NAMES,
    bars_to_cover,
    legato_melody,
    merge_chords,
    metres,
    trim_leading_bars,
)
from music.tokens import TIME_SIGNATURES

MAX_MXL_XML_BYTES = 64 * 1024 * 1024  # uncompressed score inside an .mxl
MAX_MXL_RATIO = 200

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

Quantiser = Callable[[object], int]  # a music21 offset in quarters -> grid ticks


def parse_musicxml(data: bytes, suffix: str, info: ParseInfo) -> Score:
    """A MusicXML lead sheet (melody part + chord symbols) as a `Score`."""
    from music21 import converter

    xml = _musicxml_text(data, suffix)
    head = xml[:2000].lstrip()
    if not (head.startswith(b"<") and (b"score-partwise" in xml[:5000] or b"score-timewise" in xml[:5000])):
        raise CorpusFileError("not a MusicXML score")
    s = converter.parseData(xml, format="musicxml")
    info.kind = "leadsheet"
    part = _melody_part(list(s.parts), info)
    first_ts, q = _first_metre_and_grid(part)
    time_signatures = _time_signatures(part, first_ts, q)
    melody = _melody(part, q, info)
    bpm = _tempo(s, info)
    key_candidates = _key_candidates(part, info)
    chords = _chord_symbols(part, q, info)
    end = max([n.start + n.duration for n in melody] + [c.start + 1 for c in chords] + [1])
    n_bars = bars_to_cover(time_signatures, end)
    if n_bars > MAX_BARS:
        raise CorpusFileError(f"piece longer than {MAX_BARS} bars")
    title = str(s.metadata.title or "") if s.metadata else ""
    score = Score(melody, [], time_signatures, bpm, "major", 0, n_bars, title=title)
    timed = _timed(chords, score.total_ticks)
    hist = [0.0] * 12
    for n in melody:
        hist[n.pitch % 12] += n.duration
    score.tonic, score.mode = key_from_histogram(hist, key_candidates)
    if timed:
        info.chords_from = "chord symbols"
        score.chords = merge_chords(timed)
    else:
        info.chords_from = "inferred"
        score.chords = infer_chords([(n.pitch, n.start, n.start + n.duration) for n in melody], score)
    return trim_leading_bars(score)


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


def _melody_part(parts: list, info: ParseInfo):
    """The part named like a melody, else the first with notes, else the first (noted in `info`)."""
    if not parts:
        raise CorpusFileError("score has no parts")
    part = next((p for p in parts if any(w in (p.partName or "").lower() for w in MELODY_NAMES)), None)
    part = part or next((p for p in parts if p.recurse().notes.first() is not None), parts[0])
    info.melody_from = f"part:{part.partName or 0}"
    return part


def _first_metre_and_grid(part) -> tuple[tuple[int, int], Quantiser]:
    """The part's first metre, and offsets -> grid ticks with a pickup bar shifted to end where the first
    full bar begins (so that bar lines fall where the representation expects them)."""
    from music21 import meter

    measures = list(part.getElementsByClass("Measure"))
    if not measures:
        raise CorpusFileError("melody part has no measures")
    sig0 = part.recurse().getElementsByClass(meter.TimeSignature).first()
    first_ts = (sig0.numerator, sig0.denominator) if sig0 else (4, 4)
    if first_ts not in TIME_SIGNATURES:
        raise CorpusFileError(f"time signature {first_ts[0]}/{first_ts[1]} is not supported")
    bar_q = bar_ticks(*first_ts) / TICKS_PER_BEAT
    pickup = 0.0
    if len(measures) > 1:
        first_len = float(measures[1].offset - measures[0].offset)
        if 0 < first_len < bar_q:
            pickup = bar_q - first_len
    shift = int(round(pickup * TICKS_PER_BEAT))

    def q(offset) -> int:
        return int(math.floor(float(offset) * TICKS_PER_BEAT + 0.5)) + shift

    return first_ts, q


def _time_signatures(part, first_ts: tuple[int, int], q: Quantiser) -> list[TimeSignature]:
    """The part's metres: `first_ts`, then each later change on a bar line (see `metres`)."""
    from music21 import meter

    later = []
    for ts in part.recurse().getElementsByClass(meter.TimeSignature):
        tick = q(ts.getOffsetInHierarchy(part))
        if tick > 0:
            later.append((tick, ts.numerator, ts.denominator))
    return metres(first_ts, later)


def _melody(part, q: Quantiser, info: ParseInfo) -> list[Note]:
    """The part's notes as one line: ties joined, grace notes dropped, the top note of a chord, and one note
    per onset (the highest); what was dropped is counted in `info`."""
    from music21 import harmony
    from music21 import note as m21note

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
    return legato_melody(by_onset, info)


def _tempo(s, info: ParseInfo) -> float:
    """The first metronome mark's quarter-note tempo, else `DEFAULT_BPM` (noted in `info.tempo_from`)."""
    from music21 import tempo

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
    return bpm


def _key_candidates(part, info: ParseInfo) -> list[tuple[int, str]] | None:
    """The keys the part's first key signature allows (its major and relative minor, or the one key it
    names), or None to analyse among all; where the key came from is noted in `info.key_from`."""
    from music21 import key

    ks = part.recurse().getElementsByClass(key.KeySignature).first()
    if ks is None:
        info.key_from = "analysis"
        return None
    major = ks.asKey("major").tonic.pitchClass
    cands = [(major, "major"), ((major + 9) % 12, "minor")]
    if isinstance(ks, key.Key) and ks.mode in ("major", "minor"):
        cands = [(ks.tonic.pitchClass, ks.mode)]
    info.key_from = "key signature"
    return cands


def _chord_symbols(part, q: Quantiser, info: ParseInfo) -> list[Chord]:
    """The part's chord symbols at their onsets (duration 0 until `_timed`), counted in `info`: exact when
    the kind (or, with alterations, the sounding tones) matches a quality, approximated otherwise."""
    from music21 import harmony

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
    return chords


def _timed(chords: list[Chord], total: int) -> list[Chord]:
    """Each chord (the last at one onset) lasting until the next begins, the last until `total`."""
    chords = sorted({c.start: c for c in chords}.values(), key=lambda c: c.start)
    timed = []
    for i, c in enumerate(chords):
        stop = chords[i + 1].start if i + 1 < len(chords) else total
        if stop > c.start:
            timed.append(Chord(c.start, stop - c.start, c.root, c.quality, c.bass, None))
    return timed
