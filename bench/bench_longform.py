"""Benchmark: does a long track keep developing, minute by minute, as real songs do? Prints JSON.

Tracks of `--length` seconds (default 5 minutes; rainy, chill, sunny x 4 seeds) are made exactly as
`bench_music.py` makes them (`Composer.make_track` on the in-process backend, the audio render replaced by
the arranging step: tokens -> score -> arranged MIDI, no FluidSynth). Real pieces of the corpus's test split
(the same ones `bench_music.py` takes) are played through the same arranger at their whole length, at the
plan's tempo, so both sides are read from arranged MIDI by the same code.

Every track is measured whole and minute by minute (the bars that start in each minute; a last part-minute
counts when it holds at least 45 s):

- the music benchmark's features (`music.analysis.features.FEATURES`, taken on the minute's bars alone);
- `in_key`: share of pitched notes inside the declared key's scale (drift out of the key lowers it);
- `repetition_4/8/16` and `melody_repetition_4/8/16`: share of bars that copy the bar 4/8/16 bars back note
  for note (all pitched parts / the melody alone), and `harmony_repetition_4/8/16`: the same of the pitch
  classes the keys play in a bar (the arranger varies the comping's rhythm and voicing bar by bar, so the keys
  never copy a bar note for note, in real songs or generated ones; their harmony does);
- `contrast_8bar`: mean `section_contrast` of consecutive 8-bar sections (per minute: the pairs whose second
  section starts in it), and for whole tracks `contrast_8bar_min` and `contrast_sections` (the arranger's
  own sections: intro, main, breakdown, main, outro).

The real range of a per-minute measure pools every real minute; of a whole-track measure, every real piece.
A generated median outside the real 10-90% range is listed under `outside`. `--lengths 15,60,600` adds the
whole-track measures of tracks of those lengths, against the real songs whole and against the real songs cut
to that length (only those at least that long, so that none is looped; a range needs MIN_REAL of them).

    PYTHONPATH=. .venv/bin/python bench/bench_longform.py [--length 300] [--lengths 15,60,600] \
        [--moods rainy,chill,sunny] [--seeds 4] [--real 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import mido

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_music  # noqa: E402  (the generated and real tracks are made exactly as there)
from common import load_average  # noqa: E402

from lofi.cli.render import load_source  # noqa: E402
from music.analysis.compare import compare_feature  # noqa: E402
from music.analysis.features import FEATURES, KEYS_TRACK, MELODY_TRACK, read_midi, track_features  # noqa: E402
from music.analysis.longform import (  # noqa: E402
    REPETITION_LAGS,
    bar_contents,
    consecutive_contrasts,
    exact_repetition,
    fixed_sections,
    in_key,
    part_bars,
    piece_window,
    pitched,
)
from music.arrange import plan_sections  # noqa: E402
from music.request import TrackRequest, plan_track  # noqa: E402

MINUTE_S = 60.0
PART_MINUTE_S = 45.0  # a last part-minute shorter than this is too short to compare with a whole one
MIN_REAL = 8  # fewer real pieces than this give no range worth the name
REAL_LONGEST_S = 900.0  # a real piece longer than this is cut (none of the corpus is, at LoFi tempi)


def tempo_bpm(path: Path) -> float:
    """The first tempo of a MIDI file (the arranger writes one)."""
    for track in mido.MidiFile(path).tracks:
        for msg in track:
            if msg.type == "set_tempo":
                return float(mido.tempo2bpm(msg.tempo))
    return 120.0


def minute_bars(piece, bpm: float) -> list[range]:
    """The bars that start in each minute (a last part-minute only if it holds PART_MINUTE_S)."""
    seconds = [t / piece.ticks_per_beat * 60.0 / bpm for t in piece.bar_starts]
    out = []
    for m in range(int(seconds[-1] // MINUTE_S) + 1):
        bars = [b for b in range(piece.n_bars) if m * MINUTE_S <= seconds[b] < (m + 1) * MINUTE_S]
        if bars and seconds[bars[-1] + 1] - seconds[bars[0]] >= PART_MINUTE_S:
            out.append(range(bars[0], bars[-1] + 1))
    return out


def measures(piece, bars, only: range | None, sections) -> dict[str, float]:
    """The long-form measures of the bars `only` (None: the whole track) besides the features."""
    lo, hi = (0, piece.n_bars) if only is None else (only.start, only.stop)
    window = piece_window(piece, lo, hi)
    out = track_features(window, key=False).values()
    out["in_key"] = in_key(pitched(window), piece.key_signature)
    melody, harmony = part_bars(bars, MELODY_TRACK), part_bars(bars, KEYS_TRACK, pitch_classes=True)
    for lag in REPETITION_LAGS:
        out[f"repetition_{lag}"] = exact_repetition(bars, lag, only)
        out[f"melody_repetition_{lag}"] = exact_repetition(melody, lag, only)
        out[f"harmony_repetition_{lag}"] = exact_repetition(harmony, lag, only)
    contrasts = consecutive_contrasts(bars, sections)
    # A pair belongs to the minute in which its second section starts: the change is heard there.
    chosen = [c for (s, _), c in zip(sections[1:], contrasts, strict=False) if only is None or lo <= s < hi]
    out["contrast_8bar"] = sum(chosen) / len(chosen) if chosen else math.nan
    return out


def track_measures(midi: Path) -> dict:
    """{'whole': measures, 'minutes': [measures per minute]} of one arranged MIDI file."""
    piece = read_midi(midi)
    bars = bar_contents(piece)
    sections = fixed_sections(piece.n_bars)
    whole = measures(piece, bars, None, sections)
    contrasts = consecutive_contrasts(bars, sections)
    whole["contrast_8bar_min"] = min(contrasts) if contrasts else math.nan
    arranged = consecutive_contrasts(bars, [(lo, hi) for _, lo, hi in plan_sections(piece.n_bars)])
    whole["contrast_sections"] = sum(arranged) / len(arranged) if arranged else math.nan
    minutes = [measures(piece, bars, r, sections) for r in minute_bars(piece, tempo_bpm(midi))]
    return {"whole": whole, "minutes": minutes, "n_bars": piece.n_bars}


def load_real(data: Path, names: list[str]) -> list[tuple[str, object]]:
    """(name, score) of each real piece, or (name, error text) where the parser refuses it."""
    out: list[tuple[str, object]] = []
    for name in names:
        rel = name.split("/", 1)[1] if data.name in bench_music.KNOWN_SETS else name
        try:
            score = load_source(data / rel)
            if score.n_bars <= 0:
                raise ValueError("no bars")
            out.append((name, score))
        except Exception as exc:  # a piece the parser refuses is reported, not fatal
            out.append((name, f"{type(exc).__name__}: {exc}"[:200]))
    return out


def real_tracks(
    scores: list[tuple[str, object]], moods: list[str], out: Path, cut: float | None
) -> list[dict]:
    """Each real piece through the arranger (moods in turn, seed = its index): at its whole length, or cut
    to `cut` seconds (a piece shorter than that is left out: the arranger would loop it)."""
    rows = []
    for i, (name, score) in enumerate(scores):
        if isinstance(score, str):
            rows.append({"name": name, "error": score})
            continue
        mood = moods[i % len(moods)]
        # The mood's tempo for this seed, then the length that holds every bar of the piece at that tempo.
        first = plan_track(TrackRequest(length_s=MINUTE_S, mood=mood, seed=i))
        whole = min(score.n_bars * first.seconds / first.n_bars, REAL_LONGEST_S)  # type: ignore[attr-defined]
        if cut is not None and whole < cut:
            continue
        plan = plan_track(TrackRequest(length_s=cut or whole, mood=mood, seed=i))
        midi = bench_music.render(score, plan, out / f"real-{cut or 0:g}" / f"{i:03d}", False)
        rows.append({"name": name, "mood": mood, "seconds": round(plan.seconds, 1), "midi": midi})
    return rows


async def generated(models: Path, moods: list[str], seeds: list[int], lengths: list[float], out: Path):
    """{length: rows} of `bench_music`'s generated tracks, every length over one backend; and the versions."""
    from serving.local import open_local_backend

    by_length, versions = {}, {}
    async with open_local_backend(models) as backend:
        for length in lengths:
            rows, versions, _ = await bench_music.tracks_over(
                backend, moods, seeds, length, out / f"{length:g}s", False
            )
            by_length[length] = rows
    return by_length, versions


