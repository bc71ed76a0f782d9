"""Async client of TF Serving (or the embedded server) over gRPC, with deadlines, retries and version pinning.

The channel is created lazily inside the running event loop (never at import). Every call carries a deadline;
UNAVAILABLE and DEADLINE_EXCEEDED are retried with exponential backoff a bounded number of times and then raised
as `ServingUnavailable` / `ServingTimeout`; NOT_FOUND becomes `ModelNotFound`, INVALID_ARGUMENT `BadRequest`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any, overload

import grpc
import numpy as np
from google.protobuf.message import Message
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving import contract
from serving.backend import (
    array_to_tensor,
    ensemble_members,
    newest_available,
    parse_manifest,
    static_window,
    tensor_to_array,
)
from serving.errors import (
    BadRequest,
    ContractError,
    ModelNotFound,
    ServingError,
    ServingTimeout,
    ServingUnavailable,
)

log = logging.getLogger(__name__)

RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class ServingClient:
    """TF Serving's PredictionService and ModelService for the ensemble; implements `serving.backend.Backend`.

    Args:
        address: host:port of the gRPC endpoint.
        timeout_s: deadline of each call.
        retries: extra attempts after a retryable failure (so at most `retries + 1` calls).
        backoff_s: first backoff delay; doubles after each retry.
    """

    def __init__(
        self,
        address: str,
        *,
        timeout_s: float = 5.0,
        retries: int = 3,
        backoff_s: float = 0.1,
        max_backoff_s: float = 2.0,
    ):
        self.address = address
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._channel: grpc.aio.Channel | None = None
        self._predict: prediction_service_pb2_grpc.PredictionServiceStub | None = None
        self._model: model_service_pb2_grpc.ModelServiceStub | None = None
        # (name, version) -> Predict responses, as reported by the server
        self.served: Counter[tuple[str, int]] = Counter()

    def _stubs(
        self,
    ) -> tuple[prediction_service_pb2_grpc.PredictionServiceStub, model_service_pb2_grpc.ModelServiceStub]:
        if self._channel is None:
            # Made here, inside the running loop, because a grpc.aio channel binds to the loop that creates it.
            asyncio.get_running_loop()
            self._channel = grpc.aio.insecure_channel(
                self.address,
                options=[
                    ("grpc.max_receive_message_length", 64 << 20),
                    ("grpc.enable_retries", 0),
                    # one address may name several TF Serving replicas (DNS): spread the calls over all of them
                    ("grpc.lb_policy_name", "round_robin"),
                ],
            )
            self._predict = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
            self._model = model_service_pb2_grpc.ModelServiceStub(self._channel)
        return self._predict, self._model

    async def close(self) -> None:
        """Close the channel (a later call opens a new one)."""
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    async def __aenter__(self) -> ServingClient:
        self._stubs()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, method: str, request: Message, what: str, timeout_s: float | None = None) -> Any:
        """One RPC with a deadline and bounded retries, errors mapped to the domain; its response message
        (tensorflow_serving's protobufs have no type stubs, hence Any)."""
        delay = self.backoff_s
        timeout = timeout_s or self.timeout_s
        for attempt in range(self.retries + 1):
            predict, model = self._stubs()
            stub = predict if method in ("Predict", "GetModelMetadata") else model
            try:
                return await getattr(stub, method)(request, timeout=timeout)
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
                if code in RETRYABLE and attempt < self.retries:
                    log.debug(
                        "%s: %s (%s), retry %d in %.2fs", what, code.name, exc.details(), attempt + 1, delay
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.max_backoff_s)
                    continue
                tries = f"after {attempt + 1} attempt(s)"
                if code == grpc.StatusCode.UNAVAILABLE:
                    raise ServingUnavailable(
                        f"model server {self.address} is unavailable ({what}, {tries}): {exc.details()}"
                    ) from exc
                if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    raise ServingTimeout(
                        f"model server {self.address} did not answer within {timeout:g}s ({what}, {tries})"
                    ) from exc
                if code == grpc.StatusCode.NOT_FOUND:
                    raise ModelNotFound(f"{what}: {exc.details()}") from exc
                if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION):
                    raise BadRequest(f"{what}: {exc.details()}") from exc
                raise ServingError(f"{what}: {code.name}: {exc.details()}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------ ModelService
    @overload
    async def model_status(self, name: str, version: int | None = None) -> dict[int, str]: ...
    @overload
    async def model_status(self, name: None = None, version: None = None) -> dict[str, dict[int, str]]: ...
    async def model_status(
        self, name: str | None = None, version: int | None = None
    ) -> dict[int, str] | dict[str, dict[int, str]]:
        """{version: state name} of a model, from GetModelStatus; without a name, {member: {version: state}}."""
        if name is None:
            names = await self.members()
            states = await asyncio.gather(*(self.model_status(n) for n in names))
            return dict(zip(names, states, strict=True))
        req = get_model_status_pb2.GetModelStatusRequest()
        req.model_spec.name = name
        if version is not None:
            req.model_spec.version.value = version
        resp = await self._call("GetModelStatus", req, f"status of {name}")
        states = get_model_status_pb2.ModelVersionStatus.State
        return {s.version: states.Name(s.state) for s in resp.model_version_status}

    async def latest_versions(self, names: list[str]) -> dict[str, int]:
        """The newest AVAILABLE version of each model (the version a track will be pinned to)."""
        statuses = await asyncio.gather(*(self.model_status(n) for n in names))
        return {name: newest_available(name, st) for name, st in zip(names, statuses, strict=True)}

    # ------------------------------------------------------------ PredictionService
    async def metadata(self, name: str, version: int | None = None) -> get_model_metadata_pb2.SignatureDefMap:
        """The SignatureDefMap of a model version (GetModelMetadata)."""
        req = get_model_metadata_pb2.GetModelMetadataRequest()
        req.model_spec.name = name
        if version is not None:
            req.model_spec.version.value = version
        req.metadata_field.append("signature_def")
        resp = await self._call("GetModelMetadata", req, f"metadata of {name}")
        sdm = get_model_metadata_pb2.SignatureDefMap()
        resp.metadata["signature_def"].Unpack(sdm)
        return sdm

    async def window(self, name: str, version: int) -> int:
        """The static window (second dimension of `tokens`) of a member version, from its metadata."""
        sdm = await self.metadata(name, version)
        sig = sdm.signature_def.get(contract.SIGNATURE)
        if sig is None or contract.INPUT_TOKENS not in sig.inputs:
            raise ContractError(f"{name} v{version} has no {contract.SIGNATURE}/{contract.INPUT_TOKENS}")
        return static_window(
            name, version, [d.size for d in sig.inputs[contract.INPUT_TOKENS].tensor_shape.dim]
        )

    async def predict_raw(
        self,
        name: str,
        inputs: dict[str, np.ndarray],
        *,
        version: int | None = None,
        signature: str = contract.SIGNATURE,
        outputs: list[str] | None = None,
        timeout_s: float | None = None,
    ) -> tuple[dict[str, np.ndarray], int]:
        """Any Predict: ({output: array}, version that answered)."""
        req = predict_pb2.PredictRequest()
        req.model_spec.name = name
        req.model_spec.signature_name = signature
        if version is not None:
            req.model_spec.version.value = version
        for k, v in inputs.items():
            array_to_tensor(v, proto=req.inputs[k])
        req.output_filter.extend(outputs or [])
        what = f"predict {name}" + (f" v{version}" if version is not None else "")
        resp = await self._call("Predict", req, what, timeout_s)
        return {k: tensor_to_array(t) for k, t in resp.outputs.items()}, resp.model_spec.version.value

    async def predict(
        self, name: str, version: int, tokens: np.ndarray, cond: np.ndarray, aux: np.ndarray
    ) -> np.ndarray:
        """Next-token probabilities float32 [batch, vocab] from one pinned member version."""
        out, served = await self.predict_raw(
            name,
            {
                contract.INPUT_TOKENS: np.asarray(tokens, np.int32),
                contract.INPUT_COND: np.asarray(cond, np.int32),
                contract.INPUT_AUX: np.asarray(aux, np.int32),
            },
            version=version,
            outputs=[contract.OUTPUT_PROBS],
        )
        self.served[(name, served)] += 1
        probs = out.get(contract.OUTPUT_PROBS)
        if probs is None or probs.ndim != 2:
            raise ContractError(
                f"{name} v{version}: no {contract.OUTPUT_PROBS} [batch, vocab] in the response"
            )
        return probs

    async def manifest(self, name: str, version: int) -> contract.Manifest:
        """The manifest of one pinned member version, over gRPC (the `manifest` signature)."""
        out, _ = await self.predict_raw(
            name,
            {contract.MANIFEST_INPUT: np.zeros(1, np.int32)},
            version=version,
            signature=contract.MANIFEST_SIGNATURE,
        )
        raw = out.get(contract.MANIFEST_OUTPUT)
        if raw is None:
            raise ContractError(
                f"{name} v{version}: the manifest signature returned no {contract.MANIFEST_OUTPUT}"
            )
        return parse_manifest(name, version, raw.reshape(-1)[0])

    async def members(self) -> list[str]:
        """Names of the ensemble members, from member 0's manifest."""
        return await ensemble_members(self)
