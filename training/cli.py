"""`lofi train` and `lofi eval` (TensorFlow is imported inside the commands, not here)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers) -> None:
    """Add the `train` and `eval` subcommands."""
    t = subparsers.add_parser("train", help="train the ensemble and export it for TF Serving")
    t.add_argument(
        "--data",
        type=Path,
        action="append",
        help="corpus folder or zip (repeatable; default: settings.data_dir)",
    )
    t.add_argument("--preset", choices=("tiny", "quick", "full"), default="quick")
    t.add_argument("--members", type=int, default=None, help="number of members (default: the preset's)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--models", type=Path, default=None, help="models folder (default: settings.models_dir)")
    t.add_argument("--epochs", type=int, default=None, help="maximum epochs (default: the preset's)")
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
    t.set_defaults(func=cmd_train)

    e = subparsers.add_parser("eval", help="evaluate the served ensemble against n-gram baselines")
    e.add_argument("--models", type=Path, default=None, help="models folder (default: settings.models_dir)")
    e.add_argument(
        "--data",
        type=Path,
        action="append",
        help="corpus folder or zip (repeatable; its test split is evaluated; default: settings.data_dir)",
    )
    e.add_argument("--version", type=int, default=None, help="model version (default: the latest)")
    e.add_argument(
        "--max-tokens",
        type=int,
        default=None,
        help="evaluate on a fixed subset of whole test pieces of about this many tokens",
    )
    e.add_argument("--json", action="store_true", help="print the report as JSON")
    e.set_defaults(func=cmd_eval)


def _settings():
    from lofi.settings import get_settings

    return get_settings()


def cmd_train(args: argparse.Namespace) -> int:
    """Train (and export) a new ensemble version."""
    from training.corpus import CorpusError
    from training.errors import TrainingError
    from training.retrain import retrain

    s = _settings()
    models = args.models or s.models_dir
    data = args.data or [s.data_dir]

    try:
        r = retrain(
            models,
            data,
            preset=args.preset,
            epochs=args.epochs,
            seed=args.seed,
            members=args.members,
            only_if_better=args.promote_if_better,
            config_base=args.config_base,
            cache_dir=Path(s.cache_dir) / "corpus",
        )
    except (TrainingError, CorpusError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
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


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate the exported ensemble on held-out music."""
    from music.tokens import Representation
    from training.corpus import CorpusError
    from training.dataset import split_pieces
    from training.errors import NoDataError, TrainingError
    from training.evaluate import Member, format_table, full_report, savedmodel_predictor
    from training.export import member_dirs
    from training.retrain import load_pieces

    s = _settings()
    models = args.models or s.models_dir
    try:
        dirs = member_dirs(models, args.version)
        members, manifest = [], None
        for d in dirs:
            predict, m = savedmodel_predictor(d)
            members.append(Member(predict, m.window))
            manifest = manifest or m
        split_seed = int(manifest.config.get("split_seed", 0))
        pieces = load_pieces(args.data or [s.data_dir], Path(s.cache_dir) / "corpus")
        splits = split_pieces(pieces, split_seed)
        if not splits["test"] or not splits["train"]:
            raise NoDataError(f"no held-out test pieces among the {len(pieces)} pieces of the data")
        report = full_report(
            members,
            splits,
            len(Representation().vocab),
            rule=manifest.combine,
            max_examples=args.max_tokens,
            seed=split_seed,
        )
    except (TrainingError, CorpusError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report["version"] = manifest.version
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(f"version {manifest.version} ({len(members)} members, combine {manifest.combine})")
        print(format_table(report))
    return 0
