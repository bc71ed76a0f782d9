"""The one contract between `training` (which exports) and `serving` (which loads and asks).

Each ensemble member is a TF Serving model `lofi_member_<i>` under `MODELS_DIR/<name>/<version>/`, all
members of one training run sharing one integer version. A member's SavedModel has two signatures:

- `serving_default`: inputs `tokens` int32 [batch, window] (the last `window` token ids, left-padded with
  PAD = 0), `cond` int32 [batch, 4] (the header ids MODE, TS, TEMPO, DENS) and `aux` int32 [batch, 6]
  (the state at the predicted position, `music.tokens.AUX_FEATURES`: previous melody pitch, current chord,
  its root, position in the bar, bar in the phrase, melody notes the plan still has for this bar); output
  `probs` float32 [batch, vocab], the next-token distribution. `window` is the static second dimension of `tokens`, so a
  client reads it from GetModelMetadata.
- `manifest`: input `probe` int32 [1] (ignored); output `manifest_json`, a string scalar holding the
  `Manifest` below, so a client can check over gRPC alone that it decodes with the right vocabulary.

The same manifest is written beside the weights as `assets.extra/lofi_manifest.json`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

MODEL_PREFIX = "lofi_member"
SIGNATURE = "serving_default"
INPUT_TOKENS = "tokens"
INPUT_COND = "cond"
INPUT_AUX = "aux"
OUTPUT_PROBS = "probs"
TOKENS_DTYPE = "int32"
PROBS_DTYPE = "float32"
COND_LEN = 4
AUX_LEN = 6

MANIFEST_SIGNATURE = "manifest"
MANIFEST_INPUT = "probe"
MANIFEST_OUTPUT = "manifest_json"
MANIFEST_FILE = "assets.extra/lofi_manifest.json"
WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
MODELS_CONFIG = "models.config"
# DIR/.published/<version>: written by the export after every member of that version is in place (last);
# the embedded server and the in-process backend serve a version only once it is there.
PUBLISHED_DIR = ".published"
COMBINE_METHODS = ("mean", "geometric")


def model_name(index: int) -> str:
    """TF Serving model name of ensemble member `index`."""
    return f"{MODEL_PREFIX}_{index}"


def vocab_sha256(tokens: list[str]) -> str:
    """Fingerprint of a vocabulary (its tokens in id order)."""
    return hashlib.sha256("\n".join(tokens).encode()).hexdigest()


@dataclass
class Manifest:
    """What a generator needs to use one member version correctly."""

    representation: str
    vocab: list[str]
    vocab_sha256: str
    window: int
    member: int
    members: int
    version: int
    combine: dict = field(default_factory=lambda: {"method": "mean", "weights": None})
    config: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    trained_at: str = ""

    def to_json(self) -> str:
        """Serialised form (stable key order)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        """Parse a manifest; ValueError if it is malformed or its vocabulary does not match its hash."""
        data = json.loads(text)
        m = cls(**data)
        if vocab_sha256(m.vocab) != m.vocab_sha256:
            raise ValueError("manifest vocabulary does not match its sha256")
        if m.combine.get("method") not in COMBINE_METHODS:
            raise ValueError(f"unknown combine method {m.combine.get('method')!r}")
        return m
