"""Honest evaluation: members, the ensemble and n-gram baselines on the same held-out tokens.

Every number is per predicted token of `[BOS] + body` sequences of held-out pieces (the test split, by
piece name): NLL in nats, perplexity = exp(NLL), top-1 accuracy. The baselines are fitted on the same
training split. The ensemble's combination rule (mean or geometric mean of the members' probabilities,
and the member weights) is chosen on the validation split, never on the test split.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from music.tokens import TOKEN_CLASSES
from serving import contract
from training.dataset import Examples, Piece
from training.ngram import KneserNey, Unigram, sequence_nll, token_nlls

Predictor = Callable[[dict[str, np.ndarray]], np.ndarray]  # {tokens, cond, aux} -> probs [n, vocab]
EPS = 1e-12
CHUNK = 8192


@dataclass
class Member:
    """Something that predicts next-token probabilities from windows of a fixed length."""

    predict: Predictor
    window: int


def keras_predictor(model) -> Predictor:
    """A predictor from an in-process Keras model (batched `predict`)."""

    def predict(inputs: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(model.predict(inputs, batch_size=2048, verbose=0), dtype=np.float32)

    return predict


def savedmodel_predictor(path) -> tuple[Predictor, contract.Manifest]:
    """A predictor and the manifest of an exported member version directory."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    sig = loaded.signatures[contract.SIGNATURE]
    manifest = contract.Manifest.from_json(
        loaded.signatures[contract.MANIFEST_SIGNATURE](**{contract.MANIFEST_INPUT: tf.constant([0])})[
            contract.MANIFEST_OUTPUT
        ].numpy()
    )

    def predict(inputs: dict[str, np.ndarray]) -> np.ndarray:
        outs = []
        n = len(inputs[contract.INPUT_TOKENS])
        for s in range(0, n, 2048):
            r = sig(**{k: tf.constant(v[s : s + 2048], tf.int32) for k, v in inputs.items()})
            outs.append(r[contract.OUTPUT_PROBS].numpy())
        return np.concatenate(outs) if outs else np.zeros((0, len(manifest.vocab)), np.float32)

    predict.loaded = loaded  # keep the SavedModel alive
    return predict, manifest


def hash_key(name: str, seed: int) -> str:
    """A stable pseudo-random sort key of a piece name."""
    import hashlib

    return hashlib.sha256(f"eval:{seed}:{name}".encode()).hexdigest()


def member_probs(members: Sequence[Member], ex: Examples, lo: int, hi: int) -> np.ndarray:
    """Probabilities of every member for examples [lo, hi): [members, n, vocab]."""
    idx = np.arange(lo, hi)
    out = []
    for m in members:
        inputs, _ = ex.arrays(m.window, idx)
        out.append(m.predict(inputs))
    return np.stack(out)


def combine(probs: np.ndarray, rule: dict) -> np.ndarray:
    """The ensemble distribution [n, vocab] from member probabilities [members, n, vocab] by `rule`."""
    k = probs.shape[0]
    w = np.asarray(rule.get("weights") or [1.0 / k] * k, dtype=np.float64)
    w = w / w.sum()
    if rule["method"] == "mean":
        return np.tensordot(w, probs.astype(np.float64), axes=1)
    if rule["method"] == "geometric":
        logp = np.tensordot(w, np.log(np.maximum(probs.astype(np.float64), EPS)), axes=1)
        logp -= logp.max(axis=1, keepdims=True)
        p = np.exp(logp)
        return p / p.sum(axis=1, keepdims=True)
    raise ValueError(f"unknown combine method {rule['method']!r}")


def _stats(probs: np.ndarray, targets: np.ndarray) -> tuple[float, int]:
    """(sum of NLL, number correct at top-1) of [n, vocab] probabilities."""
    p = probs[np.arange(len(targets)), targets]
    return float(-np.log(np.maximum(p, EPS)).sum()), int((probs.argmax(axis=1) == targets).sum())


def summary(nll_sum: float, correct: int | None, n: int) -> dict:
    """NLL per token, perplexity and accuracy from sums."""
    nll = nll_sum / max(n, 1)
    out = {"nll": round(nll, 5), "perplexity": round(math.exp(nll), 4), "tokens": n}
    if correct is not None:
        out["accuracy"] = round(correct / max(n, 1), 5)
    return out


