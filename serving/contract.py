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
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

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
# The batch sizes a Predict request is padded to. Each member's forward pass is XLA-compiled, once per input
# shape (~0.9 s each on this machine): padding to a few sizes, all compiled by the warm-up, means a batch that
# grows or shrinks never pays for a compilation (TF Serving's `allowed_batch_sizes` exists for the same
# reason). 2 is left out: it costs about what 4 does.
BATCH_SIZES = (1, 4, 8, 16, 32)
MODELS_CONFIG = "models.config"
# DIR/.published/<version>: written by the export after every member of that version is in place (last);
# the embedded server and the in-process backend serve a version only once it is there.
PUBLISHED_DIR = ".published"
# An export stages each member in `.tmp-<pid>-...` beside its final folder (not an integer: no poller serves
# it). The pid in the name lets the bot remove what a retrain process it saw killed left behind, and only that.
STAGING_PREFIX = ".tmp-"
COMBINE_METHODS = ("mean", "geometric")


def padded_batch(rows: int) -> int:
    """The smallest of `BATCH_SIZES` that holds `rows` (rows beyond the largest are sent as they are)."""
    return next((b for b in BATCH_SIZES if b >= rows), rows)


def staging_prefix(pid: int) -> str:
    """The prefix of every staging file and folder an export in process `pid` creates."""
    return f"{STAGING_PREFIX}{pid}-"


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
    combine: dict[str, Any] = field(default_factory=lambda: {"method": "mean", "weights": None})
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
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


# ------------------------------------------------------------------ what a published version is
# Both sides need one rule: the export publishes by it, the servers serve by it.
VERSION_DIR = re.compile(r"^\d+$")


def saved_models(base: Path) -> dict[int, Path]:
    """Integer version folders under `base` that hold a saved_model.pb."""
    out: dict[int, Path] = {}
    if not base.is_dir():
        return out
    for p in base.iterdir():
        if p.is_dir() and VERSION_DIR.match(p.name) and (p / "saved_model.pb").is_file():
            out[int(p.name)] = p
    return out


def published_versions(models_dir: Path) -> set[int]:
    """The versions the export has marked complete under `models_dir` (`.published/<version>`)."""
    d = Path(models_dir) / PUBLISHED_DIR
    if not d.is_dir():
        return set()
    return {int(p.name) for p in d.iterdir() if VERSION_DIR.match(p.name) and p.is_file()}


def _members_of(models_dir: Path, version: int) -> int | None:
    try:
        raw = (Path(models_dir) / model_name(0) / str(version) / MANIFEST_FILE).read_text()
        return int(json.loads(raw)["members"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def complete_versions(models_dir: Path) -> list[int]:
    """The ensemble versions under `models_dir` that are one complete set, ascending.

    A version is complete when its `.published/<version>` marker exists (the export writes it after the last
    member is renamed into place). Versions without a marker count only if they predate markers (no marker
    at all, or older than the oldest one) and every member the manifest names has the version: a publish that
    crashed between its renames leaves a newer, unmarked version that is never served.
    """
    models_dir = Path(models_dir)
    marked = published_versions(models_dir)
    present = saved_models(models_dir / model_name(0))
    out = []
    for v in sorted(present):
        if v in marked:
            out.append(v)
            continue
        if marked and v > min(marked):
            continue
        n = _members_of(models_dir, v)
        if n is None:
            continue
        if all(v in saved_models(models_dir / model_name(i)) for i in range(n)):
            out.append(v)
    return out
