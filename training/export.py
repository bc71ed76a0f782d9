"""Export an ensemble to TensorFlow Serving: one SavedModel per member, a manifest, warm-up requests and
`models.config`.

Layout (see `serving.contract`): `DIR/lofi_member_<i>/<version>/` with the `serving_default` and
`manifest` signatures, `assets.extra/lofi_manifest.json` and `assets.extra/tf_serving_warmup_requests`.
Every member is first written into a hidden staging folder beside its final place (`.tmp-<pid>-...`, not an
integer, so TF Serving's poller ignores it) and only when all members are complete are they renamed into
place, so a poller never sees a half-written version and a failed export publishes nothing.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from music.tokens import REPR_VERSION, Representation
from serving import contract
from training.errors import ExportError, ModelsNotFoundError

log = logging.getLogger(__name__)
STAGING_PREFIX = contract.STAGING_PREFIX


def versions(models_dir: Path, member: int = 0) -> list[int]:
    """The integer versions present for member `member`, ascending."""
    d = Path(models_dir) / contract.model_name(member)
    if not d.is_dir():
        return []
    return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit() and p.is_dir())


def latest_version(models_dir: Path) -> int | None:
    """The newest version that is one complete published set (None when there is none).

    The same rule the embedded server serves by (`serving.contract.complete_versions`): a version whose
    publish crashed between member renames is never the latest."""
    found = contract.complete_versions(Path(models_dir))
    return found[-1] if found else None


def next_version(models_dir: Path) -> int:
    """One more than the largest version of any member (1 for an empty folder)."""
    models_dir = Path(models_dir)
    found = [0]
    if models_dir.is_dir():
        for d in models_dir.glob(f"{contract.MODEL_PREFIX}_*"):
            if d.is_dir():
                found += [int(p.name) for p in d.iterdir() if p.name.isdigit()]
    return max(found) + 1


def load_manifest(version_dir: Path) -> contract.Manifest:
    """The manifest file of an exported member version."""
    return contract.Manifest.from_json((Path(version_dir) / contract.MANIFEST_FILE).read_text())


def member_dirs(models_dir: Path, version: int | None = None) -> list[Path]:
    """The version folders of every member of `version` (default: the latest complete one)."""
    models_dir = Path(models_dir)
    version = version if version is not None else latest_version(models_dir)
    if version is None:
        raise ModelsNotFoundError(f"no exported ensemble in {models_dir}")
    m = load_manifest(models_dir / contract.model_name(0) / str(version))
    return [models_dir / contract.model_name(i) / str(version) for i in range(m.members)]


def make_manifest(
    member: int,
    members: int,
    version: int,
    window: int,
    combine: dict | None = None,
    config: dict | None = None,
    metrics: dict | None = None,
) -> contract.Manifest:
    """The manifest of one member (vocabulary and representation from `music.tokens`)."""
    vocab = Representation().vocab.tokens
    return contract.Manifest(
        representation=REPR_VERSION,
        vocab=list(vocab),
        vocab_sha256=contract.vocab_sha256(list(vocab)),
        window=int(window),
        member=member,
        members=members,
        version=version,
        combine=combine or {"method": "mean", "weights": [round(1.0 / members, 6)] * members},
        config=config or {},
        metrics=metrics or {},
        trained_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )


def model_window(model) -> int:
    """The static window length of a Keras member's `tokens` input."""
    for t in model.inputs:
        if t.name == contract.INPUT_TOKENS:
            return int(t.shape[1])
    raise ExportError(f"model has no input named {contract.INPUT_TOKENS!r}")


