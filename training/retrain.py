"""Train a new version of every member and publish it only if it is not worse than the served one.

Old and new are evaluated on the same held-out pieces: the test split is a function of each piece's name
and the split seed recorded in the served manifests. Training and evaluation happen in memory; the new
version becomes visible only through the export's final atomic renames, so a failed or interrupted run
leaves the served models untouched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from serving import contract
from training.dataset import Piece, as_pieces, split_pieces
from training.errors import NoDataError, ServedModelError

log = logging.getLogger(__name__)


@dataclass
class RetrainResult:
    """What a retraining did, and why."""

    promoted: bool
    reason: str
    old_metrics: dict | None
    new_metrics: dict
    new_version: int | None
    seconds: float = 0.0
    old_version: int | None = None
    details: dict = field(default_factory=dict)


class Served(NamedTuple):
    """The served ensemble as `served_members` finds it: (None, [], None) when nothing is served."""

    version: int | None
    members: list  # training.evaluate.Member, one per served model
    manifest: contract.Manifest | None  # member 0's: the split seed, the vocabulary, the combination rule


def load_pieces(
    data_paths: Sequence[Path | str], cache_dir: Path | None = None, progress: bool = False
) -> list[Piece]:
    """The corpus in `data_paths` as pieces (tokenized via `training.corpus`, cached)."""
    from training.corpus import load_corpus

    result = load_corpus([Path(p) for p in data_paths], cache_dir=cache_dir, progress=progress)
    log.info(
        "corpus: %d pieces, %d skipped, %d files (%d from cache) in %.1fs",
        len(result.pieces),
        len(result.skipped),
        result.files_read,
        result.from_cache,
        result.seconds,
    )
    return as_pieces(result.pieces)


def served_members(models_dir: Path) -> Served:
    """The served ensemble's newest version, its members and member 0's manifest; all None/empty if none."""
    from training.evaluate import Member, savedmodel_predictor
    from training.export import latest_version, member_dirs

    version = latest_version(models_dir) if Path(models_dir).is_dir() else None
    if version is None:
        return Served(None, [], None)
    members, first = [], None
    for d in member_dirs(models_dir, version):
        predict, manifest = savedmodel_predictor(d)
        members.append(Member(predict, manifest.window))
        first = first or manifest
    return Served(version, members, first)


def retrain(
    models_dir: Path,
    data_paths: Sequence[Path | str] = (),
    extra_pieces: Sequence | None = None,
    exclude: Sequence[str] | None = None,
    preset: str = "quick",
    epochs: int | None = None,
    seed: int = 0,
    progress: Callable[[dict], None] | None = None,
    *,
    members: int | None = None,
    only_if_better: bool = True,
    pieces: Sequence | None = None,
    config_base: str | None = None,
    cache_dir: Path | None = None,
    time_budget_s: float | None = None,
) -> RetrainResult:
    """Train a new ensemble version and promote it if its test NLL is not worse than the served one's.

    Args:
        models_dir: the served models folder.
        data_paths: corpus folders/zips (ignored when `pieces` is given).
        extra_pieces: extra token-id sequences (e.g. liked tracks), used for training only.
        exclude: piece names to leave out (e.g. disliked or withdrawn music).
        preset: training preset name.
        epochs: maximum epochs (default: the preset's).
        seed: training seed; the split seed is the served version's, so the test split stays the same.
        progress: called with dicts ({"event": ...}) as training and evaluation go.
        members: number of members (default: the preset's).
        only_if_better: False publishes the new version whatever its score.
        pieces: already tokenized pieces (instead of reading `data_paths`).
        config_base: base path prefix for models.config.
        cache_dir: corpus token cache.
        time_budget_s: training time for all members together (default: the preset's).
    Returns:
        Whether the new version was published, why, the metrics of both and the new version number.
    """
    from training.train import get_preset, train_ensemble

    t0 = time.perf_counter()
    notify = progress or (lambda info: None)
    models_dir = Path(models_dir)
    p = get_preset(preset, time_budget_s=time_budget_s)
    corpus = _corpus(data_paths, pieces, exclude, cache_dir)
    extra = as_pieces(extra_pieces or [])
    served = _load_served(models_dir, only_if_better)
    split_seed = int(served.manifest.config.get("split_seed", seed)) if served.manifest else seed
    splits = _splits(corpus, split_seed)
    old_metrics, old_problem = _evaluate_served(served, splits, p, split_seed, only_if_better, notify)
    notify({"event": "train_start", "preset": p.name})
    ens = train_ensemble(corpus, p, members, seed, epochs, progress, extra_train=extra, split_seed=split_seed)
    notify({"event": "evaluate_new"})
    new_metrics = _evaluate_new(ens, p, split_seed)
    promote, reason = _verdict(served.version, only_if_better, old_problem, old_metrics, new_metrics)
    version = _publish(ens, p, split_seed, new_metrics, models_dir, config_base) if promote else None
    log.info("%s: %s", "published" if promote else "kept the served version", reason)
    result = RetrainResult(
        promote, reason, old_metrics, new_metrics, version, time.perf_counter() - t0, served.version
    )
    notify({"event": "done", "promoted": promote, "reason": reason, "version": version})
    return result


def _corpus(
    data_paths: Sequence[Path | str],
    pieces: Sequence | None,
    exclude: Sequence[str] | None,
    cache_dir: Path | None,
) -> list[Piece]:
    """The pieces to split and train on: `pieces` if given, else those read from `data_paths`, less `exclude`."""
    corpus = as_pieces(pieces) if pieces is not None else load_pieces(data_paths, cache_dir)
    if exclude:
        drop = set(exclude)
        corpus = [x for x in corpus if x.name not in drop]
    return corpus


def _load_served(models_dir: Path, only_if_better: bool) -> Served:
    """The served ensemble; one that cannot be loaded counts as none unless the new one must beat it."""
    try:
        return served_members(models_dir)
    except Exception as exc:  # a broken served version must not block training a working one
        log.exception("could not load the served models in %s", models_dir)
        if only_if_better:
            raise ServedModelError(f"the served models in {models_dir} cannot be loaded ({exc})") from exc
        return Served(None, [], None)


def _splits(corpus: list[Piece], split_seed: int) -> dict[str, list[Piece]]:
    """The train/val/test split by `split_seed`; NoDataError if it leaves nothing to compare on."""
    splits = split_pieces(corpus, split_seed)
    if not splits["test"]:
        raise NoDataError(f"no test pieces among {len(corpus)} pieces")
    return splits


def _evaluate_served(
    served: Served,
    splits: dict[str, list[Piece]],
    preset,
    split_seed: int,
    only_if_better: bool,
    notify: Callable[[dict], None],
) -> tuple[dict | None, str | None]:
    """(metrics, None) of the served ensemble on the test split, or (None, why it could not be measured).

    Nothing is measured when nothing is served or no comparison is wanted. The served version keeps its
    own combination rule: it is judged as it serves.
    """
    from music.tokens import Representation
    from training.evaluate import full_report

    if not (served.members and only_if_better):
        return None, None
    rep = Representation()
    if served.manifest.vocab != rep.vocab.tokens:
        return None, f"served version {served.version} uses another vocabulary"
    notify({"event": "evaluate_old", "version": served.version})
    try:
        metrics = full_report(
            served.members,
            splits,
            len(rep.vocab),
            rule=served.manifest.combine,
            max_examples=preset.eval_examples,
            seed=split_seed,
            with_baselines=False,
        )
    except Exception as exc:  # a served model we cannot run must not block a working new one
        log.exception("could not evaluate served version %d", served.version)
        return None, f"served version {served.version} could not be evaluated ({exc})"
    log.info("served version %d: test NLL %.4f", served.version, metrics["ensemble"]["nll"])
    return metrics, None


def _evaluate_new(ens, preset, split_seed: int) -> dict:
    """The new ensemble's report (rule chosen on validation, baselines included) on the same test split."""
    from music.tokens import Representation
    from training.evaluate import Member, full_report, keras_predictor

    new_members = [Member(keras_predictor(m.model), m.config.window) for m in ens.members]
    metrics = full_report(
        new_members,
        ens.splits,
        len(Representation().vocab),
        max_examples=preset.eval_examples,
        seed=split_seed,
        val_examples=preset.val_examples,
    )
    metrics["train_seconds"] = round(ens.seconds, 1)
    metrics["pieces"] = {k: len(v) for k, v in ens.splits.items()}
    return metrics


def _verdict(
    old_version: int | None,
    only_if_better: bool,
    old_problem: str | None,
    old_metrics: dict | None,
    new_metrics: dict,
) -> tuple[bool, str]:
    """(publish?, why): the new version is published unless the served one measured strictly better."""
    if old_version is None:
        return True, "no served model: the first training is always published"
    if not only_if_better:
        return True, "published without comparison (only_if_better=False)"
    if old_problem or old_metrics is None:
        return True, f"{old_problem}: the new version replaces it"
    old_nll, new_nll = old_metrics["ensemble"]["nll"], new_metrics["ensemble"]["nll"]
    promote = new_nll <= old_nll
    reason = (
        f"new ensemble test NLL {new_nll:.4f} {'<=' if promote else '>'} served version "
        f"{old_version}'s {old_nll:.4f} on the same {new_metrics['tokens']} held-out tokens"
    )
    return promote, reason


def _publish(
    ens, preset, split_seed: int, new_metrics: dict, models_dir: Path, config_base: str | None
) -> int:
    """Export the new ensemble as the next version (atomically); its version number."""
    from training.export import export_ensemble

    configs = [
        {
            "preset": preset.name,
            "seed": m.seed,
            "split_seed": split_seed,
            "member_config": m.config.to_dict(),
            "best_val_loss": round(m.best_val_loss, 5),
            "epochs_run": len(m.history),
            "stopped": m.stopped,
            "train_seconds": round(m.seconds, 1),
        }
        for m in ens.members
    ]
    return export_ensemble(
        [m.model for m in ens.members],
        models_dir,
        combine=new_metrics["combine"],
        configs=configs,
        metrics=_compact(new_metrics),
        config_base=config_base,
    )


def _compact(report: dict) -> dict:
    """The metrics worth keeping in a manifest."""
    out = {
        k: report[k]
        for k in (
            "members",
            "ensemble",
            "tokens",
            "test_pieces",
            "ratios",
            "train_seconds",
            "pieces",
            "combine_val_nll",
        )
        if k in report
    }
    if "baselines" in report:
        out["unigram"] = report["baselines"]["unigram"]
        out["best_ngram"] = report["baselines"]["best_ngram"]
    return out
