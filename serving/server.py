"""An embedded model server that speaks TF Serving's gRPC API, for where TF Serving itself cannot run.

Clients cannot tell it from `tensorflow/serving`: PredictionService (Predict, GetModelMetadata) and ModelService
(GetModelStatus, HandleReloadConfigRequest) over SavedModels, the same `models.config` text format, the same
version policies (latest(1) by default), the same file-system polling (a new version is loaded before the old
one is unloaded, so no request fails during a swap; non-integer and half-written version folders are ignored)
and the same status codes (NOT_FOUND for an unknown model or version, INVALID_ARGUMENT for bad inputs).
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import time
from collections.abc import Callable, Iterable
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tensorflow_serving.config import model_server_config_pb2

from serving import contract
from serving.backend import (
    MEMBER_DIR,
    SavedModel,
    array_to_tensor,
    load_saved_model,
    tensor_to_array,
    version_dirs,
)
from serving.errors import PortUnavailable

if TYPE_CHECKING:
    from tensorflow_serving.apis import model_pb2
    from tensorflow_serving.config.file_system_storage_path_source_pb2 import (
        FileSystemStoragePathSourceConfig,
    )

log = logging.getLogger(__name__)
T = TypeVar("T")
# What a failed version's files looked like: (relative path, size, mtime_ns) of each
Fingerprint = tuple[tuple[str, int, int], ...]

DEFAULT_SIGNATURE = "serving_default"
_NP_TO_DT = {
    np.dtype(np.float32): types_pb2.DT_FLOAT,
    np.dtype(np.float64): types_pb2.DT_DOUBLE,
    np.dtype(np.int32): types_pb2.DT_INT32,
    np.dtype(np.int64): types_pb2.DT_INT64,
    np.dtype(np.bool_): types_pb2.DT_BOOL,
    np.dtype(object): types_pb2.DT_STRING,
}


def _dt_name(code: int) -> str:
    return tf.dtypes.as_dtype(code).name if code else "invalid"


class RpcError(Exception):
    """A status to return to the client (code + message), raised inside a handler."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Servable:
    """One loaded model version: the SavedModel object and its SignatureDefs (as TF Serving reports them)."""

    name: str
    version: int
    path: Path
    model: SavedModel
    signature_defs: dict[str, meta_graph_pb2.SignatureDef]

    @classmethod
    def load(
        cls, name: str, version: int, path: Path, warmup_batch_sizes: set[int] | None = None
    ) -> Servable:
        """Load `path` (a SavedModel folder) and replay its warm-up requests (those of `warmup_batch_sizes`
        only, when given: a one-shot server that sends one row need not compile the other sizes)."""
        sm = saved_model_pb2.SavedModel()
        sm.ParseFromString((path / "saved_model.pb").read_bytes())
        graphs = [g for g in sm.meta_graphs if "serve" in g.meta_info_def.tags] or list(sm.meta_graphs)
        defs = dict(graphs[0].signature_def) if graphs else {}
        model = load_saved_model(path, tags=["serve"])
        servable = cls(name, version, path, model, defs)
        servable.warm_up(batch_sizes=warmup_batch_sizes)
        return servable

    def warm_up(self, limit: int = 1000, batch_sizes: set[int] | None = None) -> int:
        """Replay `assets.extra/tf_serving_warmup_requests` as TF Serving does before a version becomes
        AVAILABLE, so the first real request does not pay for tracing or XLA compilation. A failing
        warm-up request fails the load (as in TF Serving), so the previous version keeps serving."""
        from tensorflow_serving.apis import prediction_log_pb2

        path = self.path / "assets.extra" / "tf_serving_warmup_requests"
        if not path.is_file():
            return 0
        n = 0
        for record in read_tfrecords(path, limit):
            entry = prediction_log_pb2.PredictionLog.FromString(record)
            if entry.WhichOneof("log_type") != "predict_log":
                continue
            req = entry.predict_log.request
            inputs = {k: tensor_to_array(v) for k, v in req.inputs.items()}
            rows = {a.shape[0] for a in inputs.values() if a.ndim}
            if batch_sizes is not None and not rows & set(batch_sizes):
                continue
            self.run(req.model_spec.signature_name, inputs, [])
            n += 1
        log.info("warmed up %s version %d with %d request(s)", self.name, self.version, n)
        return n

    def run(
        self, signature: str, inputs: dict[str, np.ndarray], output_filter: Iterable[str]
    ) -> dict[str, np.ndarray]:
        """Validate `inputs` against the signature like TF Serving does, then call it."""
        sig_name = signature or DEFAULT_SIGNATURE
        sig = self.signature_defs.get(sig_name)
        fn = self.model.signatures.get(sig_name) if sig is not None else None
        if sig is None or fn is None:
            raise RpcError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f'Serving signature name: "{sig_name}" not found in signature def',
            )
        args = self._tensors(sig_name, sig, inputs)
        outputs = list(output_filter) or list(sig.outputs)
        for key in outputs:
            if key not in sig.outputs:
                raise RpcError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"output tensor alias not found in signature: {key} Outputs expected to be in "
                    f"the set {{{','.join(sorted(sig.outputs))}}}.",
                )
        try:
            result = fn(**args)
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as exc:
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, str(exc).strip().splitlines()[0]) from exc
        return {k: np.asarray(result[k].numpy()) for k in outputs}

    def _tensors(
        self, sig_name: str, sig: meta_graph_pb2.SignatureDef, inputs: dict[str, np.ndarray]
    ) -> dict[str, tf.Tensor]:
        """`inputs` as the signature's tensors, after TF Serving's checks (names, dtypes, shapes) with its
        messages."""
        expected = sig.inputs
        for key in inputs:
            if key not in expected:
                raise RpcError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"input tensor alias not found in signature: {key}. Inputs expected to be in "
                    f"the set {{{','.join(sorted(expected))}}}.",
                )
        missing = sorted(set(expected) - set(inputs))
        if missing:
            raise RpcError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Request inputs do not match required inputs for model `{self.name}`. Send extra: "
                f"{{}}. Missing but required: {{{','.join(missing)}}}.",
            )
        args: dict[str, tf.Tensor] = {}
        for i, (key, arr) in enumerate(sorted(inputs.items())):
            info = expected[key]
            got = _NP_TO_DT.get(arr.dtype, -1)
            if info.dtype and got != info.dtype:
                raise RpcError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"Expects arg[{i}] ('{key}') to be {_dt_name(info.dtype)} but "
                    f"{arr.dtype.name if got == -1 else _dt_name(got)} is provided",
                )
            if not info.tensor_shape.unknown_rank:
                want = [d.size for d in info.tensor_shape.dim]
                if len(want) != arr.ndim or any(
                    w not in (-1, g) for w, g in zip(want, arr.shape, strict=False)
                ):
                    raise RpcError(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"input '{key}' has shape {list(arr.shape)} but signature '{sig_name}' "
                        f"expects {want} (-1: any size)",
                    )
            args[key] = tf.constant(arr)
        return args


