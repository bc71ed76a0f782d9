"""Members with any vocabulary (`tests.support.tiny_models` exports the real one): tiny tf.Modules that
follow `serving.contract` exactly, for the tests of what serving does with a foreign vocabulary.

Each member is a tf.Module (no Keras) with the two contract signatures; its weights come from `seed`,
the member index and the version, so different versions answer differently.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from music.tokens import REPR_VERSION, Representation
from serving import contract


class TinyMember(tf.Module):
    """probs = softmax(W2 tanh(W1 [mean(emb(last tokens)); emb(cond)]))."""

    def __init__(self, vocab: int, window: int, hidden: int, seed: int, manifest_json: str):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.window = window
        self.emb = tf.Variable(rng.normal(0, 1, (vocab, hidden)).astype(np.float32))
        self.cond_emb = tf.Variable(rng.normal(0, 1, (vocab, hidden)).astype(np.float32))
        self.w1 = tf.Variable(rng.normal(0, 1 / np.sqrt(hidden), (hidden, hidden)).astype(np.float32))
        self.w2 = tf.Variable(rng.normal(0, 2 / np.sqrt(hidden), (hidden, vocab)).astype(np.float32))
        self.manifest_text = manifest_json

    @tf.function
    def serve(self, tokens, cond, aux):
        del aux  # the state features: a tiny stand-in ignores them
        last = tf.gather(self.emb, tokens[:, -8:])
        mask = tf.cast(tokens[:, -8:] > 0, tf.float32)[..., None]
        x = tf.reduce_sum(last * mask, axis=1) / (tf.reduce_sum(mask, axis=1) + 1.0)
        x += tf.reduce_mean(tf.gather(self.cond_emb, cond), axis=1)
        h = tf.tanh(tf.matmul(x, self.w1))
        return {contract.OUTPUT_PROBS: tf.nn.softmax(tf.matmul(h, self.w2), axis=-1)}

    @tf.function
    def manifest(self, probe):
        del probe
        return {contract.MANIFEST_OUTPUT: tf.constant(self.manifest_text)}


def make_contract_models(
    models_dir: Path,
    members: int = 2,
    seed: int = 0,
    version: int | None = None,
    *,
    window: int = 16,
    hidden: int = 16,
    combine: dict | None = None,
    vocab: list[str] | None = None,
) -> int:
    """Export `members` tiny members as `models_dir/lofi_member_<i>/<version>/`; returns the version."""
    models_dir = Path(models_dir)
    tokens = vocab if vocab is not None else Representation().vocab.tokens
    if version is None:
        existing = [int(p.name) for p in models_dir.glob(f"{contract.MODEL_PREFIX}_0/*") if p.name.isdigit()]
        version = max(existing, default=0) + 1
    for i in range(members):
        m = contract.Manifest(
            representation=REPR_VERSION,
            vocab=list(tokens),
            vocab_sha256=contract.vocab_sha256(list(tokens)),
            window=window,
            member=i,
            members=members,
            version=version,
            combine=combine or {"method": "mean", "weights": None},
            config={"tiny": True, "hidden": hidden},
        )
        module = TinyMember(
            len(Representation().vocab), window, hidden, seed * 1000 + i * 17 + version * 7919, m.to_json()
        )
        sigs = {
            contract.SIGNATURE: module.serve.get_concrete_function(
                tf.TensorSpec([None, window], tf.int32, name=contract.INPUT_TOKENS),
                tf.TensorSpec([None, contract.COND_LEN], tf.int32, name=contract.INPUT_COND),
                tf.TensorSpec([None, contract.AUX_LEN], tf.int32, name=contract.INPUT_AUX),
            ),
            contract.MANIFEST_SIGNATURE: module.manifest.get_concrete_function(
                tf.TensorSpec([1], tf.int32, name=contract.MANIFEST_INPUT)
            ),
        }
        final = models_dir / contract.model_name(i) / str(version)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=final.parent))
        try:
            tf.saved_model.save(module, str(tmp / "m"), signatures=sigs)
            extra = tmp / "m" / "assets.extra"
            extra.mkdir(exist_ok=True)
            (extra / "lofi_manifest.json").write_text(json.dumps(json.loads(m.to_json()), indent=1))
            os.rename(tmp / "m", final)  # atomic: a poller never sees a half-written version
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return version