def mixture_weights(target_probs: np.ndarray, iters: int = 50) -> list[float]:
    """EM weights of a mixture (mean) of members, from their probabilities of the targets [members, n]."""
    k = target_probs.shape[0]
    w = np.full(k, 1.0 / k)
    p = np.maximum(target_probs.astype(np.float64), EPS)
    for _ in range(iters):
        r = w[:, None] * p
        r /= r.sum(axis=0, keepdims=True)
        w = r.mean(axis=1)
    return [round(float(x), 6) for x in w]


def choose_combine(members: Sequence[Member], val: Examples) -> tuple[dict, dict]:
    """The rule with the lowest validation NLL among mean/geometric x uniform/EM weights; (rule, val NLLs)."""
    k = len(members)
    if k == 1 or len(val) == 0:
        return {"method": "mean", "weights": [1.0] * k}, {}
    probs = member_probs(members, val, 0, len(val))
    targets = val.targets()
    em = mixture_weights(probs[:, np.arange(len(targets)), targets])
    uniform = [round(1.0 / k, 6)] * k
    scores = {}
    best = None
    for method in ("mean", "geometric"):
        for name, w in (("uniform", uniform), ("em", em)):
            rule = {"method": method, "weights": w}
            nll = _stats(combine(probs, rule), targets)[0] / len(targets)
            scores[f"{method}/{name}"] = round(nll, 5)
            if best is None or nll < best[0]:
                best = (nll, rule)
    return best[1], scores


def evaluate_members(members: Sequence[Member], ex: Examples, rule: dict) -> dict:
    """Metrics of each member and of the ensemble combined by `rule` on every example of `ex`, overall and
    by token class (pitch, duration, onset, chord, ...: most tokens are easy structure, so the overall
    figure can improve while the melody does not)."""
    k = len(members)
    kinds = ex.kinds()
    nll = np.zeros((k + 1, len(ex)))
    correct = np.zeros(k + 1, dtype=np.int64)
    for lo in range(0, len(ex), CHUNK):
        hi = min(lo + CHUNK, len(ex))
        probs = member_probs(members, ex, lo, hi)
        targets = ex.targets(np.arange(lo, hi))
        for i, p in enumerate([*probs, combine(probs, rule)]):
            nll[i, lo:hi] = -np.log(np.maximum(p[np.arange(hi - lo), targets], EPS))
            correct[i] += int((p.argmax(axis=1) == targets).sum())
    n = len(ex)
    out = {
        "members": [summary(nll[i].sum(), int(correct[i]), n) for i in range(k)],
        "ensemble": summary(nll[k].sum(), int(correct[k]), n),
    }
    out["ensemble"]["by_class"] = by_class(nll[k], kinds)
    for i in range(k):
        out["members"][i]["by_class"] = by_class(nll[i], kinds)
    return out


def by_class(nll: np.ndarray, kinds: np.ndarray) -> dict:
    """Mean NLL and token count for each token class present."""
    out = {}
    for c, name in enumerate(TOKEN_CLASSES):
        sel = kinds == c
        if sel.any():
            out[name] = {"nll": round(float(nll[sel].mean()), 5), "tokens": int(sel.sum())}
    return out


def baselines(
    train: Sequence[Piece],
    val: Sequence[Piece],
    test: Sequence[Piece],
    vocab_size: int,
    orders: Sequence[int] = (2, 3, 4, 5),
) -> dict:
    """Unigram and Kneser-Ney n-grams fitted on `train`; the best order is picked on `val`."""
    tr, va = (Examples(ps, 1).sequences() for ps in (train, val))
    test_ex = Examples(test, 1)
    te, kinds = test_ex.sequences(), test_ex.kinds()
    out = {"unigram": summary(*_nll(Unigram(vocab_size).fit(tr), te))}
    ngrams = {}
    best = None
    for n in orders:
        model = KneserNey(n, vocab_size).fit(tr)
        v = _nll(model, va)
        t = summary(*_nll(model, te))
        t["val_nll"] = round(v[0] / max(v[2], 1), 5)
        ngrams[str(n)] = (t, model)
        if best is None or t["val_nll"] < ngrams[best][0]["val_nll"]:
            best = str(n)
    best_model = ngrams[best][1]
    out["ngram"] = {n: t for n, (t, _) in ngrams.items()}
    out["best_ngram"] = {"order": int(best), **out["ngram"][best]}
    out["best_ngram"]["by_class"] = by_class(token_nlls(best_model, te), kinds)
    return out