# ------------------------------------------------------------------------------------------ report
def _r(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 4)


def against_range(generated: list[dict], real: list[dict], names: list[str]) -> dict:
    """Per measure: `compare_feature` of the generated values with the real ones (medians, range, overlap)."""
    return {n: compare_feature([g.get(n) for g in generated], [r.get(n) for r in real]) for n in names}


def per_minute(gen: list[dict], real_minutes: list[dict], names: list[str]) -> dict:
    """Per measure: the real minutes' 10-90% range and the generated median of every minute index."""
    n_minutes = max(len(t["minutes"]) for t in gen)
    out = {}
    for name in names:
        cols = [
            compare_feature([t["minutes"][m].get(name) for t in gen if m < len(t["minutes"])], [])
            for m in range(n_minutes)
        ]
        ref = compare_feature([], [r.get(name) for r in real_minutes])
        medians = [c["generated_median"] for c in cols]
        lo, hi = ref["real_p10"], ref["real_p90"]
        outside = [
            m + 1 for m, v in enumerate(medians) if v is not None and lo is not None and not lo <= v <= hi
        ]
        out[name] = {"real_p10": lo, "real_p50": ref["real_p50"], "real_p90": hi}
        out[name] |= {"minutes": medians, "outside_minutes": outside}
    return out


