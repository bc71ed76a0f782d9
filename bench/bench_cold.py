"""Benchmark: a cold `lofi generate` (a new process: imports, model server, models, one track); prints JSON.

Each run starts `python -m lofi.cli generate --json` afresh with the embedded model server (no SERVING_ADDRESS),
so it pays for importing TensorFlow, loading and compiling every member and loading the soundfont, as a user's
first command does. Reported: wall time of the whole command, its CPU (user + system), and the pipeline's own
stage timings from its JSON.

    .venv/bin/python bench/bench_cold.py [--length 2m] [--mood rainy] [--seeds 7 8 9] [--models models]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import load_average  # noqa: E402


def one_run(args, seed: int, out_dir: Path) -> dict:
    """One `lofi generate` in a new process: its wall and CPU time and the pipeline timings it reports."""
    env = {k: v for k, v in os.environ.items() if k != "SERVING_ADDRESS"}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cmd = [sys.executable, "-m", "lofi.cli", "generate", "--json", "--length", args.length]
    cmd += ["--mood", args.mood, "--seed", str(seed), "--models", str(args.models)]
    cmd += ["--out", str(out_dir / f"cold-{seed}.mp3")]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=args.timeout_s)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"lofi generate failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
    summary = json.loads(proc.stdout)
    return {
        "seed": seed,
        "wall_s": round(wall, 3),
        "cpu_s": round(
            after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime,
            3,
        ),
        "pipeline_s": round(summary["timings"]["total"], 3),
        "start_up_s": round(wall - summary["timings"]["total"], 3),
        "load_1min": load_average()[0],
        "timings": {k: round(v, 3) for k, v in summary["timings"].items()},
    }


def main() -> None:
    """Run the benchmark and print the JSON report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=str(ROOT / "models"))
    ap.add_argument("--length", default="2m")
    ap.add_argument("--mood", default="rainy")
    ap.add_argument("--seeds", nargs="+", type=int, default=[7, 8, 9])
    ap.add_argument("--timeout-s", type=float, default=600.0)
    args = ap.parse_args()
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp:
        rows = [one_run(args, seed, Path(tmp)) for seed in args.seeds]
    print(
        json.dumps(
            {
                "benchmark": "cold_generate",
                "length": args.length,
                "mood": args.mood,
                "runs": len(rows),
                "median_wall_s": round(statistics.median(r["wall_s"] for r in rows), 3),
                "median_cpu_s": round(statistics.median(r["cpu_s"] for r in rows), 3),
                "median_pipeline_s": round(statistics.median(r["pipeline_s"] for r in rows), 3),
                "median_start_up_s": round(statistics.median(r["start_up_s"] for r in rows), 3),
                "cpus": os.cpu_count(),
                "load_average_before": load_before,
                "load_average_after": load_average(),
                "runs_detail": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
