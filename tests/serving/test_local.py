"""LocalBackend: the embedded server's store called directly answers exactly as the same server over gRPC;
`open_local_backend` sets one up over a models folder."""

from __future__ import annotations

import numpy as np
import pytest

from compose.loop import generate
from music.request import TrackRequest, plan_track
from serving.client import ServingClient
from serving.errors import BadRequest, ModelNotFound
from serving.local import LocalBackend, open_local_backend


async def test_same_tokens_status_and_metadata_as_grpc_to_the_same_server(tiny_server):
    plan = plan_track(TrackRequest(16, "rainy", 4))
    local = LocalBackend(tiny_server.store)
    try:
        async with ServingClient(tiny_server.address) as client:
            remote = await generate(client, plan, n=3)  # 3 rows: padded to 4 on both paths
            assert (await generate(local, plan, n=3)).tokens == remote.tokens
            assert await local.model_status() == await client.model_status()
            assert await local.members() == await client.members()
            assert await local.latest_versions(["lofi_member_0"]) == await client.latest_versions(
                ["lofi_member_0"]
            )
            assert await local.window("lofi_member_1", 1) == await client.window("lofi_member_1", 1)
            assert await local.manifest("lofi_member_0", 1) == await client.manifest("lofi_member_0", 1)
    finally:
        await local.close()


async def test_errors_are_the_clients_errors_with_tf_servings_messages(tiny_server):
    local = LocalBackend(tiny_server.store)
    try:
        window = (await local.manifest("lofi_member_0", 1)).window
        ok = (np.zeros((1, window), np.int32), np.zeros((1, 4), np.int32), np.zeros((1, 6), np.int32))
        with pytest.raises(ModelNotFound, match=r"Specific\(lofi_member_0, 7\)"):
            await local.predict("lofi_member_0", 7, *ok)  # a version the store does not serve
        with pytest.raises(BadRequest, match="shape"):
            await local.predict("lofi_member_0", 1, np.zeros((1, 3), np.int32), *ok[1:])
        with pytest.raises(ModelNotFound):
            await local.latest_versions(["no_such_model"])
        probs = await local.predict("lofi_member_0", 1, *ok)
        assert (
            probs.shape[0] == 1 and probs.dtype == np.float32 and probs.sum() == pytest.approx(1.0, abs=1e-4)
        )
    finally:
        await local.close()


async def test_open_local_backend_serves_a_folder_as_the_server_does(tiny_models, tiny_server):
    """A store of its own (batch 1 compiled before, other sizes on their first call) gives the server's
    tokens bit for bit, and its threads stop on exit."""
    plan = plan_track(TrackRequest(16, "chill", 2))
    async with open_local_backend(tiny_models) as local:
        assert local.store is not tiny_server.store
        assert await local.model_status() == {m: {1: "AVAILABLE"} for m in ("lofi_member_0", "lofi_member_1")}
        mine = await generate(local, plan, n=3)
    async with ServingClient(tiny_server.address) as client:
        assert mine.tokens == (await generate(client, plan, n=3)).tokens
    with pytest.raises(RuntimeError, match="shutdown"):
        await local.predict(
            "lofi_member_0",
            1,
            np.zeros((1, 16), np.int32),
            np.zeros((1, 4), np.int32),
            np.zeros((1, 6), np.int32),
        )


async def test_open_local_backend_over_a_folder_without_models_serves_nothing(tmp_path):
    async with open_local_backend(tmp_path / "missing") as local:
        assert not local.store.models
        with pytest.raises(ModelNotFound):
            await local.members()
