"""`lofi eval` (TensorFlow is imported inside the command, not here)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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
    """Add the `eval` subcommand."""
    e = subparsers.add_parser("eval", help="evaluate the served ensemble against n-gram baselines")
    add_models_option(e)
    add_data_option(e, note="its test split is evaluated; ")
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
    e.set_defaults(func=run)


@reports_data_errors
def run(args: argparse.Namespace) -> int:
    """Evaluate the exported ensemble on held-out music."""
    from music.tokens import Representation
    from training.dataset import split_pieces
    from training.errors import NoDataError
    from training.evaluate import Member, format_table, full_report, savedmodel_predictor
    from training.export import member_dirs
    from training.retrain import load_pieces

    s = get_settings()
    members, manifest = [], None
    for d in member_dirs(models_dir(args, s), args.version):
        predict, m = savedmodel_predictor(d)
        members.append(Member(predict, m.window))
        manifest = manifest or m
    split_seed = int(manifest.config.get("split_seed", 0))
    pieces = load_pieces(data_paths(args, s), corpus_cache(s))
    splits = split_pieces(pieces, split_seed)
    if args.test:
        splits["test"] = load_pieces(args.test, corpus_cache(s))
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
    report["version"] = manifest.version
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(f"version {manifest.version} ({len(members)} members, combine {manifest.combine})")
        print(format_table(report))
    return 0