def read_tfrecords(path: Path, limit: int) -> list[bytes]:
    """The first `limit` records of a TFRecord file (length, its CRC, data, its CRC), read without tf.data,
    whose start-up alone costs about half a second; ValueError for a truncated file. The CRCs are not
    checked: a corrupt record fails to parse as a PredictionLog, or fails its request, and so the load."""
    data = Path(path).read_bytes()
    out: list[bytes] = []
    pos = 0
    while pos < len(data) and len(out) < limit:
        if pos + 12 > len(data):
            raise ValueError(f"{path}: truncated record header at byte {pos}")
        (length,) = struct.unpack_from("<Q", data, pos)
        end = pos + 12 + length
        if end + 4 > len(data):
            raise ValueError(f"{path}: a record of {length} bytes runs past the end of the file")
        out.append(data[pos + 12 : end])
        pos = end + 4
    return out


def _policy_versions(
    policy: FileSystemStoragePathSourceConfig.ServableVersionPolicy, available: list[int]
) -> list[int]:
    kind = policy.WhichOneof("policy_choice")
    if kind == "all":
        return available
    if kind == "specific":
        return [v for v in available if v in set(policy.specific.versions)]
    n = policy.latest.num_versions if kind == "latest" and policy.latest.num_versions else 1
    return sorted(available)[-n:]


