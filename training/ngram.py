"""Baselines: a unigram model and an interpolated Kneser-Ney n-gram over the same `[BOS] + body` tokens.

Both predict token t of a sequence from the tokens before it (the n-gram's context is left-padded with
PAD, as the networks' windows are), and both give every vocabulary id a non-zero probability.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

PAD_ID = 0


class Unigram:
    """Add-one smoothed token frequencies of the training targets."""

    def __init__(self, vocab_size: int):
        self.vocab_size = vocab_size
        self.counts = np.ones(vocab_size, dtype=np.float64)

    def fit(self, sequences: Sequence[Sequence[int]]) -> Unigram:
        """Count the targets (every token after the first) of `sequences`."""
        for s in sequences:
            np.add.at(self.counts, np.asarray(s[1:], dtype=np.int64), 1)
        return self

    def distribution(self, context: Sequence[int] = ()) -> np.ndarray:
        """P(next token) (the context is ignored)."""
        return self.counts / self.counts.sum()

    def logprob(self, context: Sequence[int], token: int) -> float:
        """Natural log of P(token)."""
        return math.log(self.counts[token] / self.counts.sum())


class KneserNey:
    """Interpolated modified Kneser-Ney n-gram (Chen & Goodman), backing off to uniform.

    P(w|h) = max(c(h,w) - D(c), 0) / c(h) + gamma(h) * P(w|h'), with discounts D1, D2, D3+ per order
    estimated from the counts of counts, gamma(h) = (D1 N1(h) + D2 N2(h) + D3 N3+(h)) / c(h), c the raw
    count at the highest order and the continuation count N1+(. h w) at lower orders; an unseen context
    uses P(w|h').
    """

    def __init__(self, order: int, vocab_size: int):
        if order < 1:
            raise ValueError("order must be >= 1")
        self.order = order
        self.vocab_size = vocab_size
        # counts[k][context tuple of length k][w] for k = 0 .. order-1
        self.counts: list[dict[tuple, dict[int, float]]] = [defaultdict(dict) for _ in range(order)]
        self.totals: list[dict[tuple, float]] = []
        self.types: list[dict[tuple, int]] = []
        self.discounts: list[float] = []

    def _grams(self, seq: Sequence[int]):
        padded = [PAD_ID] * (self.order - 1) + [int(t) for t in seq]
        for i in range(self.order - 1 + 1, len(padded)):
            yield tuple(padded[i - self.order + 1 : i]), padded[i]

    def fit(self, sequences: Sequence[Sequence[int]]) -> KneserNey:
        """Count the n-grams of `sequences` (each `[BOS] + body`; the first token is never a target)."""
        top = self.order - 1
        full: dict[tuple, dict[int, float]] = defaultdict(dict)
        for s in sequences:
            for h, w in self._grams(s):
                d = full[h]
                d[w] = d.get(w, 0) + 1
        self.counts[top] = full
        # Continuation counts for the lower orders: N1+(. h' w) = number of distinct left extensions.
        for k in range(top - 1, -1, -1):
            lower: dict[tuple, dict[int, float]] = defaultdict(dict)
            for h, ws in self.counts[k + 1].items():
                hk = h[1:]
                d = lower[hk]
                for w in ws:
                    d[w] = d.get(w, 0) + 1
            self.counts[k] = lower
        self.totals = [{h: float(sum(ws.values())) for h, ws in c.items()} for c in self.counts]
        self.discounts = []
        for c in self.counts:
            nk = [sum(1 for ws in c.values() for v in ws.values() if v == k) for k in (1, 2, 3, 4)]
            y = nk[0] / (nk[0] + 2 * nk[1]) if nk[0] and nk[1] else 0.5
            ds = [k - (k + 1) * y * nk[k] / nk[k - 1] if nk[k - 1] else 0.5 for k in (1, 2, 3)]
            # Clipped so that unseen tokens keep some mass and seen ones keep some of their own.
            self.discounts.append([min(max(d, 0.05), k - 0.05) for k, d in zip((1, 2, 3), ds, strict=True)])
        # gamma numerators: sum over the words seen after h of their discount.
        self.types = [
            {h: sum(self._d(k, v) for v in ws.values()) for h, ws in c.items()}
            for k, c in enumerate(self.counts)
        ]
        return self

    def _d(self, k: int, count: float) -> float:
        return self.discounts[k][min(int(count), 3) - 1] if count > 0 else 0.0

    def _context(self, context: Sequence[int]) -> tuple:
        ctx = [PAD_ID] * (self.order - 1) + [int(t) for t in context]
        return tuple(ctx[len(ctx) - (self.order - 1) :]) if self.order > 1 else ()

    def prob(self, context: Sequence[int], token: int) -> float:
        """P(token | the tokens before it)."""
        h = self._context(context)
        p = 1.0 / self.vocab_size
        for k in range(self.order):
            hk = h[len(h) - k :] if k else ()
            total = self.totals[k].get(hk)
            if not total:
                continue
            c = self.counts[k][hk].get(token, 0.0)
            p = max(c - self._d(k, c), 0.0) / total + self.types[k][hk] / total * p
        return p

    def logprob(self, context: Sequence[int], token: int) -> float:
        """Natural log of P(token | context)."""
        return math.log(self.prob(context, token))

    def distribution(self, context: Sequence[int]) -> np.ndarray:
        """P(next token | context) over the whole vocabulary."""
        h = self._context(context)
        p = np.full(self.vocab_size, 1.0 / self.vocab_size)
        for k in range(self.order):
            hk = h[len(h) - k :] if k else ()
            total = self.totals[k].get(hk)
            if not total:
                continue
            q = p * (self.types[k][hk] / total)
            for w, c in self.counts[k][hk].items():
                q[w] += max(c - self._d(k, c), 0.0) / total
            p = q
        return p


def sequence_nll(model, sequences: Sequence[Sequence[int]]) -> tuple[float, int]:
    """(total negative log-likelihood in nats, number of predicted tokens) of `sequences` under `model`."""
    total, n = 0.0, 0
    for s in sequences:
        s = [int(t) for t in s]
        for t in range(1, len(s)):
            total -= model.logprob(s[max(0, t - 8) : t], s[t])
            n += 1
    return total, n


def token_nlls(model, sequences: Sequence[Sequence[int]]) -> np.ndarray:
    """The negative log-likelihood of every predicted token of `sequences`, in order (for per-class figures)."""
    out = []
    for s in sequences:
        s = [int(t) for t in s]
        out.extend(-model.logprob(s[max(0, t - 8) : t], s[t]) for t in range(1, len(s)))
    return np.asarray(out, dtype=np.float64)
