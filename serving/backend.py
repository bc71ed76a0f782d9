"""The interface generation talks to (`Backend`), what its implementations share, numpy <-> TensorProto helpers,
and the SavedModel loading and version folders the embedded server builds on.

Two backends implement it: `serving.client.ServingClient` (gRPC, to TF Serving or the embedded server) and
`serving.local.LocalBackend` (the embedded server's store called directly, in the process that embeds it; tests
and benchmarks get one over a models folder from `serving.local.open_local_backend`). A test checks that both
give the same tokens bit for bit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np
import numpy.typing as npt

from serving import contract
from serving.errors import ContractError, ModelNotFound

if TYPE_CHECKING:  # tensorflow is imported where it is used: importing it costs ~2 s
    import tensorflow as tf
    from tensorflow.core.framework.tensor_pb2 import TensorProto
    from tensorflow.core.framework.types_pb2 import DataType


class Backend(Protocol):
    """What the generation loop (`compose`) needs from a model server."""

    async def members(self) -> list[str]:
        """Names of the ensemble members (from member 0's manifest)."""

    async def latest_versions(self, names: list[str]) -> dict[str, int]:
        """The newest available version of each model."""

    async def manifest(self, name: str, version: int) -> contract.Manifest:
        """The manifest of one pinned model version."""

    async def predict(
        self, name: str, version: int, tokens: np.ndarray, cond: np.ndarray, aux: np.ndarray
    ) -> np.ndarray:
        """Next-token probabilities float32 [batch, vocab] from one pinned model version."""

    async def window(self, name: str, version: int) -> int:
        """The static token window of one pinned version's signature (checked against its manifest)."""

    async def close(self) -> None:
        """Release connections or models."""


# ------------------------------------------------------------------ what every backend answers alike
async def ensemble_members(backend: Backend) -> list[str]:
    """Names of the ensemble members, from the manifest of member 0's newest version."""
    name = contract.model_name(0)
    v = (await backend.latest_versions([name]))[name]
    return [contract.model_name(i) for i in range((await backend.manifest(name, v)).members)]


def newest_available(name: str, states: dict[int, str]) -> int:
    """The newest AVAILABLE version in a {version: state} status; ModelNotFound if there is none."""
    avail = [v for v, s in states.items() if s == "AVAILABLE"]
    if not avail:
        raise ModelNotFound(f"model {name} has no AVAILABLE version ({states})")
    return max(avail)


def parse_manifest(name: str, version: int, raw: str | bytes) -> contract.Manifest:
    """A member version's manifest from what its `manifest` signature returned; ContractError if malformed."""
    try:
        return contract.Manifest.from_json(raw)
    except (ValueError, TypeError) as exc:
        raise ContractError(f"{name} v{version}: malformed manifest: {exc}") from exc


def static_window(name: str, version: int, dims: Sequence[int | None]) -> int:
    """The window (second dimension) of a `tokens` input shape; ContractError unless it is a fixed size."""
    window = dims[1] if len(dims) == 2 else None
    if not window or window <= 0:
        raise ContractError(f"{name} v{version}: {contract.INPUT_TOKENS} has no static window: {dims}")
    return int(window)


# ------------------------------------------------------------------ TensorProto <-> numpy
# DataType -> (numpy scalar type, the TensorProto field holding values of it)
_NP_OF: dict[DataType.ValueType, tuple[type[np.generic], str]] | None = None


def _np_of() -> dict[DataType.ValueType, tuple[type[np.generic], str]]:
    global _NP_OF
    if _NP_OF is None:
        from tensorflow.core.framework import types_pb2 as t

        _NP_OF = {
            t.DT_FLOAT: (np.float32, "float_val"),
            t.DT_DOUBLE: (np.float64, "double_val"),
            t.DT_INT32: (np.int32, "int_val"),
            t.DT_INT64: (np.int64, "int64_val"),
            t.DT_INT16: (np.int16, "int_val"),
            t.DT_INT8: (np.int8, "int_val"),
            t.DT_UINT8: (np.uint8, "int_val"),
            t.DT_BOOL: (np.bool_, "bool_val"),
            t.DT_HALF: (np.float16, "half_val"),
        }
    return _NP_OF


def tensor_to_array(proto: TensorProto) -> np.ndarray:
    """A TensorProto as a numpy array, whether it carries `tensor_content` or typed `*_val` fields."""
    from tensorflow.core.framework import types_pb2

    shape = tuple(d.size for d in proto.tensor_shape.dim)
    size = math.prod(shape)  # (math.prod: np.prod costs ~10 us, on every tensor of every step)
    if proto.dtype == types_pb2.DT_STRING:
        vals = list(proto.string_val)
        arr = np.empty(len(vals), dtype=object)
        arr[:] = vals
        if len(vals) == 1 and size != 1:
            arr = np.full(size, vals[0], dtype=object)
        return arr.reshape(shape)
    spec = _np_of().get(proto.dtype)
    if spec is None:  # rare dtypes: let TensorFlow do it
        import tensorflow as tf

        return cast(np.ndarray, tf.make_ndarray(proto))
    dtype, field = spec
    if proto.tensor_content:
        return np.frombuffer(proto.tensor_content, dtype=dtype).reshape(shape)
    vals = getattr(proto, field)
    if dtype == np.float16:
        arr = np.asarray(vals, dtype=np.uint16).view(np.float16)
    else:
        arr = np.asarray(vals, dtype=dtype)
    if arr.size != size:
        # TF semantics: fewer values than elements repeat the last one.
        arr = np.full(size, arr[-1] if arr.size else 0, dtype=dtype)
    return arr.reshape(shape)


def array_to_tensor(
    arr: npt.ArrayLike, *, content: bool = True, proto: TensorProto | None = None
) -> TensorProto:
    """A numpy array as a TensorProto: raw `tensor_content` (fast) or typed `*_val` fields (TF Serving's default)."""
    from tensorflow.core.framework import tensor_pb2, types_pb2

    proto = proto if proto is not None else tensor_pb2.TensorProto()
    arr = np.asarray(arr)
    for d in arr.shape:
        proto.tensor_shape.dim.add().size = d
    if arr.dtype.kind in "OSU":
        proto.dtype = types_pb2.DT_STRING
        proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode() for v in arr.reshape(-1))
        return proto
    dt = {np.dtype(v[0]): k for k, v in _np_of().items()}
    dt[np.dtype(np.int16)] = types_pb2.DT_INT16
    dt[np.dtype(np.int8)] = types_pb2.DT_INT8
    code = dt.get(arr.dtype)
    if code is None:
        import tensorflow as tf

        proto.CopyFrom(tf.make_tensor_proto(arr))
        return proto
    proto.dtype = code
    if content:
        proto.tensor_content = np.ascontiguousarray(arr).tobytes()
    else:
        field = _np_of()[code][1]
        if arr.dtype == np.float16:
            getattr(proto, field).extend(arr.view(np.uint16).reshape(-1).tolist())
        else:
            getattr(proto, field).extend(arr.reshape(-1).tolist())
    return proto