def _fingerprint(path: Path) -> Fingerprint:
    """What a version's files look like (names, sizes, mtimes), so a version that failed is tried again only
    once they change."""
    try:
        return tuple(
            sorted(
                (str(p.relative_to(path)), st.st_size, st.st_mtime_ns)
                for p in path.rglob("*")
                if (st := p.stat())
            )
        )
    except OSError:
        return ()


def _to_load(want: list[int], loaded: dict[int, Servable], dirs: dict[int, Path]) -> list[int]:
    """The versions in `want` that are not loaded from their folder yet (a folder replaced counts as new)."""
    return [v for v in want if v not in loaded or loaded[v].path != dirs[v]]


def _ensemble_root(mc: model_server_config_pb2.ModelConfig) -> Path | None:
    """The models folder of an ensemble member (`.../lofi_member_<i>`): its versions load as one set."""
    base = Path(mc.base_path)
    return base.parent if MEMBER_DIR.match(base.name) else None


class ModelStore:
    """The servables of every configured model, kept in step with the file system by `refresh()`."""

    def __init__(
        self, config: model_server_config_pb2.ModelServerConfig, warmup_batch_sizes: set[int] | None = None
    ):
        self.warmup_batch_sizes = warmup_batch_sizes
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self.config = config
        self.models: dict[str, dict[int, Servable]] = {}
        self._failed: dict[Path, Fingerprint] = {}
        # Loaded versions of an ensemble member waiting for a sibling to load the same version (not served,
        # kept so that each poll does not load them again).
        self._standby: dict[str, dict[int, Servable]] = {}

    def set_config(self, config: model_server_config_pb2.ModelServerConfig) -> None:
        """Replace the model list (HandleReloadConfigRequest, or a changed models.config) and load it."""
        with self._lock:
            self.config = config
        self.refresh()

    def _load(self, name: str, version: int, path: Path) -> Servable | None:
        """The version at `path`, loaded and warmed up; None when it fails to load.

        A version that failed is not tried again until its files change (size or mtime): each try cost
        seconds of CPU and left memory behind in TensorFlow (measured: a bot polling two broken versions
        grew 1.62 -> 2.19 GB and burned 332 CPU-seconds in 270 s).
        """
        stamp = _fingerprint(path)  # before the load: files that change during it are tried again
        if self._failed.get(path) == stamp:
            return None
        t0 = time.perf_counter()
        try:
            servable = Servable.load(name, version, path, self.warmup_batch_sizes)
        except Exception as exc:  # a broken export must not take the server (or the served version) down
            self._failed[path] = stamp
            log.error(
                "failed to load %s version %d from %s (skipped; tried again when its files change): %s",
                name,
                version,
                path,
                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
            )
            return None
        self._failed.pop(path, None)
        log.info("loaded %s version %d from %s in %.2fs", name, version, path, time.perf_counter() - t0)
        return servable

    def _preload(
        self,
        configs: list[model_server_config_pb2.ModelConfig],
        current: dict[str, dict[int, Servable]],
        dirs: dict[str, dict[int, Path]],
    ) -> dict[tuple[str, int, Path], Servable | None]:
        """Load, in parallel, the versions the policy will want first: loading and XLA-compiling the members
        one after another would leave a core idle (both release the GIL). None marks a failed load."""
        jobs: list[tuple[str, int, Path]] = []
        for mc in configs:
            want = _policy_versions(mc.model_version_policy, sorted(dirs[mc.name]))
            loaded = current[mc.name]
            jobs += [(mc.name, v, dirs[mc.name][v]) for v in _to_load(want, loaded, dirs[mc.name])]
        if len(jobs) < 2:
            return {}
        with futures.ThreadPoolExecutor(
            min(len(jobs), os.cpu_count() or 1), thread_name_prefix="load"
        ) as pool:
            return dict(zip(jobs, pool.map(lambda job: self._load(*job), jobs), strict=True))

    def refresh(self) -> None:
        """Load new versions, then unload the versions the policy no longer wants (in that order).

        The policy picks from the versions that load: a newest version that is half-written, corrupt or fails
        its warm-up is skipped (logged, retried on the next poll), so it never takes a served version down
        (TF Serving too keeps what it has until a newer version loads). An ensemble member's version is only
        served when every member of that folder loaded it, so a member that fails cannot mix versions.
        """
        with self._refresh_lock:
            configs = list(self.config.model_config_list.config)
            with self._lock:
                current = {
                    c.name: {**self._standby.get(c.name, {}), **self.models.get(c.name, {})} for c in configs
                }
            dirs = {c.name: version_dirs(Path(c.base_path)) for c in configs}
            preloaded = self._preload(configs, current, dirs)
            keep = self._choose(configs, current, dirs, preloaded)
            self._install(configs, current, dirs, keep)

    def _choose(
        self,
        configs: list[model_server_config_pb2.ModelConfig],
        current: dict[str, dict[int, Servable]],
        dirs: dict[str, dict[int, Path]],
        preloaded: dict[tuple[str, int, Path], Servable | None],
    ) -> dict[str, dict[int, Servable]]:
        """The versions to serve per model: the policy's pick among the versions that load (loading what is
        missing into `current`); an ensemble member's failure removes that version from all its siblings."""
        failed: dict[str, set[int]] = {c.name: set() for c in configs}
        group_bad: dict[Path, set[int]] = {}
        keep: dict[str, dict[int, Servable]] = {}
        for _ in range(len(configs) + 1):  # a member's failure can change its siblings' choice
            changed = False
            for mc in configs:
                root = _ensemble_root(mc)
                bad = failed[mc.name] | (group_bad.get(root, set()) if root else set())
                loaded = current[mc.name]
                candidates = sorted(v for v in dirs[mc.name] if v not in bad)
                while True:
                    want = _policy_versions(mc.model_version_policy, candidates)
                    missing = _to_load(want, loaded, dirs[mc.name])
                    newly_failed = []
                    for v in missing:
                        key = (mc.name, v, dirs[mc.name][v])
                        servable = preloaded.pop(key) if key in preloaded else self._load(*key)
                        if servable is None:
                            newly_failed.append(v)
                        else:
                            loaded[v] = servable
                    if not newly_failed:
                        break
                    failed[mc.name].update(newly_failed)
                    candidates = [v for v in candidates if v not in newly_failed]
                    if root is not None:
                        group_bad.setdefault(root, set()).update(newly_failed)
                        changed = True
                keep[mc.name] = {v: loaded[v] for v in want}
            if not changed:
                break
        return keep

    def _install(
        self,
        configs: list[model_server_config_pb2.ModelConfig],
        current: dict[str, dict[int, Servable]],
        dirs: dict[str, dict[int, Path]],
        keep: dict[str, dict[int, Servable]],
    ) -> None:
        """Serve `keep`; newer ensemble versions that did not make it wait on standby; models dropped from
        the config are unloaded."""
        wanted_models = {c.name for c in configs}
        self._standby = {
            mc.name: {
                v: sv
                for v, sv in current[mc.name].items()
                if v not in keep[mc.name] and v in dirs[mc.name] and v > max(keep[mc.name], default=0)
            }
            for mc in configs
            if _ensemble_root(mc) is not None
        }
        with self._lock:
            for mc in configs:
                for v in sorted(set(self.models.get(mc.name, {})) - set(keep[mc.name])):
                    log.info("unloading %s version %d", mc.name, v)
                self.models[mc.name] = keep[mc.name]
            for name in list(self.models):
                if name not in wanted_models:
                    log.info("unloading model %s (removed from the config)", name)
                    del self.models[name]

    def _label_version(self, name: str, label: str) -> int:
        for mc in self.config.model_config_list.config:
            if mc.name == name and label in mc.version_labels:
                return int(mc.version_labels[label])
        raise RpcError(grpc.StatusCode.NOT_FOUND, f"Unrecognized servable version label: {label}")

    def get(self, spec: model_pb2.ModelSpec) -> Servable:
        """The servable a ModelSpec asks for; NOT_FOUND like TF Serving otherwise."""
        with self._lock:
            versions = self.models.get(spec.name)
        if spec.HasField("version"):
            v = spec.version.value
            request = f"Specific({spec.name}, {v})"
        elif spec.version_label:
            v = self._label_version(spec.name, spec.version_label)
            request = f"Specific({spec.name}, {v})"
        else:
            v = max(versions) if versions else None
            request = f"Latest({spec.name})"
        if not versions or v not in versions:
            raise RpcError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {request}")
        return versions[v]

    def status(self, spec: model_pb2.ModelSpec) -> list[get_model_status_pb2.ModelVersionStatus]:
        """Version statuses of one model (all, or the one asked for)."""
        with self._lock:
            versions = dict(self.models.get(spec.name, {}))
        if not versions:
            raise RpcError(grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {spec.name}")
        if spec.HasField("version"):
            if spec.version.value not in versions:
                raise RpcError(
                    grpc.StatusCode.NOT_FOUND,
                    f"Could not find version {spec.version.value} of model {spec.name}",
                )
            versions = {spec.version.value: versions[spec.version.value]}
        out = []
        for v in sorted(versions, reverse=True):
            st = get_model_status_pb2.ModelVersionStatus(
                version=v, state=get_model_status_pb2.ModelVersionStatus.AVAILABLE
            )
            st.status.error_code = 0
            out.append(st)
        return out


def _handle(context: grpc.ServicerContext, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except RpcError as exc:
        context.abort(exc.code, exc.message)


# tensorflow_serving ships no type stubs, so mypy sees its generated servicer bases as Any.
class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):  # type: ignore[misc]
    """Predict and GetModelMetadata (Classify, Regress and MultiInference answer UNIMPLEMENTED)."""

    def __init__(self, store: ModelStore, tensor_content: bool = False):
        self.store = store
        self.tensor_content = tensor_content

    def Predict(  # noqa: N802 - gRPC method name
        self, request: predict_pb2.PredictRequest, context: grpc.ServicerContext
    ) -> predict_pb2.PredictResponse:
        def run() -> predict_pb2.PredictResponse:
            servable = self.store.get(request.model_spec)
            try:
                inputs = {k: tensor_to_array(v) for k, v in request.inputs.items()}
            except (ValueError, TypeError) as exc:
                raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, f"malformed input tensor: {exc}") from exc
            outputs = servable.run(request.model_spec.signature_name, inputs, request.output_filter)
            resp = predict_pb2.PredictResponse()
            resp.model_spec.name = servable.name
            resp.model_spec.version.value = servable.version
            resp.model_spec.signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
            for k, arr in outputs.items():
                array_to_tensor(arr, content=self.tensor_content, proto=resp.outputs[k])
            return resp

        return _handle(context, run)

    def GetModelMetadata(  # noqa: N802
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: grpc.ServicerContext
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        def run() -> get_model_metadata_pb2.GetModelMetadataResponse:
            for f in request.metadata_field:
                if f != "signature_def":
                    raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, f"Metadata field {f} is not supported")
            if not request.metadata_field:
                raise RpcError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "GetModelMetadataRequest must specify at least one metadata_field",
                )
            servable = self.store.get(request.model_spec)
            resp = get_model_metadata_pb2.GetModelMetadataResponse()
            resp.model_spec.name = servable.name
            resp.model_spec.version.value = servable.version
            sdm = get_model_metadata_pb2.SignatureDefMap()
            for k, v in servable.signature_defs.items():
                sdm.signature_def[k].CopyFrom(v)
            resp.metadata["signature_def"].Pack(sdm)
            return resp

        return _handle(context, run)


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):  # type: ignore[misc]  # (see above)
    """GetModelStatus and HandleReloadConfigRequest.

    A config reload can unload every model or point one at any folder, and gRPC here has no authentication,
    so reloads are refused (PERMISSION_DENIED) unless the server was started with them enabled, and then
    every base_path must lie under the models root."""

    def __init__(self, store: ModelStore, *, allow_reload: bool = False, models_root: Path | None = None):
        self.store = store
        self.allow_reload = allow_reload
        self.models_root = Path(models_root).resolve() if models_root is not None else None

    def GetModelStatus(  # noqa: N802
        self, request: get_model_status_pb2.GetModelStatusRequest, context: grpc.ServicerContext
    ) -> get_model_status_pb2.GetModelStatusResponse:
        def run() -> get_model_status_pb2.GetModelStatusResponse:
            resp = get_model_status_pb2.GetModelStatusResponse()
            resp.model_version_status.extend(self.store.status(request.model_spec))
            return resp

        return _handle(context, run)

    def _check_reload(self, config: model_server_config_pb2.ModelServerConfig) -> None:
        if not self.allow_reload:
            raise RpcError(
                grpc.StatusCode.PERMISSION_DENIED,
                "model config reloads are disabled on this server (they can unload every model); start "
                "`lofi serve` with --enable_model_config_reload to allow them",
            )
        if not config.HasField("model_config_list"):
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, "ServerConfig has no model_config_list")
        for mc in config.model_config_list.config:
            base = Path(mc.base_path)
            if self.models_root is None or not base.is_absolute():
                raise RpcError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"base_path of model {mc.name} must be an absolute path under the models root",
                )
            if not base.resolve().is_relative_to(self.models_root):
                raise RpcError(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"base_path {mc.base_path} of model {mc.name} is outside the models root "
                    f"{self.models_root}",
                )

    def HandleReloadConfigRequest(  # noqa: N802
        self, request: model_management_pb2.ReloadConfigRequest, context: grpc.ServicerContext
    ) -> model_management_pb2.ReloadConfigResponse:
        def run() -> model_management_pb2.ReloadConfigResponse:
            self._check_reload(request.config)
            self.store.set_config(request.config)
            resp = model_management_pb2.ReloadConfigResponse()
            resp.status.error_code = 0
            return resp

        return _handle(context, run)


