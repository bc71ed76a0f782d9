"""Retraining: the first training publishes; a worse model or a failed run leaves the served one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from serving import contract
from tests.support.pieces import synthetic_pieces
from training import evaluate, export
from training import train as train_mod
from training.retrain import retrain


@pytest.fixture(scope="module")
def pieces():
    return synthetic_pieces(40, seed=5, max_len=40)


@pytest.fixture(scope="module")
def served(tmp_path_factory, pieces):
    d = tmp_path_factory.mktemp("served")
    result = retrain(d, pieces=pieces, preset="tiny", seed=0)
    return d, result


def _listing(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


def test_first_training_is_published_with_its_metrics(served):
    d, result = served
    assert result.promoted and result.new_version == 1 and result.old_metrics is None
    assert "first" in result.reason
    m = export.load_manifest(d / contract.model_name(0) / "1")
    assert m.members == 2 and m.combine == result.new_metrics["combine"]
    assert (
        m.config["split_seed"] == 0 and m.metrics["ensemble"]["nll"] == result.new_metrics["ensemble"]["nll"]
    )
    assert "best_ngram" in m.metrics


def test_worse_model_is_refused(served, pieces, tmp_path, monkeypatch):
    d = tmp_path / "models"
    shutil.copytree(served[0], d)
    before = _listing(d)
    real = evaluate.full_report

    def new_is_worse(*args, **kwargs):
        report = real(*args, **kwargs)
        if kwargs.get("rule") is None:  # the new ensemble (the served one's rule is given)
            report["ensemble"]["nll"] += 1.0
        return report

    monkeypatch.setattr(evaluate, "full_report", new_is_worse)
    result = retrain(d, pieces=pieces, preset="tiny", seed=1)
    assert not result.promoted and result.new_version is None
    assert ">" in result.reason and result.old_metrics is not None
    # Both were measured on the same held-out tokens.
    assert result.old_metrics["tokens"] == result.new_metrics["tokens"]
    assert _listing(d) == before


def test_not_worse_model_is_published_as_the_next_version(served, pieces, tmp_path, monkeypatch):
    d = tmp_path / "models"
    shutil.copytree(served[0], d)
    real = evaluate.full_report

    def new_is_better(*args, **kwargs):
        report = real(*args, **kwargs)
        if kwargs.get("rule") is None:
            report["ensemble"]["nll"] -= 1.0
        return report

    monkeypatch.setattr(evaluate, "full_report", new_is_better)
    result = retrain(d, pieces=pieces, extra_pieces=[pieces[0].ids], preset="tiny", seed=1)
    assert result.promoted and result.new_version == 2
    assert export.latest_version(d) == 2


def test_failed_training_leaves_the_served_models(served, pieces, tmp_path, monkeypatch):
    d = tmp_path / "models"
    shutil.copytree(served[0], d)
    before = _listing(d)

    def boom(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(train_mod, "train_member", boom)
    with pytest.raises(RuntimeError):
        retrain(d, pieces=pieces, preset="tiny", seed=2)
    assert _listing(d) == before
