"""`LocalBackend`: the embedded model server's store called directly, for the process that embeds it.

The bot and `lofi generate` embed our TF-Serving-compatible server when no SERVING_ADDRESS is set. Talking to
it over gRPC on loopback cost as much as the models themselves: a 2-minute track generated in 3.3-4.0 s over
gRPC against 2.0-2.3 s calling the signatures directly (2026-12-01, 2 cores). This backend goes through the
same `ModelStore` (its versions, published-set rule, failed loads and request validation, with TF Serving's
messages) without the network, and gives the same results bit for bit as `ServingClient` (tested). The
members of a step run in parallel threads (TensorFlow releases the GIL). Other processes still reach the
embedded server over gRPC; a separate TF Serving is always reached over gRPC.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar, overload

import grpc
import numpy as np
from tensorflow_serving.apis import get_model_status_pb2, model_pb2

from serving import contract
from serving.backend import ensemble_members, newest_available, parse_manifest, static_window
from serving.errors import BadRequest, ContractError, ModelNotFound, ServingError
from serving.server import ModelStore, RpcError

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
