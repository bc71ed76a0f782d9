"""Benchmark: how well the parser's chord inference agrees with POP909's chord annotations; prints JSON.

A user's own MIDI comes without chord symbols, so `music.parse` infers them (`infer_chords`: one chord per
half bar from the accompaniment's sounding notes: templates scored on duration- and onset-weighted pitch
classes, the bass as root evidence, the key as a prior, a Viterbi pass with a cost per change; where the
file's bar lines are placeholders, as in POP909, `downbeat_shift` first moves them onto the inferred chord
changes). POP909 ships annotations beside each MIDI file
(`chord_midi.txt`, and `key_audio.txt` for the key), which `parse_file` reads from the file's folder. Each
sampled piece is parsed twice: as it is in the corpus (annotated), and as a copy of the .mid alone in an empty
temporary folder (bare: the side-cars are not there, so chords are inferred and the key is guessed).

The two parses can start at different ticks (the annotated one is delayed so chord changes fall on bar
lines, and each drops its own leading empty bars), so the bare timeline is mapped onto the annotated one by
the offset that lines up their melodies, which are the same notes. Then, on every beat (at its middle)
where the annotation has a chord:

- `root`: the inferred root equals the annotated one;
- `root_and_majmin`: also the same triad family (major, minor, diminished, augmented, suspended: the
  MIREX "majmin"-like reading, where maj7 and maj agree);
- `root_and_quality`: also exactly the same quality (maj7 vs maj9 disagree);
- `quality` / `majmin` alone, whatever the root;
- `no_chord`: the inference says N where the annotation has a chord.

`ceiling` is what any chord-per-span inference on the bare parse's own spans could reach at best: every
span given the annotated chord that covers most of its beats. It separates errors of the chord matching
from errors of the time grid (half bars, and bar lines that the bare parse cannot align without the
annotations).

    PYTHONPATH=. .venv/bin/python bench/bench_chords.py [--pieces 40] [--data data/corpus/pop909] [--per-piece]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Every project API this benchmark uses, in one place (the package layout is being reworked).
from music.chords import NO_CHORD  # noqa: E402
from music.parse import CHORD_SIDECAR, SIDECARS, ParseInfo, parse_file  # noqa: E402
from music.score import TICKS_PER_BEAT  # noqa: E402

FAMILY = {
    **dict.fromkeys(("maj", "maj6", "maj7", "add9", "maj9", "dom7", "dom9", "dom13", "dom7b9"), "maj"),
    **dict.fromkeys(("min", "min6", "min7", "minmaj7", "min9", "min11"), "min"),
    **dict.fromkeys(("dim", "dim7", "hdim7"), "dim"),
    **dict.fromkeys(("aug", "aug7"), "aug"),
    **dict.fromkeys(("sus2", "sus4", "7sus4"), "sus"),
}
MEASURES = ("root", "root_and_majmin", "root_and_quality", "quality", "majmin", "no_chord", "ceiling")


def pieces(data: Path, n: int) -> list[Path]:
    """`n` annotated POP909 MIDI files under `data`, spread evenly over their sorted paths (stable)."""
    found = sorted(p for p in data.rglob("*.mid") if (p.parent / CHORD_SIDECAR).is_file())
    if n >= len(found):
        return found
    return [found[(i * len(found)) // n] for i in range(n)]


def chord_at(chords, tick: int):
    """The chord sounding at `tick` (None outside every chord)."""
    for c in chords:
        if c.start <= tick < c.start + c.duration:
            return c
    return None


def melody_offset(annotated, bare) -> int | None:
    """Ticks to add to the bare parse's times to land on the annotated parse's (None if the melodies differ)."""
    a = [(n.start, n.pitch) for n in annotated.melody]
    b = [(n.start, n.pitch) for n in bare.melody]
    if not a or len(a) != len(b):
        return None
    shift = a[0][0] - b[0][0]
    same = sum((s + shift, p) == x for (s, p), x in zip(b, a, strict=True))
    return shift if same >= 0.99 * len(a) else None


def compare(annotated, bare, shift: int) -> Counter:
    """Per-beat agreement counts of one piece (see the module docstring); 'beats' is the denominator."""
    counts: Counter = Counter()
    labelled = [c for c in annotated.chords if c.quality != NO_CHORD]
    if not labelled:
        return counts
    first = labelled[0].start
    last = max(c.start + c.duration for c in labelled)
    # the ceiling: each bare span gets the annotated chord covering most of its beats
    best: dict[int, tuple] = {}
    for span in bare.chords:
        votes = Counter()
        for t in range(span.start + shift, span.start + shift + span.duration, TICKS_PER_BEAT):
            c = chord_at(annotated.chords, t + TICKS_PER_BEAT // 2)
            if c is not None:
                votes[(c.root, c.quality)] += 1
        if votes:
            best[span.start] = votes.most_common(1)[0][0]
    for beat in range(first - first % TICKS_PER_BEAT, last, TICKS_PER_BEAT):
        t = beat + TICKS_PER_BEAT // 2
        a = chord_at(annotated.chords, t)
        if a is None or a.quality == NO_CHORD:
            continue
        counts["beats"] += 1
        b = chord_at(bare.chords, t - shift)
        if b is not None and best.get(b.start) == (a.root, a.quality):
            counts["ceiling"] += 1
        if b is None or b.quality == NO_CHORD:
            counts["no_chord"] += 1
            continue
        same_root = a.root % 12 == b.root % 12
        same_family = FAMILY.get(a.quality, a.quality) == FAMILY.get(b.quality, b.quality)
        counts["root"] += same_root
        counts["quality"] += a.quality == b.quality
        counts["majmin"] += same_family
        counts["root_and_majmin"] += same_root and same_family
        counts["root_and_quality"] += same_root and a.quality == b.quality
        counts[f"confusion:{FAMILY.get(a.quality, a.quality)}->{FAMILY.get(b.quality, b.quality)}"] += 1
    return counts


def run(args) -> dict:
    """Parse every sampled piece twice and aggregate the per-beat agreement."""
    t0 = time.perf_counter()
    total: Counter = Counter()
    per_piece, skipped = [], []
    keys = Counter()
    files = pieces(Path(args.data), args.pieces)
    with tempfile.TemporaryDirectory(prefix="bench-chords-") as tmp:
        for path in files:
            name = path.relative_to(Path(args.data)).as_posix()
            bare_path = Path(tmp) / path.parent.name / path.name
            bare_path.parent.mkdir()
            shutil.copyfile(path, bare_path)  # the .mid alone: no side-cars beside it
            assert not any((bare_path.parent / s).exists() for s in SIDECARS)
            try:
                info_a, info_b = ParseInfo(), ParseInfo()
                annotated = parse_file(path, info=info_a)
                bare = parse_file(bare_path, info=info_b)
            except Exception as exc:  # a refused piece is reported, not fatal
                skipped.append({"piece": name, "error": f"{type(exc).__name__}: {exc}"[:200]})
                continue
            if info_a.chords_from != CHORD_SIDECAR or info_b.chords_from != "inferred":
                skipped.append(
                    {"piece": name, "error": f"chords from {info_a.chords_from}/{info_b.chords_from}"}
                )
                continue
            shift = melody_offset(annotated, bare)
            if shift is None:
                skipped.append({"piece": name, "error": "the two parses' melodies differ"})
                continue
            c = compare(annotated, bare, shift)
            total.update(c)
            keys["same" if (annotated.tonic, annotated.mode) == (bare.tonic, bare.mode) else "different"] += 1
            keys[f"bare key from {info_b.key_from}"] += 1
            if args.per_piece:
                per_piece.append(
                    {
                        "piece": name,
                        "beats": c["beats"],
                        **{m: round(c[m] / c["beats"], 4) if c["beats"] else None for m in MEASURES},
                    }
                )
    beats = total["beats"]
    confusion = {k.split(":", 1)[1]: v for k, v in total.most_common() if k.startswith("confusion:")}
    out = {
        "config": {"data": str(args.data), "pieces": len(files), "compared": len(files) - len(skipped)},
        "beats": beats,
        "agreement_per_beat": {m: round(total[m] / beats, 4) if beats else None for m in MEASURES},
        "family_confusion_annotated_to_inferred": confusion,
        "key_bare_vs_annotated": dict(keys),
        "skipped": skipped,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    if args.per_piece:
        out["per_piece"] = per_piece
    return out


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run, print the JSON."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=ROOT / "data" / "corpus" / "pop909", help="POP909 folder")
    p.add_argument("--pieces", type=int, default=40, help="pieces to sample (evenly over the sorted files)")
    p.add_argument("--per-piece", action="store_true", help="add each piece's agreement")
    args = p.parse_args(argv)
    print(json.dumps(run(args), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
