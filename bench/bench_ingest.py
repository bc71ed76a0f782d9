"""Benchmark: ingesting a hostile archive (many members, each under every per-member cap); prints JSON.

The archive is made in a temporary folder (bounded: `--members` x `--member-kib`, deleted afterwards) and holds
junk that looks like MIDI, a few real tunes, a few very dense MIDI files (that would keep a parser busy for
minutes) and a member with a corrupt deflate stream. A sampler thread reads the resident memory of this
process and of its parser workers (from /proc) every 20 ms; the figures are the peaks, the parent's alone and
parent plus workers together.

    .venv/bin/python bench/bench_ingest.py [--members 400] [--member-kib 512] [--workers 2] [--timeout 5]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.hostile.test_corpus_bounds import dense_midi  # noqa: E402
from tests.training.test_corpus import tune  # noqa: E402
from training.corpus import load_corpus  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return 0


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError, ValueError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


class Sampler(threading.Thread):
    """Peak RSS of this process, and of this process plus its children, sampled every `every_s`."""

    def __init__(self, every_s: float = 0.02):
        super().__init__(daemon=True)
        self.every_s, self.stop = every_s, threading.Event()
        self.parent_peak = self.total_peak = self.worker_peak = 0
        self.workers_seen: set[int] = set()

    def run(self) -> None:
        me = os.getpid()
        while not self.stop.is_set():
            parent = _rss(me)
            kids = _children(me)
            self.workers_seen.update(kids)
            sizes = [_rss(k) for k in kids]
            self.parent_peak = max(self.parent_peak, parent)
            self.worker_peak = max([self.worker_peak, *sizes])
            self.total_peak = max(self.total_peak, parent + sum(sizes))
            self.stop.wait(self.every_s)


def make_archive(path: Path, members: int, member_kib: int, dense: int) -> dict:
    """The hostile archive; returns what it holds."""
    size = member_kib * 1024
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for i in range(members):
            zf.writestr(f"junk/m{i:05d}.mid", b"MThd" + os.urandom(size - 4))
        for i in range(5):
            zf.writestr(f"tunes/t{i}.mid", tune(i))
        for i in range(dense):
            zf.writestr(f"dense/d{i}.mid", dense_midi(20_000 + i))
        info = zipfile.ZipInfo("broken/deflate.mid")
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, tune(9) * 8)
    raw = bytearray(path.read_bytes())
    at = raw.find(b"broken/deflate.mid") + len("broken/deflate.mid") + 20
    raw[at : at + 40] = b"\xff" * 40  # a corrupt deflate stream
    path.write_bytes(bytes(raw))
    return {"members": members + 5 + dense + 1, "uncompressed_mib": round(members * size / 2**20, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--members", type=int, default=400)
    ap.add_argument("--member-kib", type=int, default=512)
    ap.add_argument("--dense", type=int, default=2, help="very dense MIDI members (each hits the time limit)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=5.0, help="per-file parse time limit, s")
    ap.add_argument("--in-flight-mib", type=int, default=64)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        archive = Path(tmp) / "hostile.zip"
        held = make_archive(archive, args.members, args.member_kib, args.dense)
        sampler = Sampler()
        baseline = _rss(os.getpid())
        sampler.start()
        t0 = time.perf_counter()
        result = load_corpus(
            [archive],
            cache_dir=Path(tmp) / "cache",
            workers=args.workers,
            progress=False,
            parse_timeout_s=args.timeout,
            max_in_flight_bytes=args.in_flight_mib * 2**20,
        )
        seconds = time.perf_counter() - t0
        sampler.stop.set()
        sampler.join()
        reasons: dict[str, int] = {}
        for _, reason in result.skipped:
            key = reason.split(" (")[0]
            reasons[key] = reasons.get(key, 0) + 1
        print(
            json.dumps(
                {
                    "archive": {**held, "zip_mib": round(archive.stat().st_size / 2**20, 1)},
                    "workers": args.workers,
                    "parse_timeout_s": args.timeout,
                    "seconds": round(seconds, 2),
                    "files_per_s": round(result.files_read / seconds, 1),
                    "pieces": len(result.pieces),
                    "skipped": reasons,
                    "peak_in_flight_mib": round(result.peak_in_flight_bytes / 2**20, 2),
                    "rss_mib": {
                        "parent_before": round(baseline / 2**20, 1),
                        "parent_peak": round(sampler.parent_peak / 2**20, 1),
                        "worker_peak": round(sampler.worker_peak / 2**20, 1),
                        "parent_plus_workers_peak": round(sampler.total_peak / 2**20, 1),
                    },
                    "worker_processes_started": len(sampler.workers_seen),
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
