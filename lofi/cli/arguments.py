"""What the commands that read the corpus or the models share: their `--models` and `--data` options, the
settings' folders those default to, and how a training or corpus error ends the command.

Nothing here imports TensorFlow (the error classes are imported when a command runs), so `lofi --help` stays
fast.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path

from lofi.settings import Settings

Handler = Callable[[argparse.Namespace], int]


def add_models_option(parser: argparse.ArgumentParser) -> None:
    """`--models FOLDER`, unset meaning the settings' models folder (resolved by `models_dir`)."""
    parser.add_argument(
        "--models", type=Path, default=None, help="models folder (default: settings.models_dir)"
    )


def add_data_option(parser: argparse.ArgumentParser, note: str = "") -> None:
    """`--data PATH` (repeatable), none meaning the settings' data folder (resolved by `data_paths`); `note`
    goes in the help before the default."""
    parser.add_argument(
        "--data",
        type=Path,
        action="append",
        help=f"corpus folder or zip (repeatable; {note}default: settings.data_dir)",
    )


def models_dir(args: argparse.Namespace, settings: Settings) -> Path:
    """The models folder `--models` names, else the settings'."""
    return args.models or settings.models_dir


def data_paths(args: argparse.Namespace, settings: Settings) -> list[Path]:
    """The corpus paths `--data` names, else the settings' data folder."""
    return args.data or [settings.data_dir]


def corpus_cache(settings: Settings) -> Path:
    """Where the parsed and tokenized corpus is cached (`training.corpus`)."""
    return settings.corpus_cache_dir


def reports_data_errors(handler: Handler) -> Handler:
    """`handler`, ending with `error: ...` on stderr and exit status 2 on a training or corpus error (a bad
    path, too little music, no models) instead of a traceback."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        from training.corpus import CorpusError
        from training.errors import TrainingError

        try:
            return handler(args)
        except (TrainingError, CorpusError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    return run
