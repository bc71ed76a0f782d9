"""Benchmark: does what the models write sound like the corpus's music? Prints JSON.

N tracks per mood are generated through the pipeline `lofi generate` and the bot run
(`compose.pipeline.Composer.make_track`, with the in-process `LocalBackend` over the SavedModels in --models),
and compared with held-out real pieces of the corpus (its test split, as training/dataset.py's `split_of`
defines it; the same pieces every run) played through the same arranger at the same length, as `lofi render
song.mid --length 60` does. Both sides are read back from the arranged MIDI files by `music.analysis.features`
alone.

Only the arranged MIDI is needed, so the audio half of the render (FluidSynth, effects, mastering, MP3) is
skipped: `make_track` runs exactly as in production except that `music.track.render_track` is replaced by
its arranging step (`arrange_only` below). `--audio` runs the full render instead.

For each feature: the generated median, the real pieces' 10/50/90th percentiles, whether the median lies
inside the real 10-90% range and the overlapping area of the two distributions (KDE, Yang & Lerch 2018);
then the mean overlap, the key checks (music21's key finder: does a minor mood read minor, and is the key
found the planned one) and the targets of issue 11.

    PYTHONPATH=. .venv/bin/python bench/bench_music.py --models models \
        [--moods rainy,chill,sunny,night] [--seeds 8] [--length 60] [--real 40] [--keep DIR] [--tracks]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import os
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Every project API this benchmark uses, in one place (the package layout is being reworked).
import music.track as render_module  # noqa: E402  (its render_track is what make_track calls)
from compose.pipeline import Composer  # noqa: E402  (what `lofi generate` and the bot run)
from lofi.cli.render import MUSIC_SUFFIXES, load_source  # noqa: E402  (what `lofi render` reads)
from music.analysis.compare import compare_feature  # noqa: E402
from music.analysis.features import FEATURES, track_features  # noqa: E402
from music.arrange import arrange  # noqa: E402
from music.request import TrackRequest, load_moods, plan_track  # noqa: E402
from music.track import fit_to_plan, track_title  # noqa: E402
from training.dataset import split_of  # noqa: E402  (pure Python: the split, not TensorFlow)

KNOWN_SETS = ("openewld", "pop909", "groove")  # training/corpus.py names pieces relative to the corpus root
DRUMS_ONLY = ("groove",)  # the Groove MIDI files are drums only: never a piece
TARGETS = {"mean_overlap": 0.7, "mode_as_mood": 0.9, "key_is_planned": 0.8}


@dataclass
class MidiOnly:
    """What `arrange_only` returns in place of `music.track.TrackFiles`."""

    midi: Path
    key: str
    mood: str
    seed: int
    bpm: float
    timings: dict = field(default_factory=dict)


def arrange_only(score, plan, out_dir: Path, **_ignored) -> MidiOnly:
    """`music.track.render_track` up to the MIDI file: fit to the plan, arrange, write (no audio)."""
    t = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seed, mood = plan.request.seed, plan.mood
    title = score.title or track_title(mood.name, seed)
    slug = re.sub(r"[^a-z0-9]+", "-", f"{title}-{mood.name}-{seed}".lower()).strip("-")
    arrangement = arrange(
        fit_to_plan(score, plan), mood.sound or {}, n_bars=plan.n_bars, seed=seed, title=title
    )
    path = arrangement.write(out_dir / f"{slug}.mid")
    return MidiOnly(path, arrangement.key, mood.name, seed, plan.bpm, {"arrange": time.perf_counter() - t})


def render(score, plan, out_dir: Path, audio: bool) -> Path:
    """The arranged MIDI of `score` under `plan` (through the full render when `audio`)."""
    if audio:
        return Path(render_module.render_track(score, plan, out_dir).midi)
    return arrange_only(score, plan, out_dir).midi


# ------------------------------------------------------------------------------------------ real pieces
def test_pieces(data: Path, split_seed: int, n: int) -> list[str]:
    """`n` test-split pieces of the corpus at `data`, spread evenly over their sorted names (stable)."""
    names = all_test_pieces(data, split_seed)
    if n >= len(names):
        return names
    return [names[(i * len(names)) // n] for i in range(n)]


def reference_groups(
    data: Path, split_seed: int, compared: list[str], size: int, groups: int
) -> list[list[str]]:
    """`groups` disjoint groups of `size` test pieces that are not among the `compared` ones (fewer groups
    when the test split runs out), each spread over the sorted names: real music standing in for the
    generated tracks, so that the overlap a perfect generator would score with these sample sizes is known."""
    rest = [n for n in all_test_pieces(data, split_seed) if n not in set(compared)]
    count = min(groups, len(rest) // size) if size > 0 else 0
    return [rest[g::count][:size] for g in range(count)]


def all_test_pieces(data: Path, split_seed: int) -> list[str]:
    """Every test-split piece of the corpus at `data` (no drums-only sets), sorted by name."""
    names = []
    for path in sorted(data.rglob("*")):
        if not path.is_file() or path.is_symlink() or not path.name.lower().endswith(MUSIC_SUFFIXES):
            continue
        rel = path.relative_to(data).as_posix()
        name = f"{data.name}/{rel}" if data.name in KNOWN_SETS else rel
        if name.split("/")[0] in DRUMS_ONLY:
            continue
        if split_of(name, split_seed) == "test":
            names.append(name)
    return names


def real_tracks(
    data: Path, names: list[str], moods: list[str], length: float, out: Path, audio: bool
) -> list:
    """Each real piece through `lofi render PIECE --length L --mood M --seed i` (moods taken in turn)."""
    rows = []
    for i, name in enumerate(names):
        rel = name.split("/", 1)[1] if data.name in KNOWN_SETS else name
        mood = moods[i % len(moods)]
        t = time.perf_counter()
        try:
            score = load_source(data / rel)
            if score.n_bars <= 0:
                raise ValueError("no bars")
        except Exception as exc:  # a piece the parser refuses is reported, not fatal
            rows.append({"kind": "real", "name": name, "error": f"{type(exc).__name__}: {exc}"[:200]})
            continue
        plan = plan_track(TrackRequest(length_s=length, mood=mood, seed=i))
        midi = render(score, plan, out / "real" / f"{i:03d}", audio)
        rows.append(
            {
                "kind": "real",
                "name": name,
                "mood": mood,
                "seed": i,
                "midi": midi,
                "planned": (
                    plan.tonic,
                    score.mode,
                ),  # the arranger keeps the piece's mode at the plan's tonic
                "seconds": time.perf_counter() - t,
            }
        )
    return rows


# ------------------------------------------------------------------------------------------ generated
async def generated_tracks(
    models: Path, moods: list[str], seeds: list[int], length: float, out: Path, audio: bool
):
    """Every (mood, seed) through `make_track` on the in-process backend (`serving.local.LocalBackend`, as
    `lofi generate` composes); (rows, versions, manifest config)."""
    from serving.local import open_local_backend

    async with open_local_backend(models) as backend:
        return await tracks_over(backend, moods, seeds, length, out, audio)


async def tracks_over(backend, moods: list[str], seeds: list[int], length: float, out: Path, audio: bool):
    composer = Composer(backend)
    rows, versions = [], {}
    try:
        members = await backend.members()
        latest = await backend.latest_versions(members)
        manifest = await backend.manifest(members[0], latest[members[0]])
        patch = mock.patch.object(render_module, "render_track", arrange_only) if not audio else None
        if patch:
            patch.start()
        try:
            for mood in moods:
                for seed in seeds:
                    request = TrackRequest(length_s=length, mood=mood, seed=seed)
                    result = await composer.make_track(request, out / "generated" / f"{mood}-{seed}")
                    if not audio and not isinstance(result.files, MidiOnly):
                        raise RuntimeError(
                            "Composer.make_track no longer calls music.track.render_track: fix the patch"
                        )
                    versions = result.versions
                    plan = result.plan
                    rows.append(
                        {
                            "kind": "generated",
                            "mood": mood,
                            "seed": seed,
                            "midi": Path(result.files.midi),
                            "planned": (plan.tonic, plan.mode),
                            "seconds": result.timings.get("total", math.nan),
                            "generate_s": result.timings.get("generate", math.nan),
                        }
                    )
        finally:
            if patch:
                patch.stop()
    finally:
        await composer.close()
    return rows, versions, manifest


# ------------------------------------------------------------------------------------------ report
def key_relation(found: tuple[int, str] | None, planned: tuple[int, str]) -> str:
    """How the key found relates to the planned one: 'same', 'relative', 'parallel', 'fifth above', ..."""
    if found is None:
        return "none"
    (ft, fm), (pt, pm) = found, planned
    d = (ft - pt) % 12
    if fm == pm:
        return {0: "same", 7: "fifth above", 5: "fifth below"}.get(d, "other")
    if d == 0:
        return "parallel"
    if (pm == "major" and d == 9) or (pm == "minor" and d == 3):
        return "relative"
    return "other"


def share(flags: list[bool]) -> float | None:
    """Share of True (None for no values)."""
    return round(sum(flags) / len(flags), 4) if flags else None


def key_report(rows: list[dict], mood_modes: dict[str, str] | None) -> dict:
    """Mode and key agreement of music21's reading with the plan, overall and per mood."""
    out: dict = {}
    ok = [r for r in rows if "features" in r]
    out["key_is_planned"] = share([r["features"].key_found == r["planned"] for r in ok])
    out["mode_is_planned"] = share([(r["features"].key_found or (0, ""))[1] == r["planned"][1] for r in ok])
    relations: dict[str, int] = {}
    for r in ok:
        rel = key_relation(r["features"].key_found, r["planned"])
        relations[rel] = relations.get(rel, 0) + 1
    out["relation"] = dict(sorted(relations.items(), key=lambda kv: -kv[1]))
    if mood_modes is not None:
        out["mode_as_mood"] = share(
            [(r["features"].key_found or (0, ""))[1] == mood_modes[r["mood"]] for r in ok]
        )
        by_mood = {}
        for mood in dict.fromkeys(r["mood"] for r in ok):
            rs = [r for r in ok if r["mood"] == mood]
            by_mood[mood] = {
                "mood_mode": mood_modes[mood],
                "mode_as_mood": share(
                    [(r["features"].key_found or (0, ""))[1] == mood_modes[mood] for r in rs]
                ),
                "key_is_planned": share([r["features"].key_found == r["planned"] for r in rs]),
                "n": len(rs),
            }
        out["by_mood"] = by_mood
    return out


