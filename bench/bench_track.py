"""Benchmark: whole tracks through `compose.pipeline.Composer.make_track` against a running model server; prints JSON.

The models are loaded once: by the embedded server's store, called directly as the bot and `lofi generate`
do (default), by an embedded server over gRPC on loopback (--grpc), or served at --serving HOST:PORT. Then
every (mood, seed) pair makes one track and the stage timings are reported, with medians and the load.

    .venv/bin/python bench/bench_track.py --models models [--length 120] [--moods rainy sunny] [--seeds 1 2 3]
        [--grpc | --serving HOST:PORT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import add_backend_arguments, load_average  # noqa: E402
from lofi.malloc import keep_freed_memory  # noqa: E402  (as the lofi command does)

keep_freed_memory()


def cpu_seconds() -> float:
    """User + system CPU of this process (all threads: the sampler, in-process FluidSynth, effects) and of its
    finished children (ffmpeg); with an embedded model server this includes serving the models."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


async def run(args) -> dict:
    from compose.pipeline import Composer
    from lofi.model_server import one_shot_backend
    from music.request import TrackRequest

    rows = []
    load_before = load_average()
    async with one_shot_backend(args.serving, Path(args.models), 30.0, local=not args.grpc) as client:
        backend = type(client).__name__  # LocalBackend (the store called directly) or ServingClient
        composer = Composer(client)
        with tempfile.TemporaryDirectory(prefix="bench-track-") as tmp:
            if args.warmup:
                await composer.make_track(TrackRequest(30.0, "chill", 99), Path(tmp) / "warm")
            for mood in args.moods:
                for seed in args.seeds:
                    req = TrackRequest(float(args.length), mood, int(seed))
                    t, c = time.perf_counter(), cpu_seconds()
                    res = await composer.make_track(req, Path(tmp) / f"{mood}-{seed}")
                    wall, cpu = time.perf_counter() - t, cpu_seconds() - c
                    size = res.files.mp3.stat().st_size
                    rows.append(
                        {
                            "mood": mood,
                            "seed": seed,
                            "wall_s": round(wall, 3),
                            "cpu_s": round(cpu, 3),
                            "load_1min": load_average()[0],
                            "duration_s": round(res.files.duration_s, 3),
                            "mp3_bytes": size,
                            "timings": {k: round(v, 3) for k, v in res.timings.items()},
                        }
                    )
        await composer.close()
    walls = [r["wall_s"] for r in rows]
    keys = sorted({k for r in rows for k in r["timings"]})
    return {
        "benchmark": "track",
        "backend": backend,
        "length_s": args.length,
        "runs": len(rows),
        "median_wall_s": round(statistics.median(walls), 3),
        "median_cpu_s": round(statistics.median(r["cpu_s"] for r in rows), 3),
        "median_timings_s": {
            k: round(statistics.median(r["timings"].get(k, 0.0) for r in rows), 3) for k in keys
        },
        "median_mp3_bytes": int(statistics.median(r["mp3_bytes"] for r in rows)),
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "tracks": rows,
    }


def main() -> None:
    """Run the benchmark and print the JSON report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_backend_arguments(ap)
    ap.add_argument("--length", type=float, default=120.0)
    ap.add_argument("--moods", nargs="+", default=["rainy", "sunny"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument("--no-warmup", dest="warmup", action="store_false")
    print(json.dumps(asyncio.run(run(ap.parse_args())), indent=2))


if __name__ == "__main__":
    main()