def default_models_root(
    config: model_server_config_pb2.ModelServerConfig,
    config_file: Path | None = None,
    models_dir: Path | None = None,
) -> Path | None:
    """Where reloaded base paths must lie: the models folder, else the config file's folder, else the folder
    holding the configured models."""
    if models_dir is not None:
        return Path(models_dir).resolve()
    if config_file is not None:
        return Path(config_file).resolve().parent
    parents = {str(Path(mc.base_path).resolve().parent) for mc in config.model_config_list.config}
    if not parents:
        return None
    return Path(os.path.commonpath(sorted(parents)))


# ------------------------------------------------------------------ configuration
def config_from_flags(
    model_name: str, model_base_path: str | Path
) -> model_server_config_pb2.ModelServerConfig:
    """The config `--model_name X --model_base_path P` stands for (one model, latest(1))."""
    cfg = model_server_config_pb2.ModelServerConfig()
    mc = cfg.model_config_list.config.add()
    mc.name = model_name
    mc.base_path = str(Path(model_base_path).resolve())
    mc.model_platform = "tensorflow"
    return cfg


def read_config_file(path: str | Path) -> model_server_config_pb2.ModelServerConfig:
    """Parse a TF Serving `models.config` (ModelServerConfig text format); relative base paths resolve from it."""
    cfg = model_server_config_pb2.ModelServerConfig()
    text_format.Parse(Path(path).read_text(), cfg)
    for mc in cfg.model_config_list.config:
        if not Path(mc.base_path).is_absolute():
            mc.base_path = str((Path(path).parent / mc.base_path).resolve())
    return cfg