def _nll(model, seqs) -> tuple[float, None, int]:
    total, n = sequence_nll(model, seqs)
    return total, None, n


def full_report(
    members: Sequence[Member],
    splits: dict[str, list[Piece]],
    vocab_size: int,
    rule: dict | None = None,
    max_examples: int | None = None,
    seed: int = 0,
    with_baselines: bool = True,
    val_examples: int | None = 20_000,
) -> dict:
    """Choose the rule on validation (unless given), evaluate members, ensemble and baselines on test."""
    max_window = max(m.window for m in members)
    scores = {}
    if rule is None:
        val_pieces = _subset(splits["val"], val_examples, seed)
        rule, scores = choose_combine(members, Examples(val_pieces, max_window))
    test = _subset(splits["test"], max_examples, seed)
    ex = Examples(test, max_window)
    report = {"combine": rule, "combine_val_nll": scores, "test_pieces": len(test), "tokens": len(ex)}
    report.update(evaluate_members(members, ex, rule))
    if with_baselines:
        report["baselines"] = baselines(
            splits["train"], _subset(splits["val"], val_examples, seed), test, vocab_size
        )
        best = report["baselines"]["best_ngram"]["perplexity"]
        report["ratios"] = {
            "ensemble_vs_best_ngram": round(report["ensemble"]["perplexity"] / best, 4),
            "ensemble_vs_unigram": round(
                report["ensemble"]["perplexity"] / report["baselines"]["unigram"]["perplexity"], 4
            ),
            "ensemble_vs_best_member": round(
                report["ensemble"]["perplexity"] / min(m["perplexity"] for m in report["members"]), 4
            ),
        }
        ens, ngram = report["ensemble"]["by_class"], report["baselines"]["best_ngram"]["by_class"]
        report["ratios"]["pitch_nll_vs_best_ngram"] = (
            round(ens["pitch"]["nll"] / ngram["pitch"]["nll"], 4)
            if "pitch" in ens and "pitch" in ngram
            else None
        )
    return report


def _subset(pieces: Sequence[Piece], max_examples: int | None, seed: int) -> list[Piece]:
    if max_examples is None:
        return list(pieces)
    out, n = [], 0
    for p in sorted(pieces, key=lambda p: hash_key(p.name, seed)):
        if n >= max_examples:
            break
        out.append(p)
        n += len(p.ids) - 5
    return out


def format_table(report: dict) -> str:
    """A plain-text table of a report."""
    rows = [("model", "nll", "perplexity", "accuracy")]
    for i, m in enumerate(report["members"]):
        rows.append((f"member {i}", m["nll"], m["perplexity"], m.get("accuracy", "")))
    e = report["ensemble"]
    rows.append((f"ensemble ({report['combine']['method']})", e["nll"], e["perplexity"], e["accuracy"]))
    if "baselines" in report:
        b = report["baselines"]
        rows.append(("unigram", b["unigram"]["nll"], b["unigram"]["perplexity"], ""))
        for n, m in b["ngram"].items():
            rows.append((f"{n}-gram KN", m["nll"], m["perplexity"], ""))
    lines = [f"{r[0]:<22} {r[1]!s:>9} {r[2]!s:>11} {r[3]!s:>9}" for r in rows]
    lines.append(f"held-out: {report['test_pieces']} pieces, {report['tokens']} tokens")
    classes = report["ensemble"].get("by_class", {})
    if classes:
        ngram = report.get("baselines", {}).get("best_ngram", {}).get("by_class", {})
        lines.append("NLL by token class (ensemble / best n-gram):")
        for name, c in classes.items():
            other = ngram.get(name, {}).get("nll", "")
            lines.append(f"  {name:<10} {c['nll']!s:>9} {other!s:>9}   ({c['tokens']} tokens)")
    if "ratios" in report:
        lines.append("ratios: " + ", ".join(f"{k} {v}" for k, v in report["ratios"].items()))
    return "\n".join(lines)
