"""Benchmark: arrange + render + effects + master + encode of a 2-minute track; prints JSON.

The loudness and true peak of the MP3 are measured by an independent meter (ffmpeg's ebur128 filter), and the
decoded MP3 is checked for clipped samples.

    .venv/bin/python bench/bench_render.py [--seconds 120] [--mood chill] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import load_average  # noqa: E402
from music.master import ffmpeg_ebur128 as ebur128  # noqa: E402
from music.request import TrackRequest, plan_track  # noqa: E402
from music.track import render_track
from tests.support.scores import example_score  # noqa: E402


def clipped_samples(path: Path) -> int:
    """Samples at full scale in the decoded MP3."""
    pcm = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "2", "-"],
        capture_output=True,
        check=True,
    ).stdout
    x = np.frombuffer(pcm, dtype="<i2")
    return int(np.count_nonzero((x >= 32767) | (x <= -32768)))


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (FluidSynth, ffmpeg)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    """Run the benchmark and print the JSON report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--mood", default="chill")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    plan = plan_track(TrackRequest(length_s=args.seconds, mood=args.mood, seed=args.seed))
    score = example_score(plan.n_bars, plan.bpm, plan.mode)
    runs, totals, cpus = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp:
        render_track(
            example_score(4, plan.bpm, plan.mode), plan_track(TrackRequest(8, args.mood, 0)), Path(tmp)
        )  # warm up
        for i in range(args.runs):
            t, c = time.perf_counter(), cpu_seconds()
            files = render_track(score, plan, Path(tmp) / str(i))
            totals.append(time.perf_counter() - t)
            cpus.append(cpu_seconds() - c)
            runs.append(files.timings)
        measured = ebur128(files.mp3)
        clipped = clipped_samples(files.mp3)
        size = files.mp3.stat().st_size
    stages = {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}
    core = ("arrange", "stems", "mix", "encode")
    report = {
        "track": {
            "mood": plan.mood.name,
            "bars": plan.n_bars,
            "bpm": round(plan.bpm, 2),
            "key": files.key,
            "requested_s": args.seconds,
            "duration_s": round(files.duration_s, 3),
        },
        "runs": args.runs,
        "median_stage_s": stages,
        "median_arrange_stems_mix_encode_s": round(
            statistics.median(sum(r[k] for k in core) for r in runs), 3
        ),
        "median_total_s": round(statistics.median(totals), 3),
        "median_total_cpu_s": round(statistics.median(cpus), 3),
        "load_average_1min": round(load_average()[0], 2),
        "duration_error_pct": round(100 * abs(files.duration_s - args.seconds) / args.seconds, 3),
        "pipeline_lufs": round(files.loudness_lufs, 2),
        "pipeline_true_peak_dbtp": round(files.true_peak_dbtp, 2),
        "ffmpeg_ebur128_lufs": measured["lufs"],
        "ffmpeg_ebur128_true_peak_dbtp": measured["true_peak_dbtp"],
        "clipped_samples": clipped,
        "mp3_bytes": size,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