def write_savedmodel(model, manifest: contract.Manifest, path: Path) -> None:
    """Write one member as a SavedModel with the contract's two signatures, manifest and warm-up file."""
    import keras
    import tensorflow as tf

    window = manifest.window
    text = manifest.to_json()
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(tokens, cond, aux):
        probs = model(
            {contract.INPUT_TOKENS: tokens, contract.INPUT_COND: cond, contract.INPUT_AUX: aux},
            training=False,
        )
        return {contract.OUTPUT_PROBS: tf.cast(probs, tf.float32)}

    def manifest_fn(probe):
        del probe
        return {contract.MANIFEST_OUTPUT: tf.constant(text)}

    # XLA compiles the forward pass (the BiLSTM's per-step loop above all) into one fused program: about 4x
    # faster per call on CPU here, with the same outputs to ~1e-7. Real TF Serving needs
    # --xla_cpu_compilation_enabled=true for it (docker-compose.yml passes it).
    serve_fn = tf.function(
        serve,
        input_signature=[
            tf.TensorSpec([None, window], tf.int32, name=contract.INPUT_TOKENS),
            tf.TensorSpec([None, contract.COND_LEN], tf.int32, name=contract.INPUT_COND),
            tf.TensorSpec([None, contract.AUX_LEN], tf.int32, name=contract.INPUT_AUX),
        ],
        jit_compile=True,
    )
    serve_fn(
        tf.zeros([1, window], tf.int32),
        tf.zeros([1, contract.COND_LEN], tf.int32),
        tf.zeros([1, contract.AUX_LEN], tf.int32),
    )
    archive.add_endpoint(contract.SIGNATURE, serve_fn)
    archive.add_endpoint(
        contract.MANIFEST_SIGNATURE,
        manifest_fn,
        input_signature=[tf.TensorSpec([1], tf.int32, name=contract.MANIFEST_INPUT)],
    )
    archive.write_out(str(path), verbose=False)
    extra = Path(path) / "assets.extra"
    extra.mkdir(exist_ok=True)
    (Path(path) / contract.MANIFEST_FILE).write_text(text)
    write_warmup(Path(path) / contract.WARMUP_FILE, contract.model_name(manifest.member), window)


def write_warmup(
    path: Path, name: str, window: int, batch_sizes: Sequence[int] = contract.BATCH_SIZES
) -> None:
    """TF Serving warm-up requests (a TFRecord of PredictionLog) for the member's default signature: one per
    batch size the client pads to, so that every XLA compilation happens at load time."""
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    with tf.io.TFRecordWriter(str(path)) as w:
        for b in batch_sizes:
            req = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=name, signature_name=contract.SIGNATURE)
            )
            tokens = np.zeros((b, window), np.int32)
            tokens[:, -1] = 1  # BOS
            req.inputs[contract.INPUT_TOKENS].CopyFrom(tf.make_tensor_proto(tokens))
            req.inputs[contract.INPUT_COND].CopyFrom(
                tf.make_tensor_proto(np.array([[4, 6, 23, 30]] * b, np.int32))
            )
            req.inputs[contract.INPUT_AUX].CopyFrom(
                tf.make_tensor_proto(np.zeros((b, contract.AUX_LEN), np.int32))
            )
            log_ = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=req))
            w.write(log_.SerializeToString())


