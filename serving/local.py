"""`LocalBackend`: the embedded model server's store called directly, for the process that embeds it.

The bot and `lofi generate` embed our TF-Serving-compatible server when no SERVING_ADDRESS is set. Talking to
it over gRPC on loopback cost as much as the models themselves: a 2-minute track generated in 3.3-4.0 s over
gRPC against 2.0-2.3 s calling the signatures directly (2026-12-01, 2 cores). This backend goes through the
same `ModelStore` (its versions, published-set rule, failed loads and request validation, with TF Serving's
messages) without the network, and gives the same results bit for bit as `ServingClient` (tested). The
members of a step run in parallel threads (TensorFlow releases the GIL). Other processes still reach the
embedded server over gRPC; a separate TF Serving is always reached over gRPC.

`open_local_backend` sets one up over a models folder with a store of its own (for one command, a test or a
benchmark).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Set
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar, overload

import grpc
import numpy as np
from tensorflow_serving.apis import get_model_status_pb2, model_pb2

from serving import contract
from serving.backend import ensemble_members, newest_available, parse_manifest, static_window
from serving.errors import BadRequest, ContractError, ModelNotFound, ServingError
from serving.server import ModelStore, RpcError, config_for_models_dir

T = TypeVar("T")


def _spec(name: str, version: int | None) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=name)
    if version is not None:
        spec.version.value = version
    return spec


class LocalBackend:
    """A `serving.backend.Backend` (and `model_status`, as the bot's status page uses) over a `ModelStore`."""

    def __init__(self, store: ModelStore, threads: int = 4):
        self.store = store
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="lofi-predict")

    async def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn)
        except RpcError as exc:  # the errors ServingClient maps from the same status codes
            if exc.code == grpc.StatusCode.NOT_FOUND:
                raise ModelNotFound(f"{what}: {exc.message}") from exc
            if exc.code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION):
                raise BadRequest(f"{what}: {exc.message}") from exc
            raise ServingError(f"{what}: {exc.code.name}: {exc.message}") from exc

    def _run(
        self, name: str, version: int, signature: str, inputs: dict[str, np.ndarray], output: str
    ) -> np.ndarray:
        servable = self.store.get(_spec(name, version))
        return servable.run(signature, inputs, [output])[output]

    @overload
    async def model_status(self, name: str, version: int | None = None) -> dict[int, str]: ...
    @overload
    async def model_status(self, name: None = None, version: None = None) -> dict[str, dict[int, str]]: ...
    async def model_status(
        self, name: str | None = None, version: int | None = None
    ) -> dict[int, str] | dict[str, dict[int, str]]:
        """{version: state name} of a model; without a name, {member: {version: state}}."""
        if name is None:
            names = await self.members()
            return {n: await self.model_status(n) for n in names}
        statuses = await self._call(f"status of {name}", lambda: self.store.status(_spec(name, version)))
        states = get_model_status_pb2.ModelVersionStatus.State
        return {s.version: states.Name(s.state) for s in statuses}

    async def latest_versions(self, names: list[str]) -> dict[str, int]:
        """The newest AVAILABLE version of each model."""
        return {name: newest_available(name, await self.model_status(name)) for name in names}

    async def manifest(self, name: str, version: int) -> contract.Manifest:
        """The manifest of one pinned member version (its `manifest` signature)."""
        probe = {contract.MANIFEST_INPUT: np.zeros(1, np.int32)}
        raw = await self._call(
            f"predict {name} v{version}",
            lambda: self._run(name, version, contract.MANIFEST_SIGNATURE, probe, contract.MANIFEST_OUTPUT),
        )
        return parse_manifest(name, version, np.asarray(raw).reshape(-1)[0])

    async def members(self) -> list[str]:
        """Names of the ensemble members, from member 0's manifest."""
        return await ensemble_members(self)

    async def window(self, name: str, version: int) -> int:
        """The static window of a member version's `tokens` input, from its signature."""

        def read() -> list[int]:
            sig = self.store.get(_spec(name, version)).signature_defs.get(contract.SIGNATURE)
            if sig is None or contract.INPUT_TOKENS not in sig.inputs:
                raise ContractError(f"{name} v{version} has no {contract.SIGNATURE}/{contract.INPUT_TOKENS}")
            return [d.size for d in sig.inputs[contract.INPUT_TOKENS].tensor_shape.dim]

        return static_window(name, version, await self._call(f"metadata of {name}", read))

    async def predict(
        self, name: str, version: int, tokens: np.ndarray, cond: np.ndarray, aux: np.ndarray
    ) -> np.ndarray:
        """Next-token probabilities float32 [batch, vocab] from one pinned member version."""
        inputs = {
            contract.INPUT_TOKENS: np.asarray(tokens, np.int32),
            contract.INPUT_COND: np.asarray(cond, np.int32),
            contract.INPUT_AUX: np.asarray(aux, np.int32),
        }
        probs = await self._call(
            f"predict {name} v{version}",
            lambda: self._run(name, version, contract.SIGNATURE, inputs, contract.OUTPUT_PROBS),
        )
        if probs.ndim != 2:
            raise ContractError(
                f"{name} v{version}: no {contract.OUTPUT_PROBS} [batch, vocab] in the response"
            )
        return probs

    async def close(self) -> None:
        """Stop the threads (the store, and the server that owns it, stay up)."""
        self._pool.shutdown(wait=False)


@asynccontextmanager
async def open_local_backend(
    models_dir: str | Path, *, warmup_batch_sizes: Set[int] | None = frozenset({1}), threads: int = 4
) -> AsyncIterator[LocalBackend]:
    """A `LocalBackend` over a `ModelStore` of its own that serves every member under `models_dir`.

    The store loads what the embedded server would (`config_for_models_dir`: complete sets, the newest two
    versions) before this yields; an empty store when nothing loads (its calls raise ModelNotFound, the
    caller may check `backend.store.models`). `warmup_batch_sizes`: the batch sizes whose warm-up requests
    are replayed before (each one an XLA compilation per member): batch 1 by default (one track sends one row
    at a time); None: all of them; an empty set: none (a size compiles on its first call). On exit the threads
    stop; the store has nothing to close (its models go with the last reference to it).
    """
    store = ModelStore(
        config_for_models_dir(models_dir),
        warmup_batch_sizes=None if warmup_batch_sizes is None else set(warmup_batch_sizes),
    )
    if store.config.model_config_list.config:
        await asyncio.to_thread(store.refresh)  # loading and compiling take seconds: not on the event loop
    backend = LocalBackend(store, threads=threads)
    try:
        yield backend
    finally:
        await backend.close()
