"""Parsing music files into scores: MIDI (POP909 and generic), MusicXML lead sheets, and bad files."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from music.errors import CorpusFileError
from music.parse import ParseInfo, parse_file
from music.score import Voicing
from music.tokens import Representation
from tests.midi_files import TPQ, make_midi  # noqa: F401


def scale_melody(n: int = 16, start: float = 0.0) -> list[tuple[int, float, float, int]]:
    """`n` eighth notes of a C major scale."""
    steps = [60, 62, 64, 65, 67, 69, 71, 72]
    return [(steps[i % 8], start + i * 0.5, 0.5, 90) for i in range(n)]


def c_chords(bars: int = 4) -> list[tuple[int, float, float, int]]:
    """C major then G major triads, a bar each, close voiced."""
    out = []
    for b in range(bars):
        pcs = (48, 52, 55) if b % 2 == 0 else (43, 47, 50)
        out += [(p, b * 4.0, 4.0, 60) for p in pcs]
    return out


def test_generic_midi_melody_track_tempo_and_grid():
    data = make_midi({"Lead": scale_melody(), "Pads": c_chords()}, bpm=84, key="Em")
    info = ParseInfo()
    score = parse_file(Path("song.mid"), data, info=info)
    assert info.melody_from == "track:Lead" and info.chords_from == "inferred"
    assert round(score.bpm) == 84
    assert [n.pitch for n in score.melody[:3]] == [60, 62, 64]
    assert [n.start for n in score.melody[:3]] == [0, 6, 12] and score.melody[0].duration == 6
    assert (score.chords[0].root, score.chords[0].quality) == (0, "maj")
    assert (score.tonic, score.mode, info.key_from) == (4, "minor", "key signature")


def test_key_is_analysed_when_the_file_has_no_key_signature():
    pads = [(p, b * 4.0, 4.0, 60) for b in range(4) for p in (48, 52, 55)]
    info = ParseInfo()
    score = parse_file(Path("song.mid"), make_midi({"Lead": scale_melody(), "Pads": pads}), info=info)
    assert (score.tonic, score.mode, info.key_from) == (0, "major", "analysis")


def test_skyline_takes_the_top_line_when_no_track_is_named_melody():
    top = scale_melody()
    low = [(p - 24, s, d, v) for p, s, d, v in top]
    score = parse_file(Path("x.mid"), make_midi({"Piano": top + low}))
    assert [n.pitch for n in score.melody] == [p for p, *_ in top]


def test_drum_only_file_is_skipped_with_a_clear_reason():
    drums = [(36, i * 0.5, 0.25, 100) for i in range(16)]
    with pytest.raises(CorpusFileError, match="drum track only"):
        parse_file(Path("beat.mid"), make_midi({"Drums": drums}, channels={"Drums": 9}))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"hello, I am a text file renamed .mid\n" * 4, "not a MIDI file"),
        (b"", "empty"),
    ],
)
def test_non_midi_bytes_are_refused(data, reason):
    with pytest.raises(CorpusFileError, match=reason):
        parse_file(Path("fake.mid"), data)


def test_truncated_and_corrupt_midi_are_refused():
    data = make_midi({"Melody": scale_melody()})
    with pytest.raises(CorpusFileError, match="truncated"):
        parse_file(Path("cut.mid"), data[: len(data) // 2])
    corrupt = data[:30] + bytes(range(256)) * 2
    with pytest.raises(CorpusFileError):
        parse_file(Path("bad.mid"), corrupt)


def test_unknown_suffix_is_refused():
    with pytest.raises(CorpusFileError, match="not a music file"):
        parse_file(Path("notes.txt"), b"abc")


def test_pop909_chords_key_and_voicing_from_sidecars():
    melody = scale_melody(32)
    piano = c_chords(4)
    data = make_midi({"MELODY": melody, "BRIDGE": [], "PIANO": piano}, bpm=60, ts=(1, 4))
    # At 60 bpm one beat is one second: C for bar 1, G/B (first inversion) for bar 2, then no chord.
    chords = b"0.0\t4.0\tC:maj\n4.0\t8.0\tG:maj/3\n8.0\t12.0\tA:min7\n12.0\t16.0\tN\n"
    info = ParseInfo()
    score = parse_file(
        Path("001.mid"), data, {"chord_midi.txt": chords, "key_audio.txt": b"0\t16\tA:min\n"}, info
    )
    assert info.kind == "pop909" and info.key_from == "key_audio.txt" and "4/4" in info.metre
    assert (score.tonic, score.mode) == (9, "minor")
    assert score.time_signatures[0].numerator == 4
    c, g = score.chords[0], score.chords[1]
    assert (c.start, c.root, c.quality, c.bass) == (0, 0, "maj", 0)
    assert (g.start, g.root, g.quality, g.bass) == (48, 7, "maj", 4)
    assert c.voicing == Voicing("close", 5)  # C E G, G on top
    assert score.chords[-1].quality == "N"
    assert info.chord_symbols == info.chord_symbols_exact == 4


def test_pop909_sidecars_are_read_from_beside_the_file(tmp_path):
    folder = tmp_path / "042"
    folder.mkdir()
    (folder / "042.mid").write_bytes(make_midi({"MELODY": scale_melody(), "PIANO": c_chords()}))
    (folder / "key_audio.txt").write_text("0\t10\tEb:maj\n")
    (folder / "chord_midi.txt").write_text("0\t2.666\tEb:7\n")
    score = parse_file(folder / "042.mid")
    assert score.tonic == 3 and score.chords[0].quality == "dom7" and score.chords[0].root == 3


LEAD_SHEET = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE score-partwise PUBLIC "-//Recordare//DTD MusicXML 3.1 Partwise//EN"
  "http://www.musicxml.org/dtds/partwise.dtd">
<score-partwise version="3.1">
  <part-list><score-part id="P1"><part-name>Voice</part-name></score-part></part-list>
  <part id="P1">
    <measure number="0">
      <attributes><divisions>2</divisions><key><fifths>-1</fifths><mode>major</mode></key>
        <time><beats>3</beats><beat-type>4</beat-type></time></attributes>
      <note><pitch><step>C</step><octave>5</octave></pitch><duration>2</duration><type>quarter</type></note>
    </measure>
    <measure number="1">
      <harmony><root><root-step>F</root-step></root><kind>major</kind></harmony>
      <note><pitch><step>A</step><octave>4</octave></pitch><duration>4</duration><tie type="start"/>
        <type>half</type></note>
      <note><pitch><step>A</step><octave>4</octave></pitch><duration>2</duration><tie type="stop"/>
        <type>quarter</type></note>
    </measure>
    <measure number="2">
      <harmony><root><root-step>C</root-step></root><kind>dominant</kind>
        <bass><bass-step>E</bass-step></bass></harmony>
      <note><pitch><step>G</step><octave>4</octave></pitch><duration>1</duration><type>eighth</type></note>
      <note><pitch><step>B</step><alter>-1</alter><octave>4</octave></pitch><duration>1</duration>
        <type>eighth</type></note>
      <note><pitch><step>C</step><octave>5</octave></pitch><duration>4</duration><type>half</type></note>
    </measure>
    <measure number="3">
      <harmony><root><root-step>F</root-step></root><kind>major-seventh</kind></harmony>
      <note><pitch><step>F</step><octave>4</octave></pitch><duration>2</duration><type>quarter</type></note>
      <note><pitch><step>A</step><octave>4</octave></pitch><duration>2</duration><type>quarter</type></note>
      <note><pitch><step>C</step><octave>5</octave></pitch><duration>2</duration><type>quarter</type></note>
      <note><pitch><step>F</step><octave>5</octave></pitch><duration>2</duration><type>quarter</type></note>
    </measure>
  </part>
</score-partwise>
"""