def _outside(cmp: dict) -> list[str]:
    return sorted(
        n for n, c in cmp.items() if c["generated_median"] is not None and not c["inside_real_10_90"]
    )


def by_length(tracks: dict[float, list[dict]], real: list[dict], cut: dict[float, list[dict]], names) -> dict:
    """Per length: the generated whole-track medians and the measures outside the real 10-90% range, of the
    real songs whole and of the real songs cut to that length (those at least that long)."""
    out = {}
    for length, ts in tracks.items():
        cmp = against_range([t["whole"] for t in ts], real, names)
        row = {
            "bars": bench_music.median(t["n_bars"] for t in ts),
            "medians": {n: c["generated_median"] for n, c in cmp.items()},
            "outside_whole_songs": _outside(cmp),
            "real_cut_n": len(cut.get(length, [])),
        }
        if len(cut.get(length, [])) >= MIN_REAL:
            same = against_range([t["whole"] for t in ts], cut[length], names)
            row["outside_songs_cut_to_length"] = _outside(same)
            row["cut_range"] = {n: [c["real_p10"], c["real_p90"]] for n, c in same.items()}
        out[f"{length:g}s"] = row
    return out


def report(tracks: dict[float, list[dict]], length: float, real: list[dict], cut: dict[float, list]) -> dict:
    """The JSON: the main length whole and per minute, every length whole, all against the real range."""
    minute_names = [*FEATURES, "in_key", "contrast_8bar"]
    minute_names += [
        f"{k}_{lag}"
        for k in ("repetition", "melody_repetition", "harmony_repetition")
        for lag in REPETITION_LAGS
    ]
    whole_names = [*minute_names, "contrast_8bar_min", "contrast_sections"]
    real_whole = [r["measures"]["whole"] for r in real]
    real_minutes = [m for r in real for m in r["measures"]["minutes"]]
    main = [t for t in tracks[length]]
    whole = against_range([t["whole"] for t in main], real_whole, whole_names)
    minutes = per_minute(main, real_minutes, minute_names)
    return {
        "whole_track": whole,
        "whole_track_outside": sorted(n for n, c in whole.items() if not c["inside_real_10_90"]),
        "per_minute": minutes,
        "per_minute_outside": {n: v["outside_minutes"] for n, v in minutes.items() if v["outside_minutes"]},
        "by_length": by_length(tracks, real_whole, cut, whole_names),
        "real_whole_by_source": {  # lead sheets (openewld) and performed pop songs (pop909) differ
            source: {
                n: _r(
                    bench_music.median(
                        r["measures"]["whole"].get(n) for r in real if r["name"].startswith(source)
                    )
                )
                for n in whole_names
            }
            for source in sorted({r["name"].split("/")[0] for r in real})
        },
        "real_per_minute_index": {  # are real songs themselves stable minute by minute? (medians per index)
            n: [
                _r(
                    bench_music.median(
                        r["measures"]["minutes"][m].get(n) for r in real if m < len(r["measures"]["minutes"])
                    )
                )
                for m in range(max(len(r["measures"]["minutes"]) for r in real))
            ]
            for n in (
                "harmony_repetition_8",
                "melody_repetition_8",
                "contrast_8bar",
                "in_key",
                "notes_per_bar",
            )
        },
    }


