"""`lofi train` (TensorFlow is imported inside the command, not here)."""

from __future__ import annotations

import argparse
import json

from lofi.cli.arguments import (
    add_data_option,
    add_models_option,
    corpus_cache,
    data_paths,
    models_dir,
    reports_data_errors,
)
from lofi.settings import get_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `train` subcommand."""
    t = subparsers.add_parser("train", help="train the ensemble and export it for TF Serving")
    add_data_option(t)
    t.add_argument("--preset", choices=("tiny", "quick", "full"), default="quick")
    t.add_argument("--members", type=int, default=None, help="number of members (default: the preset's)")
    t.add_argument("--seed", type=int, default=0)
    add_models_option(t)
    t.add_argument("--epochs", type=int, default=None, help="maximum epochs (default: the preset's)")
    t.add_argument(
        "--time-budget",
        type=_minutes,
        default=None,
        metavar="MINUTES",
        help="training time for all members together (default: the preset's; full: 40)",
    )
    t.add_argument(
        "--promote-if-better",
        action="store_true",
        help="publish only if the new ensemble's test NLL is not worse than the served one's",
    )
    t.add_argument(
        "--config-base",
        default=None,
        help="base path written in models.config (e.g. /models in a container; default: absolute)",
    )
    t.add_argument("--json", action="store_true", help="print the result as JSON")
    t.set_defaults(func=run)


def _minutes(text: str) -> float:
    """A positive number of minutes, as seconds (argparse type)."""
    try:
        minutes = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of minutes") from None
    if not 0 < minutes <= 7 * 24 * 60:
        raise argparse.ArgumentTypeError("the time budget must be more than 0 and at most a week of minutes")
    return minutes * 60.0


@reports_data_errors
def run(args: argparse.Namespace) -> int:
    """Train (and export) a new ensemble version."""
    from training.retrain import retrain

    s = get_settings()
    r = retrain(
        models_dir(args, s),
        data_paths(args, s),
        preset=args.preset,
        epochs=args.epochs,
        seed=args.seed,
        members=args.members,
        only_if_better=args.promote_if_better,
        config_base=args.config_base,
        cache_dir=corpus_cache(s),
        time_budget_s=args.time_budget,
    )
    if args.json:
        print(
            json.dumps(
                {
                    "promoted": r.promoted,
                    "reason": r.reason,
                    "version": r.new_version,
                    "seconds": round(r.seconds, 1),
                    "new": r.new_metrics,
                    "old": r.old_metrics,
                },
                indent=1,
            )
        )
    else:
        from training.evaluate import format_table

        print(format_table(r.new_metrics))
        print(
            f"{'published version ' + str(r.new_version) if r.promoted else 'not published'}: {r.reason} "
            f"({r.seconds:.0f}s)"
        )
    return 0
