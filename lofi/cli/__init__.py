"""`lofi`: one console script, one module per command under `lofi.cli`.

Each command module has `register(subparsers)`, which adds its subcommand with `set_defaults(func=run)`, and
`run(args) -> int`, the command from parsed arguments (its exit status). TensorFlow is imported inside the
commands only, so `lofi --help` stays fast."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from lofi.logsafe import setup_logging
from lofi.malloc import keep_freed_memory

# TensorFlow's start-up noise (and oneDNN, which made batch-1 calls slower here); set before TF is imported.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The command modules, in `lofi --help` order; each exposes `register(subparsers)` and `run(args)`.
COMMAND_MODULES = (
    "lofi.cli.corpus",
    "lofi.cli.train",
    "lofi.cli.evaluate",
    "lofi.cli.serve",
    "lofi.cli.generate",
    "lofi.cli.render",
    "lofi.cli.bot",
    "lofi.cli.worker",
    "lofi.cli.run",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every package's subcommands."""
    parser = argparse.ArgumentParser(prog="lofi", description="LoFi music generator and Discord bot")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `lofi` console script."""
    keep_freed_memory()  # rendering reuses its large arrays instead of page-faulting them in again
    args = build_parser().parse_args(argv)
    # Every record is redacted (discord.py logs interaction tokens at DEBUG): see lofi.logsafe.
    setup_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