async def run(args) -> dict:
    """The whole benchmark."""
    t0 = time.perf_counter()
    moods = [m.strip() for m in args.moods.split(",") if m.strip()]
    seeds = list(range(args.seed_base, args.seed_base + args.seeds))
    lengths = [args.length] + [
        float(x) for x in args.lengths.split(",") if x.strip() and float(x) != args.length
    ]
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-longform-") as tmp:
        out = Path(args.keep) if args.keep else Path(tmp)
        t = time.perf_counter()
        rows, versions = await generated(Path(args.models), moods, seeds, lengths, out)
        timings["generate_and_arrange"] = time.perf_counter() - t
        t = time.perf_counter()
        names = bench_music.test_pieces(Path(args.data), args.split_seed, args.real)
        scores = load_real(Path(args.data), names)
        real = real_tracks(scores, moods, out, None)
        cut = {length: real_tracks(scores, moods, out, length) for length in lengths}
        timings["real_parse_and_arrange"] = time.perf_counter() - t
        t = time.perf_counter()
        tracks = {length: [track_measures(r["midi"]) for r in rs] for length, rs in rows.items()}
        for r in real:
            if "midi" in r:
                r["measures"] = track_measures(r["midi"])
        cut_measures = {k: [track_measures(r["midi"])["whole"] for r in rs] for k, rs in cut.items()}
        timings["measures"] = time.perf_counter() - t
    ok = [r for r in real if "measures" in r]
    timings["total"] = time.perf_counter() - t0
    return {
        "config": {
            "moods": moods,
            "seeds": seeds,
            "length_s": args.length,
            "lengths_s": lengths,
            "models": str(args.models),
            "versions": versions,
            "split_seed": args.split_seed,
            "real_pieces": len(ok),
            "real_minutes": sum(len(r["measures"]["minutes"]) for r in ok),
            "real_seconds": {
                k: _r(v)
                for k, v in zip(("p10", "p50", "p90"), _pcts([r["seconds"] for r in ok]), strict=True)
            },
            "real_refused": [r for r in real if "error" in r],
            "load_average": load_average(),
        },
        **report(tracks, args.length, ok, cut_measures),
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
    }


def _pcts(xs: list[float]) -> list[float]:
    xs = sorted(xs)
    return [xs[min(int(q * len(xs)), len(xs) - 1)] for q in (0.1, 0.5, 0.9)] if xs else [math.nan] * 3


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run, print the JSON."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    bench_music.add_track_options(p, moods="rainy,chill,sunny", seeds=4, length=300.0, split_seed=0)
    p.add_argument("--lengths", default="", help="more lengths in seconds (whole-track measures): 15,60,600")
    args = p.parse_args(argv)
    if not Path(args.models).is_dir():
        print(f"bench_longform: no models at {args.models}", file=sys.stderr)
        return 2
    print(json.dumps(asyncio.run(run(args)), indent=1, default=bench_music.to_json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