def median(values) -> float | None:
    """Median of the finite values, rounded (None if there are none)."""
    xs = [v for v in values if v is not None and math.isfinite(v)]
    return round(statistics.median(xs), 4) if xs else None


def report(gen: list[dict], real: list[dict], moods: list[str]) -> dict:
    """The comparison JSON (without config and timings)."""
    g_ok = [r for r in gen if "features" in r]
    r_ok = [r for r in real if "features" in r]
    features = {}
    for name, what in FEATURES.items():
        c = compare_feature(
            [r["features"].values()[name] for r in g_ok], [r["features"].values()[name] for r in r_ok]
        )
        features[name] = {"what": what, **c}
    overlaps = [f["overlap"] for f in features.values() if f["overlap"] is not None]
    mean_overlap = round(sum(overlaps) / len(overlaps), 4) if overlaps else None
    mood_modes = {m: load_moods()[m].mode for m in moods}
    keys = key_report(g_ok, mood_modes)
    per_mood = {
        mood: {
            name: median(r["features"].values()[name] for r in g_ok if r["mood"] == mood) for name in FEATURES
        }
        for mood in moods
    }
    inside = [name for name, f in features.items() if f["inside_real_10_90"]]
    targets = {
        "every_median_inside_real_10_90": len(inside) == len(FEATURES),
        "features_inside": f"{len(inside)}/{len(FEATURES)}",
        "mean_overlap>=0.7": mean_overlap is not None and mean_overlap >= TARGETS["mean_overlap"],
        "mode_as_mood>=0.9": (keys.get("mode_as_mood") or 0) >= TARGETS["mode_as_mood"],
        "key_is_planned>=0.8": (keys.get("key_is_planned") or 0) >= TARGETS["key_is_planned"],
    }
    targets["met"] = all(v for k, v in targets.items() if k != "features_inside")
    return {
        "features": features,
        "mean_overlap": mean_overlap,
        "key": keys,
        "real_key": key_report(r_ok, None),  # how far music21's reading can be trusted, on real music
        "per_mood_median": per_mood,
        "targets": targets,
    }