# ------------------------------------------------------------------ loaded SavedModels
class Signature(Protocol):
    """One signature of a loaded SavedModel (a concrete function), as far as serving uses it."""

    @property
    def structured_input_signature(self) -> tuple[tuple[Any, ...], dict[str, tf.TensorSpec]]:
        """(positional specs, {input name: TensorSpec})."""

    def __call__(self, **inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        """Run the signature: {output name: tensor}."""


class SavedModel(Protocol):
    """What `tf.saved_model.load` returns, as far as serving uses it (its stubs leave the signatures untyped)."""

    @property
    def signatures(self) -> Mapping[str, Signature]:
        """The signatures by name."""


def load_saved_model(path: Path, tags: list[str] | None = None) -> SavedModel:
    """`tf.saved_model.load` of a SavedModel folder."""
    import tensorflow as tf

    return cast(SavedModel, tf.saved_model.load(str(path), tags=tags))


# ------------------------------------------------------------------ version folders
MEMBER_DIR = re.compile(rf"^{re.escape(contract.MODEL_PREFIX)}_\d+$")


def version_dirs(base: Path) -> dict[int, Path]:
    """Complete integer version folders under `base` (a folder without saved_model.pb is half-written).

    For an ensemble member (`lofi_member_<i>` beside its siblings) only versions of complete sets count
    (`serving.contract.complete_versions`), so a half-published retrain never mixes versions; any other model is served as
    TF Serving would.
    """
    base = Path(base)
    dirs = contract.saved_models(base)
    if not dirs or not MEMBER_DIR.match(base.name):
        return dirs
    complete = set(contract.complete_versions(base.parent))
    return {v: p for v, p in dirs.items() if v in complete}