def models_config_text(models_dir: Path, members: int, config_base: str | None = None) -> str:
    """`models.config` (TF Serving text format) listing every member; base paths under `config_base`
    (e.g. '/models' inside a container) or absolute paths of `models_dir`."""
    base = config_base.rstrip("/") if config_base else str(Path(models_dir).resolve())
    lines = ["model_config_list {"]
    for i in range(members):
        name = contract.model_name(i)
        lines += [
            "  config {",
            f'    name: "{name}"',
            f'    base_path: "{base}/{name}"',
            '    model_platform: "tensorflow"',
            # Two versions stay loaded after a swap, so a track pinned to the old one can finish.
            "    model_version_policy { latest { num_versions: 2 } }",
            "  }",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_models_config(models_dir: Path, members: int, config_base: str | None = None) -> Path:
    """Write `DIR/models.config` atomically; returns its path."""
    models_dir = Path(models_dir)
    path = models_dir / contract.MODELS_CONFIG
    fd, tmp = tempfile.mkstemp(prefix=contract.staging_prefix(os.getpid()), dir=models_dir)
    with os.fdopen(fd, "w") as f:
        f.write(models_config_text(models_dir, members, config_base))
    os.replace(tmp, path)
    return path


def stage_ensemble(
    models: Sequence,
    models_dir: Path,
    version: int,
    *,
    combine: dict | None = None,
    configs: Sequence[dict] | None = None,
    metrics: dict | None = None,
) -> list[tuple[Path, Path]]:
    """Write every member into a hidden staging folder; returns (staged, final) paths. Nothing is visible."""
    models_dir = Path(models_dir)
    staged: list[tuple[Path, Path]] = []
    try:
        for i, model in enumerate(models):
            final = models_dir / contract.model_name(i) / str(version)
            if final.exists():
                raise ExportError(f"{final} already exists")
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=contract.staging_prefix(os.getpid()), dir=final.parent))
            staged.append((tmp, final))
            manifest = make_manifest(
                i,
                len(models),
                version,
                model_window(model),
                combine,
                (configs[i] if configs else None),
                metrics,
            )
            write_savedmodel(model, manifest, tmp / "m")
    except BaseException:
        discard(staged)
        raise
    return staged


def discard(staged: Sequence[tuple[Path, Path]]) -> None:
    """Remove staging folders."""
    for tmp, _ in staged:
        shutil.rmtree(tmp, ignore_errors=True)


def mark_published(models_dir: Path, version: int, members: int) -> Path:
    """Write `DIR/.published/<version>` atomically: the version is now one complete set."""
    d = Path(models_dir) / contract.PUBLISHED_DIR
    d.mkdir(exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=contract.staging_prefix(os.getpid()), dir=d)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps({"version": version, "members": members, "published_at": time.time()}) + "\n")
    path = d / str(version)
    os.replace(tmp, path)
    return path


def publish(staged: Sequence[tuple[Path, Path]], models_dir: Path, config_base: str | None = None) -> None:
    """Publish one version as a unit: rename every staged member into place, then write the version's
    completion marker (last), then rewrite `models.config`.

    The embedded server, the in-process backend and `latest_version` serve a version only once its marker
    is there, so a crash between two renames never serves a mixed ensemble. Real TF Serving ignores the
    marker: it loads each member's new version when its own rename lands. Every member is fully written
    before the first rename and the renames run back to back, so that window is milliseconds; but a TF
    Serving poll inside it serves member 0 at the new version beside the others at the old one until its
    next poll, and after a crash between renames it keeps doing so until the next export.
    """
    version = None
    try:
        for tmp, final in staged:
            os.rename(tmp / "m", final)
            version = int(final.name)
    finally:
        discard(staged)
    if version is not None:
        mark_published(models_dir, version, len(staged))
    write_models_config(models_dir, len(staged), config_base)


def export_ensemble(
    models: Sequence,
    models_dir: Path,
    *,
    combine: dict | None = None,
    configs: Sequence[dict] | None = None,
    metrics: dict | None = None,
    version: int | None = None,
    config_base: str | None = None,
) -> int:
    """Export Keras members as one new version (default: max existing + 1); returns the version.

    Args:
        models: Keras members (inputs `tokens` [batch, window], `cond` [batch, 4]; output probabilities).
        models_dir: the TF Serving models folder.
        combine: the ensemble rule recorded in every manifest ({"method", "weights"}).
        configs: per-member config dicts for the manifests (architecture, preset, seed...).
        metrics: evaluation metrics recorded in every manifest.
        version: force a version number (must not exist).
        config_base: base path prefix for `models.config` (e.g. "/models" in a container).
    Returns:
        The version number written.
    """
    if not models:
        raise ExportError("no members to export")
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    version = version if version is not None else next_version(models_dir)
    staged = stage_ensemble(models, models_dir, version, combine=combine, configs=configs, metrics=metrics)
    publish(staged, models_dir, config_base)
    log.info("exported %d members as version %d to %s", len(models), version, models_dir)
    return version
