"""The embedded server's model lifecycle: polling, load-before-unload, half-written versions, config reloads."""

from __future__ import annotations

import asyncio
import shutil
import time

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc
from tensorflow_serving.config import model_server_config_pb2

from serving import contract
from serving.backend import version_dirs
from serving.client import ServingClient
from serving.errors import ModelNotFound, ServingError
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
    cfg = config_from_flags("lofi_member_0", tiny_models / "lofi_member_0")
    with EmbeddedServer(cfg, poll_s=0, allow_config_reload=True) as srv:
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
            with pytest.raises(ModelNotFound):
                await client.latest_versions(MEMBERS)
            # a whole ensemble arrives (the marker last, as an export writes it)
            for m in reversed(MEMBERS):
                shutil.copytree(tiny_models / m, models / m)
            shutil.copytree(tiny_models / contract.PUBLISHED_DIR, models / contract.PUBLISHED_DIR)
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                try:
                    await client.latest_versions(MEMBERS)
                    break
                except ServingError:
                    await asyncio.sleep(0.1)
            assert await client.model_status("lofi_member_0") == {1: "AVAILABLE"}


def test_a_version_is_warmed_up_with_its_warmup_requests_before_serving(tiny_models, tmp_path):
    from serving.server import RpcError, Servable

    path = tiny_models / "lofi_member_0" / "1"
    servable = Servable.load("lofi_member_0", 1, path)
    assert servable.warm_up() == len(contract.BATCH_SIZES)  # one request per size the client pads to
    assert servable.warm_up(batch_sizes={1}) == 1  # a one-shot server compiles only what it will use

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


def test_warmup_records_are_read_like_tf_data_reads_them_and_a_truncated_file_fails(tiny_models, tmp_path):
    import tensorflow as tf

    from serving.server import read_tfrecords

    path = tiny_models / "lofi_member_0" / "1" / contract.WARMUP_FILE
    assert read_tfrecords(path, 1000) == list(tf.data.TFRecordDataset(str(path)).as_numpy_iterator())
    assert len(read_tfrecords(path, 2)) == 2
    cut = tmp_path / "cut"
    cut.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(ValueError, match="past the end"):
        read_tfrecords(cut, 1000)


# ------------------------------------------------------------------ availability (issue 14) and versions (15)
def _publish_marker(models, version, members=2):
    (models / contract.PUBLISHED_DIR).mkdir(exist_ok=True)
    (models / contract.PUBLISHED_DIR / str(version)).write_text(f'{{"members": {members}}}')


def _corrupt_version(models, version, how):
    """A published version that cannot load: truncated variables, or a saved_model.pb that is garbage."""
    for m in MEMBERS:
        # made aside and renamed into place, as an export publishes: a poll that saw it half-written would
        # fail on other files than the finished version's, and try again (rightly) once they change
        staging = models / m / f".tmp-{version}"
        shutil.copytree(models / m / "1", staging)
        if how == "truncated":
            for f in (staging / "variables").glob("variables.data-*"):
                f.write_bytes(f.read_bytes()[:10])
        else:
            (staging / "saved_model.pb").write_bytes(b"not a saved model")
        staging.rename(models / m / str(version))
    _publish_marker(models, version)


async def _still(client, versions, polls=0.5):
    await asyncio.sleep(polls)
    assert await client.model_status() == {m: versions for m in MEMBERS}


