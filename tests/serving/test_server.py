"""The embedded server's model lifecycle: polling, load-before-unload, half-written versions, config reloads."""

from __future__ import annotations

import asyncio
import shutil
import time

import numpy as np
import pytest
from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc

from serving.client import ServingClient
from serving.errors import ModelNotFound
from serving.server import EmbeddedServer, config_for_models_dir, config_from_flags
from tests.support.tiny_models import make_tiny_models

MEMBERS = ["lofi_member_0", "lofi_member_1"]


async def _wait_for(client, versions, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await client.model_status("lofi_member_0") == versions:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"status never became {versions}: {await client.model_status('lofi_member_0')}")


async def test_swap_loads_new_version_before_unloading_old(tmp_path, tiny_models):
    models = tmp_path / "m"
    shutil.copytree(tiny_models, models)
    cfg = config_from_flags("lofi_member_0", models / "lofi_member_0")  # latest(1), TF Serving's default
    with EmbeddedServer(cfg, poll_s=0.05) as srv:
        async with ServingClient(srv.address, timeout_s=5, retries=0) as client:
            window = (await client.manifest("lofi_member_0", 1)).window
            tokens, cond = np.zeros((1, window), np.int32), np.zeros((1, 4), np.int32)
            aux = np.zeros((1, 6), np.int32)
            export = asyncio.create_task(asyncio.to_thread(make_tiny_models, models, members=1, version=2))
            answered = []
            while not export.done() or len(answered) < 5 or answered[-1] != 2:
                _, version = await client.predict_raw(
                    "lofi_member_0", {"tokens": tokens, "cond": cond, "aux": aux}
                )
                answered.append(version)  # never fails: latest is always loaded
                assert len(answered) < 20000
            await export
            assert answered[0] == 1 and answered[-1] == 2
            await _wait_for(client, {2: "AVAILABLE"})
            with pytest.raises(ModelNotFound):
                await client.predict("lofi_member_0", 1, tokens, cond, aux)


async def test_half_written_and_non_integer_versions_are_ignored(tmp_path, tiny_models):
    models = tmp_path / "m"
    shutil.copytree(tiny_models, models)
    (models / "lofi_member_0" / "7" / "variables").mkdir(parents=True)  # no saved_model.pb yet
    (models / "lofi_member_0" / "tmp-export").mkdir()
    with EmbeddedServer(config_for_models_dir(models), poll_s=0.05) as srv:
        async with ServingClient(srv.address) as client:
            await asyncio.sleep(0.2)
            assert await client.model_status("lofi_member_0") == {1: "AVAILABLE"}
            assert await client.latest_versions(MEMBERS) == {"lofi_member_0": 1, "lofi_member_1": 1}


async def test_reload_config_request_changes_the_model_list(tiny_models):
    with EmbeddedServer(config_from_flags("lofi_member_0", tiny_models / "lofi_member_0"), poll_s=0) as srv:
        async with ServingClient(srv.address) as client:
            with pytest.raises(ModelNotFound):
                await client.model_status("lofi_member_1")
            req = model_management_pb2.ReloadConfigRequest()
            req.config.CopyFrom(config_for_models_dir(tiny_models))
            stub = model_service_pb2_grpc.ModelServiceStub(client._channel)
            resp = await stub.HandleReloadConfigRequest(req, timeout=30)
            assert resp.status.error_code == 0
            assert await client.model_status() == {m: {1: "AVAILABLE"} for m in MEMBERS}


async def test_new_members_under_a_models_dir_are_discovered(tmp_path, tiny_models):
    models = tmp_path / "m"
    models.mkdir()
    with EmbeddedServer(config_for_models_dir(models), poll_s=0.05, models_dir=models) as srv:
        async with ServingClient(srv.address) as client:
            assert not await client.healthy()
            shutil.copytree(tiny_models / "lofi_member_0", models / "lofi_member_0")
            for _ in range(200):
                if await client.healthy():
                    break
                await asyncio.sleep(0.05)
            assert await client.model_status("lofi_member_0") == {1: "AVAILABLE"}


def test_a_version_is_warmed_up_with_its_warmup_requests_before_serving(tiny_models, tmp_path):
    from serving.server import RpcError, Servable

    path = tiny_models / "lofi_member_0" / "1"
    servable = Servable.load("lofi_member_0", 1, path)
    assert servable.warm_up() == 2  # the export writes batch sizes 1 and 4

    # A warm-up request the model cannot run fails the load, so an older version would keep serving.
    broken = tmp_path / "1"
    shutil.copytree(path, broken)
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    req = predict_pb2.PredictRequest()
    req.model_spec.name = "lofi_member_0"
    req.inputs["tokens"].CopyFrom(tf.make_tensor_proto(np.zeros((1, 3), np.int32)))  # wrong window
    req.inputs["cond"].CopyFrom(tf.make_tensor_proto(np.zeros((1, 4), np.int32)))
    req.inputs["aux"].CopyFrom(tf.make_tensor_proto(np.zeros((1, 6), np.int32)))
    entry = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=req))
    with tf.io.TFRecordWriter(str(broken / "assets.extra" / "tf_serving_warmup_requests")) as w:
        w.write(entry.SerializeToString())
    with pytest.raises(RpcError, match="shape"):
        Servable.load("lofi_member_0", 1, broken)
