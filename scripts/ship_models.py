"""Ship a trained ensemble: copy one exported version into models/ as version 1, with its provenance.

    python scripts/ship_models.py EXPORT_DIR --eval EVAL.json --command "lofi train --preset full ..." \
        --commit SHA [--train TRAIN.json]

EXPORT_DIR is what `lofi train --models EXPORT_DIR` wrote; EVAL.json is `lofi eval --models EXPORT_DIR
--json` on the test split. A fresh clone then serves these models at once (`make run` trains only when
models/ is empty), and `lofi train` / `/lofi-retrain` publish later versions beside them.
tests/training/test_shipped_models.py fails when the code moves away from what they were trained for.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from music.tokens import REPR_VERSION  # noqa: E402
from serving import contract  # noqa: E402
from training.export import mark_published  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("export", type=Path)
    p.add_argument("--eval", type=Path, required=True, help="`lofi eval --json` output on the test split")
    p.add_argument("--train", type=Path, help="`lofi train --json` output (training time, epochs)")
    p.add_argument("--command", required=True, help="the command that trained the models")
    p.add_argument("--commit", required=True, help="the commit the models were trained at")
    p.add_argument("--dest", type=Path, default=ROOT / "models")
    args = p.parse_args()

    manifests = sorted(args.export.glob(f"{contract.MODEL_PREFIX}_*/*/{contract.MANIFEST_FILE}"))
    if not manifests:
        print(f"no exported members under {args.export}", file=sys.stderr)
        return 2
    version = max(int(m.parents[1].name) for m in manifests)
    first = contract.Manifest.from_json(
        (args.export / contract.model_name(0) / str(version) / contract.MANIFEST_FILE).read_text()
    )
    report = json.loads(args.eval.read_text())
    train = json.loads(args.train.read_text()) if args.train else {}
    args.dest.mkdir(parents=True, exist_ok=True)
    for i in range(first.members):
        src = args.export / contract.model_name(i) / str(version)
        dst = args.dest / contract.model_name(i) / "1"
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(src, dst)
        m = contract.Manifest.from_json((dst / contract.MANIFEST_FILE).read_text())
        m.version = 1
        # The manifest signature inside the SavedModel keeps the trained version number; the file beside
        # it is what a reader of the folder sees, so it says where the version came from.
        (dst / contract.MANIFEST_FILE).write_text(m.to_json())
    prov = {
        "version": 1,
        "members": first.members,
        "representation": REPR_VERSION,
        "command": args.command,
        "commit": args.commit,
        "trained_at": first.trained_at,
        "shipped_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "data": "data/corpus: POP909 + OpenEWLD lead sheets (see data/corpus/*/LICENSE, PROVENANCE); "
        "split 80/10/10 by piece-name hash, seed 0",
        "machine": "2 CPU cores, shared with other work",
        "combine": first.combine,
        "member_configs": [
            contract.Manifest.from_json(
                (args.dest / contract.model_name(i) / "1" / contract.MANIFEST_FILE).read_text()
            ).config
            for i in range(first.members)
        ],
        "train_seconds": train.get("seconds"),
        "test": {
            "pieces": report.get("test_pieces"),
            "tokens": report.get("tokens"),
            "members": report["members"],
            "ensemble": report["ensemble"],
            "best_ngram": report["baselines"]["best_ngram"],
            "unigram": report["baselines"]["unigram"],
            "ratios": report.get("ratios"),
        },
    }
    (args.dest / "PROVENANCE.json").write_text(json.dumps(prov, indent=1) + "\n")
    mark_published(args.dest, 1, first.members)  # one complete set, like every version `lofi train` publishes
    print(f"shipped version {version} of {args.export} as {args.dest}/*/1 ({first.members} members)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
