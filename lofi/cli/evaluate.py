"""`lofi eval` (TensorFlow is imported inside the command, not here)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lofi.settings import get_settings


def register(subparsers) -> None:
    """Add the `eval` subcommand."""
    e = subparsers.add_parser("eval", help="evaluate the served ensemble against n-gram baselines")
    e.add_argument("--models", type=Path, default=None, help="models folder (default: settings.models_dir)")
    e.add_argument(
        "--data",
        type=Path,
        action="append",
        help="corpus folder or zip (repeatable; its test split is evaluated; default: settings.data_dir)",
    )
    e.add_argument(
        "--test",
        type=Path,
        action="append",
        help="a folder or zip whose every piece is a test piece (repeatable); the baselines are still "
        "fitted on the corpus's training split",
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


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate the exported ensemble on held-out music."""
    from music.tokens import Representation
    from training.corpus import CorpusError
    from training.dataset import split_pieces
    from training.errors import NoDataError, TrainingError
    from training.evaluate import Member, format_table, full_report, savedmodel_predictor
    from training.export import member_dirs
    from training.retrain import load_pieces

    s = get_settings()
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
        if args.test:
            splits["test"] = load_pieces(args.test, Path(s.cache_dir) / "corpus")
            seen = {tuple(p.ids) for p in splits["train"]}
            leaked = sum(tuple(p.ids) in seen for p in splits["test"])
            if leaked:
                print(f"warning: {leaked} test pieces are also in the training split", file=sys.stderr)
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