def config_for_models_dir(
    models_dir: str | Path, num_versions: int = 2
) -> model_server_config_pb2.ModelServerConfig:
    """A config serving every `lofi_member_<i>` folder under `models_dir`.

    Keeps the newest `num_versions` versions, so a track that started on the previous version can finish on
    it after a retrain lands (the client pins versions); models.config in deploy/ does the same.
    """
    cfg = model_server_config_pb2.ModelServerConfig()
    base = Path(models_dir).resolve()
    names = (
        sorted(p.name for p in base.glob(f"{contract.MODEL_PREFIX}_*") if p.is_dir()) if base.is_dir() else []
    )
    for name in names:
        mc = cfg.model_config_list.config.add()
        mc.name = name
        mc.base_path = str(base / name)
        mc.model_platform = "tensorflow"
        mc.model_version_policy.latest.num_versions = num_versions
    return cfg


# ------------------------------------------------------------------ the server
class EmbeddedServer:
    """The gRPC server, its model store and the file-system poller."""

    def __init__(
        self,
        config: model_server_config_pb2.ModelServerConfig,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        poll_s: float = 1.0,
        config_file: Path | None = None,
        config_poll_s: float = 0.0,
        tensor_content: bool = False,
        workers: int = 8,
        models_dir: Path | None = None,
        allow_config_reload: bool = False,
        models_root: Path | None = None,
        warmup_batch_sizes: set[int] | None = None,
    ):
        """Args: `host` 127.0.0.1 unless widened on purpose (e.g. "0.0.0.0" in a container); `models_dir`
        (optional) re-scans that folder each poll for new `lofi_member_<i>` members; `allow_config_reload`
        enables HandleReloadConfigRequest, for base paths under `models_root` (default: see
        `default_models_root`); `warmup_batch_sizes` replays only those warm-up requests (default: all)."""
        self.store = ModelStore(config, warmup_batch_sizes)
        self.models_dir = models_dir
        self.poll_s = poll_s
        self.config_file = config_file
        self.config_poll_s = config_poll_s
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="serve"),
            options=[
                ("grpc.max_receive_message_length", 64 << 20),
                ("grpc.max_send_message_length", 64 << 20),
                ("grpc.so_reuseport", 0),
            ],
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionServicer(self.store, tensor_content), self.server
        )
        root = (
            models_root if models_root is not None else default_models_root(config, config_file, models_dir)
        )
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(
            ModelServicer(self.store, allow_reload=allow_config_reload, models_root=root), self.server
        )
        try:
            self.port = self.server.add_insecure_port(f"{host}:{port}")
        except RuntimeError:  # grpc's "Failed to bind": in use (SO_REUSEPORT is off, so never shared)
            self.port = 0
        if not self.port:
            raise PortUnavailable(f"cannot listen on {host}:{port}: another process holds the port")
        self.address = f"{host if host not in ('0.0.0.0', '[::]') else '127.0.0.1'}:{self.port}"

    def start(self) -> EmbeddedServer:
        """Load the models (synchronously, like TF Serving before it opens its port), then serve."""
        self.store.refresh()
        self.server.start()
        log.info("serving %d model(s) on port %d", len(self.store.models), self.port)
        if self.poll_s > 0 or (self.config_file and self.config_poll_s > 0):
            if self.poll_s <= 0:
                self.models_dir = None  # no file-system polling at all
            self._poller = threading.Thread(target=self._poll, name="fs-poller", daemon=True)
            self._poller.start()
        return self

    def _poll(self) -> None:
        last_config = time.monotonic()
        tick = min(x for x in (self.poll_s, self.config_poll_s) if x > 0)
        while not self._stop.wait(tick):
            try:
                if (
                    self.config_file
                    and self.config_poll_s > 0
                    and time.monotonic() - last_config >= self.config_poll_s
                ):
                    last_config = time.monotonic()
                    cfg = read_config_file(self.config_file)
                    if cfg != self.store.config:
                        log.info("models config %s changed; reloading", self.config_file)
                        self.store.set_config(cfg)
                        continue
                if self.models_dir is not None:
                    cfg = config_for_models_dir(self.models_dir)
                    if cfg != self.store.config:
                        log.info("members under %s changed; reloading", self.models_dir)
                        self.store.set_config(cfg)
                        continue
                if self.poll_s > 0:
                    self.store.refresh()
            except Exception:
                log.exception("file-system poll failed")

    def stop(self, grace: float | None = 2.0) -> None:
        """Stop polling, finish in-flight requests (up to `grace` seconds) and close."""
        self._stop.set()
        self.server.stop(grace).wait()
        if self._poller is not None:
            self._poller.join(timeout=5)
        log.info("server on port %d stopped", self.port)

    def wait(self) -> None:
        """Block until the server stops."""
        self.server.wait_for_termination()

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