def analyse(rows: list[dict]) -> float:
    """Add `features` to every row that has a MIDI file; returns the seconds spent."""
    t = time.perf_counter()
    for r in rows:
        if "midi" in r:
            r["features"] = track_features(r["midi"])
    return time.perf_counter() - t


def track_rows(rows: list[dict]) -> list[dict]:
    """Per-track JSON rows (for --tracks)."""
    out = []
    for r in rows:
        row = {k: v for k, v in r.items() if k not in ("features", "midi", "seconds", "generate_s")}
        row["midi"] = str(r["midi"]) if "midi" in r else None
        if "features" in r:
            f = r["features"]
            row.update({k: (None if not math.isfinite(v) else round(v, 4)) for k, v in f.values().items()})
            row["key_found"] = f.key_found
            row["n_bars"] = f.n_bars
        out.append(row)
    return out


async def run(args) -> dict:
    """The whole benchmark."""
    t0 = time.perf_counter()
    moods = [m.strip() for m in args.moods.split(",") if m.strip()]
    seeds = list(range(args.seed_base, args.seed_base + args.seeds))
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-music-") as tmp:
        out = Path(args.keep) if args.keep else Path(tmp)
        t = time.perf_counter()
        gen, versions, manifest = await generated_tracks(
            Path(args.models), moods, seeds, args.length, out, args.audio
        )
        timings["generate_and_arrange"] = time.perf_counter() - t
        split_seed = (
            args.split_seed if args.split_seed is not None else int(manifest.config.get("split_seed", 0))
        )
        t = time.perf_counter()
        names = test_pieces(Path(args.data), split_seed, args.real)
        real = real_tracks(Path(args.data), names, moods, args.length, out, args.audio)
        timings["real_parse_and_arrange"] = time.perf_counter() - t
        timings["features_generated"] = analyse(gen)
        timings["features_real"] = analyse(real)
        result = report(gen, real, moods)
        t = time.perf_counter()
        result["reference"] = reference(args, split_seed, names, len(gen), moods, out, real)
        timings["reference"] = time.perf_counter() - t
        result_tracks = track_rows(gen + real) if args.tracks else None
    timings["total"] = time.perf_counter() - t0
    generate_s = [r["generate_s"] for r in gen]
    return {
        "config": {
            "moods": moods,
            "seeds": seeds,
            "length_s": args.length,
            "models": str(args.models),
            "versions": versions,
            "preset": manifest.config.get("preset"),
            "split_seed": split_seed,
            "generated_tracks": len(gen),
            "real_pieces": len([r for r in real if "features" in r]),
            "real_refused": [{"name": r["name"], "error": r["error"]} for r in real if "error" in r],
            "real_sources": _count(r["name"].split("/")[0] for r in real),
            "real_set_sha256": hashlib.sha256("\n".join(names).encode()).hexdigest()[:16],
            "audio": args.audio,
        },
        **result,
        "timings_s": {
            **{k: round(v, 2) for k, v in timings.items()},
            "generate_per_track_median": median(generate_s),
        },
        **({"tracks": result_tracks} if result_tracks is not None else {}),
    }