async def _logged(caplog, text: str, timeout_s: float = 60.0) -> None:
    """Wait until a log record contains `text` (the poll thread gets to it in its own time on a busy machine)."""
    deadline = time.monotonic() + timeout_s
    while not any(text in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, f"nothing logged {text!r} within {timeout_s:.0f} s"
        await asyncio.sleep(0.05)


async def test_corrupt_newest_versions_never_take_the_served_version_down(tmp_path, tiny_models, caplog):
    models = tmp_path / "m"
    shutil.copytree(tiny_models, models)
    _corrupt_version(models, 2, "truncated")  # two newest versions broken, latest(2) policy
    _corrupt_version(models, 3, "garbage")
    with EmbeddedServer(config_for_models_dir(models), poll_s=0.05) as srv:
        async with ServingClient(srv.address, timeout_s=5, retries=0) as client:
            await _still(client, {1: "AVAILABLE"})
            assert await client.latest_versions(MEMBERS) == {m: 1 for m in MEMBERS}
            window = (await client.manifest("lofi_member_0", 1)).window
            await client.predict(
                "lofi_member_0", 1, np.zeros((1, window), np.int32), np.zeros((1, 4), np.int32),
                np.zeros((1, 6), np.int32),
            )  # fmt: skip
            # a retrain publishing a broken export while serving: still version 1, once the poll has tried it
            _corrupt_version(models, 4, "garbage")
            await _logged(caplog, "failed to load lofi_member_0 version 4")
            await _still(client, {1: "AVAILABLE"})
            # retried on every poll: once version 4 is whole, it loads and joins version 1
            for m in MEMBERS:  # the whole version made aside, then swapped in (no half-copied one to try)
                shutil.copytree(models / m / "1", models / m / ".tmp-4")
                # the broken one moved aside at once: a poll must never see it half deleted (its files
                # changed: tried again, a second failure logged; seen in a clean-clone CI run)
                (models / m / "4").rename(models / m / ".tmp-old-4")
                (models / m / ".tmp-4").rename(models / m / "4")
                shutil.rmtree(models / m / ".tmp-old-4")
            deadline = time.monotonic() + 180  # loading is slow on a busy 2-core machine
            while time.monotonic() < deadline:
                if await client.model_status() == {m: {4: "AVAILABLE", 1: "AVAILABLE"} for m in MEMBERS}:
                    break
                await asyncio.sleep(0.1)
            assert await client.model_status() == {m: {4: "AVAILABLE", 1: "AVAILABLE"} for m in MEMBERS}
    failures = [
        r.getMessage().split(" from ")[0]
        for r in caplog.records
        if r.levelname == "ERROR" and "failed to load" in r.getMessage()
    ]
    # logged once per broken version and member (not once per poll); the members load in parallel, so a
    # sibling may try the same broken version once too
    assert {int(f.rsplit(" ", 1)[1]) for f in failures} == {2, 3, 4}
    assert "failed to load lofi_member_0 version 4" in failures
    assert len(failures) == len(set(failures))


async def test_a_version_one_member_cannot_load_is_served_by_none(tmp_path, tiny_models):
    models = tmp_path / "m"
    shutil.copytree(tiny_models, models)
    for m in MEMBERS:
        shutil.copytree(models / m / "1", models / m / "2")
    (models / "lofi_member_1" / "2" / "saved_model.pb").write_bytes(b"broken")
    _publish_marker(models, 2)
    cfg = config_for_models_dir(models, num_versions=1)
    with EmbeddedServer(cfg, poll_s=0) as srv:
        async with ServingClient(srv.address) as client:
            assert await client.model_status() == {m: {1: "AVAILABLE"} for m in MEMBERS}


def _half_published(models):
    """What a crash between the renames of a publish leaves: member 0 at version 2, member 1 not."""
    shutil.copytree(models / "lofi_member_0" / "1", models / "lofi_member_0" / "2")


@pytest.mark.parametrize("markers", [True, False], ids=["published-markers", "legacy-no-markers"])
async def test_a_half_published_version_is_served_by_nobody(tmp_path, tiny_models, markers):
    from serving.local import open_local_backend
    from training.export import latest_version

    models = tmp_path / "m"
    shutil.copytree(tiny_models, models)
    if not markers:
        shutil.rmtree(models / contract.PUBLISHED_DIR, ignore_errors=True)
    else:
        _publish_marker(models, 1)
    _half_published(models)
    assert latest_version(models) == 1
    async with open_local_backend(models, warmup_batch_sizes=frozenset()) as local:
        assert await local.latest_versions(MEMBERS) == {m: 1 for m in MEMBERS}
    with EmbeddedServer(config_for_models_dir(models), poll_s=0.05) as srv:
        async with ServingClient(srv.address) as client:
            await _still(client, {1: "AVAILABLE"}, polls=0.3)
            # the rest of the publish lands, marker last: now version 2 is one complete set
            shutil.copytree(models / "lofi_member_1" / "1", models / "lofi_member_1" / "2")
            if markers:
                await _still(client, {1: "AVAILABLE"}, polls=0.3)
                _publish_marker(models, 2)
            deadline = time.monotonic() + 180  # loading is slow on a busy 2-core machine
            while time.monotonic() < deadline:
                if await client.latest_versions(MEMBERS) == {m: 2 for m in MEMBERS}:
                    break
                await asyncio.sleep(0.1)
            assert await client.latest_versions(MEMBERS) == {m: 2 for m in MEMBERS}
    assert latest_version(models) == 2


def test_a_publish_crashing_between_renames_publishes_no_version(tmp_path, monkeypatch):
    from tests.support.tiny_models import tiny_members
    from training import export

    models = [m for m, _ in tiny_members(2, seed=0, window=8, hidden=8, train_steps=0)]
    assert export.export_ensemble(models, tmp_path) == 1
    real_rename, calls = export.os.rename, []

    def crash_on_second(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("killed")
        real_rename(src, dst)

    monkeypatch.setattr(export.os, "rename", crash_on_second)
    with pytest.raises(OSError):
        export.export_ensemble(models, tmp_path)
    assert (tmp_path / "lofi_member_0" / "2").is_dir() and not (tmp_path / "lofi_member_1" / "2").exists()
    assert export.latest_version(tmp_path) == 1
    assert version_dirs(tmp_path / "lofi_member_0") == {1: tmp_path / "lofi_member_0" / "1"}
    monkeypatch.setattr(export.os, "rename", real_rename)
    assert export.export_ensemble(models, tmp_path) == 3
    assert (tmp_path / contract.PUBLISHED_DIR / "3").is_file()
    assert export.latest_version(tmp_path) == 3


# ------------------------------------------------------------------ security (issue 15)
def test_lofi_serve_binds_loopback_unless_widened():
    from lofi.cli import build_parser

    assert build_parser().parse_args(["serve"]).host == "127.0.0.1"
    assert build_parser().parse_args(["serve", "--host", "0.0.0.0"]).host == "0.0.0.0"
    assert build_parser().parse_args(["serve"]).enable_model_config_reload is False


async def _reload(client, config):
    req = model_management_pb2.ReloadConfigRequest()
    req.config.CopyFrom(config)
    stub = model_service_pb2_grpc.ModelServiceStub(client._channel)
    return await stub.HandleReloadConfigRequest(req, timeout=30)


async def test_config_reloads_are_refused_unless_enabled(tiny_models):
    with EmbeddedServer(config_for_models_dir(tiny_models), poll_s=0) as srv:
        assert srv.address.startswith("127.0.0.1:")
        async with ServingClient(srv.address) as client:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await _reload(client, model_server_config_pb2.ModelServerConfig(model_config_list={}))
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "--enable_model_config_reload" in err.value.details()
            assert await client.model_status() == {m: {1: "AVAILABLE"} for m in MEMBERS}


async def test_a_reload_may_only_name_folders_under_the_models_root(tiny_models, tmp_path):
    cfg = config_for_models_dir(tiny_models)
    with EmbeddedServer(cfg, poll_s=0, allow_config_reload=True, models_dir=tiny_models) as srv:
        async with ServingClient(srv.address) as client:
            for outside in ("/etc", str(tiny_models / ".." / tmp_path.name), "relative/path"):
                bad = model_server_config_pb2.ModelServerConfig()
                bad.model_config_list.config.add(name="lofi_member_0", base_path=outside)
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await _reload(client, bad)
                assert err.value.code() in (
                    grpc.StatusCode.PERMISSION_DENIED,
                    grpc.StatusCode.INVALID_ARGUMENT,
                )
            assert await client.model_status() == {m: {1: "AVAILABLE"} for m in MEMBERS}
            resp = await _reload(client, cfg)  # inside the root: allowed
            assert resp.status.error_code == 0


def test_a_version_that_failed_is_not_loaded_again_until_its_files_change(tmp_path, tiny_models, monkeypatch):
    """Each try of a broken version cost seconds of CPU and grew the process: it is tried once, then again
    only when its files change."""
    from serving.server import ModelStore, Servable

    models = tmp_path / "m"
    shutil.copytree(tiny_models, models)
    _corrupt_version(models, 2, "garbage")
    tries: list[tuple[str, int]] = []
    load = Servable.load

    def counting(name, version, path, *args, **kwargs):
        tries.append((name, version))
        return load(name, version, path, *args, **kwargs)

    monkeypatch.setattr(Servable, "load", staticmethod(counting))
    store = ModelStore(config_for_models_dir(models), warmup_batch_sizes=set())
    for _ in range(4):  # four polls
        store.refresh()
    assert {m: set(store.models[m]) for m in MEMBERS} == {m: {1} for m in MEMBERS}
    assert sorted(tries) == sorted([(m, 1) for m in MEMBERS] + [(m, 2) for m in MEMBERS])
    for m in MEMBERS:  # the retrain writes version 2 again, whole this time
        shutil.rmtree(models / m / "2")
        shutil.copytree(models / m / "1", models / m / "2")
    store.refresh()
    assert {m: set(store.models[m]) for m in MEMBERS} == {m: {1, 2} for m in MEMBERS}
