"""Baselines, the combination rule and the evaluation report."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.evaluate import Member, choose_combine, combine, full_report, mixture_weights
from training.ngram import KneserNey, Unigram, sequence_nll

TOY = [[1, 3, 5, 6, 5, 6, 5, 6, 2], [1, 3, 5, 6, 7, 5, 6, 2], [1, 3, 7, 7, 2]]


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
def test_kneser_ney_distributions_sum_to_one(order):
    model = KneserNey(order, vocab_size=9).fit(TOY)
    for context in ([], [1], [1, 3, 5], [8, 8, 8, 8], [5, 6, 5, 6]):
        dist = model.distribution(context)
        assert dist.sum() == pytest.approx(1.0, abs=1e-9)
        assert (dist > 0).all()
        assert model.prob(context, 5) == pytest.approx(dist[5])


def test_kneser_ney_learns_the_toy_sequence_better_than_unigram():
    uni = sequence_nll(Unigram(9).fit(TOY), TOY)
    tri = sequence_nll(KneserNey(3, 9).fit(TOY), TOY)
    assert tri[1] == uni[1] == sum(len(s) - 1 for s in TOY)
    assert tri[0] < uni[0]
    tri_model = KneserNey(3, 9).fit(TOY)
    assert tri_model.prob([3, 5], 6) > tri_model.prob([3, 5], 7) > tri_model.prob([3, 5], 8)


def test_unigram_is_a_distribution():
    assert Unigram(9).fit(TOY).distribution().sum() == pytest.approx(1.0)


def test_combination_rules_give_distributions():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(7), size=(3, 5))
    for method in ("mean", "geometric"):
        out = combine(probs, {"method": method, "weights": [0.5, 0.3, 0.2]})
        np.testing.assert_allclose(out.sum(axis=1), 1.0)
    with pytest.raises(ValueError):
        combine(probs, {"method": "max", "weights": None})


def test_mixture_weights_favour_the_better_member():
    good, bad = np.full(100, 0.9), np.full(100, 0.1)
    w = mixture_weights(np.stack([bad, good]))
    assert w[1] > 0.9 and math.isclose(sum(w), 1.0, abs_tol=1e-5)


def _fake_member(window, sharp, vocab=9, seed=0):
    """A member that knows the toy grammar to a degree (`sharp`) via a bigram table."""
    table = KneserNey(2, vocab).fit(TOY)
    rng = np.random.default_rng(seed)

    def predict(inputs):
        out = np.stack([table.distribution([t[-1]]) for t in inputs["tokens"]]) ** sharp
        out *= rng.uniform(0.8, 1.2, out.shape)
        return (out / out.sum(axis=1, keepdims=True)).astype(np.float32)

    return Member(predict, window)


def test_report_has_members_ensemble_and_baselines():
    from training.dataset import Examples, Piece

    def piece(i, body):
        return Piece(f"p{i}", [1, 4, 6, 23, 30] + body)

    splits = {
        "train": [piece(i, s[1:]) for i, s in enumerate(TOY * 3)],
        "val": [piece(10, TOY[0][1:]), piece(11, TOY[2][1:])],
        "test": [piece(12, TOY[1][1:])],
    }
    members = [_fake_member(4, 1.0, seed=1), _fake_member(6, 0.5, seed=2)]
    rule, scores = choose_combine(members, Examples(splits["val"], 6))
    assert rule["method"] in ("mean", "geometric") and len(rule["weights"]) == 2 and scores
    report = full_report(members, splits, vocab_size=9)
    assert report["tokens"] == len(TOY[1]) - 1
    assert len(report["members"]) == 2 and {"nll", "perplexity", "accuracy"} <= set(report["ensemble"])
    assert report["baselines"]["best_ngram"]["order"] in (2, 3, 4, 5)
    assert report["ensemble"]["perplexity"] == pytest.approx(math.exp(report["ensemble"]["nll"]), rel=1e-3)
    assert "ensemble_vs_best_ngram" in report["ratios"]