def reference(args, split_seed: int, names: list[str], size: int, moods: list[str], out: Path, real) -> dict:
    """Groups of other real pieces compared with the real set exactly as the generated tracks are: the mean
    overlap that music indistinguishable from the real pieces scores with these sample sizes (the KDE overlap
    of two small samples of one distribution is well under 1), per group and their median."""
    groups = reference_groups(Path(args.data), split_seed, names, size, args.reference_groups)
    scores, per_feature = [], {name: [] for name in FEATURES}
    for g, group in enumerate(groups):
        rows = real_tracks(Path(args.data), group, moods, args.length, out / f"reference-{g}", args.audio)
        analyse(rows)
        r = report(rows, real, moods)
        scores.append(r["mean_overlap"])
        for name, f in r["features"].items():
            per_feature[name].append(f["overlap"])
    return {
        "what": "real test pieces not among the compared ones, in groups as large as the generated set, "
        "compared with the real set like the generated tracks",
        "groups": len(groups),
        "group_size": size,
        "mean_overlap_per_group": scores,
        "mean_overlap_median": median(scores),
        "overlap_median_per_feature": {name: median(v) for name, v in per_feature.items()},
    }


def _count(items) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return out


def add_track_options(
    p: argparse.ArgumentParser, *, moods: str, seeds: int, length: float, split_seed: int | None
) -> None:
    """The options of the tracks compared and the real pieces compared with (this benchmark's and
    bench_longform's)."""
    p.add_argument("--models", type=Path, default=ROOT / "models", help="exported ensemble (default models/)")
    p.add_argument("--moods", default=moods)
    p.add_argument("--seeds", type=int, default=seeds, help="tracks per mood")
    p.add_argument("--seed-base", type=int, default=0, help="first seed")
    p.add_argument("--length", type=float, default=length, help="seconds per track")
    p.add_argument("--data", type=Path, default=ROOT / "data" / "corpus", help="the corpus (its test split)")
    p.add_argument("--real", type=int, default=40, help="real test pieces to compare with")
    p.add_argument(
        "--split-seed",
        type=int,
        default=split_seed,
        help="the models' training split seed"
        + (" (default: read from the models)" if split_seed is None else ""),
    )
    p.add_argument("--keep", type=Path, default=None, help="keep the arranged MIDI files here")


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run, print the JSON."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_track_options(p, moods="rainy,chill,sunny,night", seeds=8, length=60.0, split_seed=None)
    p.add_argument("--tracks", action="store_true", help="add every track's features to the JSON")
    p.add_argument(
        "--reference-groups",
        type=int,
        default=3,
        help="groups of other real pieces scored like the generated tracks (the ceiling; 0: none)",
    )
    p.add_argument("--audio", action="store_true", help="run the full render (FluidSynth...) as well")
    args = p.parse_args(argv)
    if not Path(args.models).is_dir():
        print(
            f"bench_music: no models at {args.models} (train some: lofi train --models DIR)", file=sys.stderr
        )
        return 2
    print(json.dumps(asyncio.run(run(args)), indent=1, default=to_json))
    return 0


def to_json(x):
    """`json.dumps`'s default: paths as text, NaN and infinities as null."""
    if isinstance(x, Path):
        return str(x)
    if isinstance(x, float) and not math.isfinite(x):
        return None
    raise TypeError(type(x).__name__)


if __name__ == "__main__":
    sys.exit(main())
