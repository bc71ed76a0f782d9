"""What several benchmarks share: the machine's load, and the choice of model backend."""

from __future__ import annotations

import argparse
from pathlib import Path


def load_average() -> list[float]:
    """The 1, 5 and 15-minute load averages (other work on the machine inflates wall times)."""
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return [-1.0, -1.0, -1.0]


def add_backend_arguments(ap: argparse.ArgumentParser) -> None:
    """--models, --serving and --grpc, as `lofi.model_server.one_shot_backend` takes them."""
    ap.add_argument("--models", default="models")
    ap.add_argument("--serving", default=None, help="HOST:PORT of a running server (default: embedded)")
    ap.add_argument(
        "--grpc",
        action="store_true",
        help="embedded: an in-process server over gRPC, not the store called directly",
    )
