"""The ensemble one batch is generated with: every member pinned to one version, checked against the vocabulary
this code decodes with, and the rule that combines their predictions.

Each track is generated with one pinned version of every member from start to end (a retrain that lands
mid-way is picked up by the next batch), after checking over the wire that each pinned version was trained on
this code's vocabulary and representation.
"""

from __future__ import annotations

import asyncio

import numpy as np

from music.tokens import Representation
from serving import contract
from serving.backend import Backend
from serving.errors import ContractError, VocabularyMismatch


class Ensemble:
    """Pinned member versions, their windows and the combine rule."""

    def __init__(self, versions: dict[str, int], manifests: dict[str, contract.Manifest]):
        self.names = list(versions)
        self.versions = versions
        self.manifests = manifests
        self.windows = {n: manifests[n].window for n in self.names}
        combine = manifests[self.names[0]].combine or {}
        self.method = combine.get("method", "mean")
        weights = combine.get("weights")
        if weights is None:
            weights = [1.0] * len(self.names)
        if len(weights) != len(self.names) or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ContractError(f"combine weights {weights} do not fit {len(self.names)} members")
        w = np.asarray(weights, np.float64)
        self.weights = w / w.sum()

    def combine(self, probs: list[np.ndarray]) -> np.ndarray:
        """Weighted mean of probabilities, or weighted geometric mean renormalised (float64)."""
        out: np.ndarray
        if self.method == "geometric":
            logp: np.ndarray = sum(
                (
                    w * np.log(np.maximum(p.astype(np.float64), 1e-30))
                    for w, p in zip(self.weights, probs, strict=True)
                ),
                np.zeros(1),
            )
            out = np.exp(logp - logp.max(axis=1, keepdims=True))
        else:
            out = sum(
                (w * p.astype(np.float64) for w, p in zip(self.weights, probs, strict=True)), np.zeros(1)
            )
        normalised: np.ndarray = out / out.sum(axis=1, keepdims=True)
        return normalised


async def pin_ensemble(backend: Backend, rep: Representation, members: list[str] | None = None) -> Ensemble:
    """Pin the newest version of every member and check each one's manifest (vocabulary, window)."""
    if members is None:
        members = await backend.members()
    versions = await backend.latest_versions(members)
    manifests = await asyncio.gather(*(backend.manifest(n, versions[n]) for n in members))
    expected = contract.vocab_sha256(rep.vocab.tokens)
    for name, m in zip(members, manifests, strict=True):
        if m.vocab_sha256 != expected or len(m.vocab) != len(rep.vocab) or m.representation != rep.version:
            raise VocabularyMismatch(
                f"{name} version {versions[name]} was trained on vocabulary {m.vocab_sha256[:12]} "
                f"({m.representation}, {len(m.vocab)} tokens) but this code decodes with {expected[:12]} "
                f"({rep.version}, {len(rep.vocab)} tokens); retrain or deploy matching code"
            )
        if m.window <= 0:
            raise ContractError(f"{name} version {versions[name]}: window {m.window} is not positive")
    if hasattr(backend, "window"):  # over gRPC: the signature's static window must agree with the manifest
        windows = await asyncio.gather(*(backend.window(n, versions[n]) for n in members))
        for name, m, w in zip(members, manifests, windows, strict=True):
            if w != m.window:
                raise ContractError(
                    f"{name} version {versions[name]}: manifest window {m.window} but "
                    f"the signature takes {w} tokens"
                )
    return Ensemble(versions, dict(zip(members, manifests, strict=True)))