def _mxl(xml: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(
            "META-INF/container.xml",
            '<container><rootfiles><rootfile full-path="score.xml"/></rootfiles></container>',
        )
        zf.writestr("score.xml", xml)
    return buf.getvalue()


@pytest.mark.parametrize("suffix", [".musicxml", ".mxl"])
def test_lead_sheet_melody_chords_key_pickup_and_ties(suffix):
    data = LEAD_SHEET.encode() if suffix != ".mxl" else _mxl(LEAD_SHEET)
    info = ParseInfo()
    score = parse_file(Path("tune" + suffix), data, info=info)
    assert info.kind == "leadsheet" and info.chords_from == "chord symbols"
    assert (score.tonic, score.mode) == (5, "major")
    assert score.time_signatures[0].numerator == 3
    # The pickup quarter ends bar 0; the tied A is one note of three beats.
    assert [(n.pitch, n.start, n.duration) for n in score.melody[:2]] == [(72, 24, 12), (69, 36, 36)]
    assert [(c.start, c.root, c.quality, c.bass) for c in score.chords] == [
        (36, 5, "maj", 0),
        (72, 0, "dom7", 4),
        (108, 5, "maj7", 0),
    ]
    assert all(c.voicing is None for c in score.chords)
    assert score.bpm == 120.0  # no tempo mark: the default


def test_parsed_scores_encode_exactly():
    rep = Representation()
    for name, data in (
        ("a.mid", make_midi({"Melody": scale_melody(24)})),
        ("b.musicxml", LEAD_SHEET.encode()),
    ):
        score = parse_file(Path(name), data)
        ids = rep.vocab.ids(rep.encode(score))
        back = rep.decode(ids, tonic=score.tonic)
        assert [(n.pitch, n.start, n.duration) for n in back.melody] == [
            (n.pitch, n.start, n.duration) for n in score.melody
        ]


def test_xml_that_is_not_a_score_is_refused():
    with pytest.raises(CorpusFileError, match="not a MusicXML score"):
        parse_file(Path("config.xml"), b"<?xml version='1.0'?><config><a/></config>")
    with pytest.raises(CorpusFileError):
        parse_file(Path("x.mxl"), b"PK\x03\x04 definitely not a zip")


def test_a_midi_recorded_off_tick_zero_is_put_back_on_the_beat():
    late = [(p, s + 1 / 3, d, v) for p, s, d, v in scale_melody(16)]  # every onset a third of a beat late
    info = ParseInfo()
    score = parse_file(Path("late.mid"), make_midi({"Melody": late}), info=info)
    assert info.beat_offset > 0
    assert all(n.start % 6 == 0 for n in score.melody) and score.melody[0].start == 12  # a one-beat pickup


def _comping(bars: list[tuple[int, tuple[int, ...]]], passing: dict[int, list[int]] | None = None):
    """Per bar: the bass (root) held a whole bar and the upper tones struck on every beat; `passing` adds
    eighth-note neighbour tones on the off-beats of the second half of the given bars."""
    out = []
    for b, (bass, upper) in enumerate(bars):
        out.append((bass, b * 4.0, 4.0, 70))
        for beat in range(4):
            out += [(p, b * 4.0 + beat, 0.5, 60) for p in upper]
        for i, p in enumerate((passing or {}).get(b, [])):
            out.append((p, b * 4.0 + 2.5 + i, 0.5, 60))
    return out


def test_inferred_chords_follow_the_bass_and_ignore_passing_tones():
    # ii-V-I in C with sevenths: the upper tones of Am7 and Dm7 alone read as C6 and F6; the bass says A, D.
    # Bar 4 (C major) has neighbour tones F and A on the off-beats of its second half: still C, one chord.
    bars = [
        (45, (60, 64, 67)),  # A2 | C E G   -> Am7
        (38, (60, 65, 69)),  # D2 | C F A   -> Dm7
        (43, (59, 62, 65)),  # G2 | B D F   -> G7
        (36, (64, 67, 72)),  # C2 | E G C   -> C
    ]
    data = make_midi({"Lead": scale_melody(32), "Keys": _comping(bars, passing={3: [65, 69]})}, key="C")
    info = ParseInfo()
    score = parse_file(Path("own.mid"), data, info=info)
    assert info.chords_from == "inferred"
    bar = 4 * 12  # ticks
    found = [(c.start // bar, c.root, c.quality) for c in score.chords]
    assert [(b, r) for b, r, _ in found] == [(0, 9), (1, 2), (2, 7), (3, 0)], found
    qualities = [q for *_, q in found]
    assert qualities[0] in ("min", "min7") and qualities[1] in ("min", "min7")
    assert qualities[2] in ("maj", "dom7") and qualities[3] == "maj"
    assert all(c.bass == 0 for c in score.chords)  # root position: the bass is the root


def test_inferred_chords_prefer_the_key_when_the_tones_are_ambiguous():
    # An open fifth (A-E) says neither major nor minor: in A minor it reads A minor.
    fifths = [(p, b * 4.0, 4.0, 60) for b in range(4) for p in (45, 52, 57)]
    data = make_midi({"Lead": scale_melody(32, 0.0), "Keys": fifths}, key="Am")
    score = parse_file(Path("own.mid"), data)
    assert {(c.root, c.quality) for c in score.chords} == {(9, "min")}


def _offbeat_song(names: tuple[str, str]) -> bytes:
    """12 bars of C Am F G, a chord per 4 beats, every change on beat 2 of the file's own bars."""
    roots = [(48, 52, 55), (45, 48, 52), (41, 45, 48), (43, 47, 50)]
    keys = []
    for b in range(12):
        keys += [(p, 1.0 + 4 * b + beat, 1.0, 60) for beat in range(4) for p in roots[b % 4]]
    return make_midi({names[0]: scale_melody(48, 1.0), names[1]: keys}, key="C")


def test_bar_lines_follow_the_inferred_chord_changes_when_the_metre_is_a_placeholder():
    # POP909's track names, no side-cars: its bar lines are placeholders, so the piece is delayed by whole
    # beats until the inferred chord changes fall on bar lines (as the annotated parse does with its chords).
    info = ParseInfo()
    score = parse_file(Path("bare.mid"), _offbeat_song(("MELODY", "PIANO")), info=info)
    assert info.kind == "pop909" and info.chords_from == "inferred" and info.downbeat_shift == 3.0
    bar = 4 * 12
    assert [(c.root, c.quality) for c in score.chords[:4]] == [(0, "maj"), (9, "min"), (5, "maj"), (7, "maj")]
    assert all(c.start % bar == 0 for c in score.chords if c.quality != "N")
    assert score.melody[0].start % bar == 0  # the melody moved with them

    # A file whose metre is its own keeps its bar lines.
    info = ParseInfo()
    parse_file(Path("own.mid"), _offbeat_song(("Lead", "Keys")), info=info)
    assert info.downbeat_shift == 0.0
