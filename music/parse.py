"""Reading music files into a `Score`: the entry, which picks the reader by the file's suffix.

The readers, one job a module (after magenta's note-seq):

- `music.midi_reader`: MIDI files (POP909 or generic): chunks, tempo map, the beat grid, melody, key.
- `music.musicxml_reader`: MusicXML lead sheets (.musicxml, .xml, .mxl): melody part and chord symbols.
- `music.pop909_sidecars`: POP909's `chord_midi.txt` and `key_audio.txt`, read with `music.harte`.
- `music.chord_inference`: chords guessed from the notes when a file names none.
- `music.score_building`: what both readers share (metres, bars, the duration grid, trimming).

Every time is quantised to the `TICKS_PER_BEAT` grid, and melody durations to the representation's duration
grid, so that a parsed score encodes exactly (what the quantisation changed is counted in `ParseInfo`).
Nothing here imports TensorFlow or touches the disk beyond reading the given file and its POP909 side-cars
(in the same folder). Callers import from here what parsing a file needs: `parse_file`, `ParseInfo`, the
suffixes, size limit and side-car names, and `PARSER_VERSION` (a cache key of parsed files).
"""

from __future__ import annotations

from pathlib import Path

from music.errors import CorpusFileError
from music.midi_reader import parse_midi
from music.musicxml_reader import parse_musicxml
from music.parse_info import ParseInfo
from music.pop909_sidecars import CHORD_SIDECAR, KEY_SIDECAR, SIDECARS
from music.score import Score

__all__ = [
    "CHORD_SIDECAR",
    "KEY_SIDECAR",
    "MAX_FILE_BYTES",
    "MIDI_SUFFIXES",
    "MUSIC_SUFFIXES",
    "PARSER_VERSION",
    "SIDECARS",
    "XML_SUFFIXES",
    "ParseInfo",
    "parse_file",
]

PARSER_VERSION = "parse-v5"  # v5: chord inference (templates, bass, key, Viterbi) and downbeats
MIDI_SUFFIXES = (".mid", ".midi")
XML_SUFFIXES = (".mxl", ".musicxml", ".xml")
MUSIC_SUFFIXES = MIDI_SUFFIXES + XML_SUFFIXES
MAX_FILE_BYTES = 16 * 1024 * 1024


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
