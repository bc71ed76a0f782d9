"""The exported layout, checked with TensorFlow's and TF Serving's own loaders and protos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

from music.tokens import Representation
from serving import contract
from tests.support.tiny_models import make_tiny_models, tiny_members
from training import export


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, int]:
    d = tmp_path_factory.mktemp("models")
    return d, make_tiny_models(d, members=2, seed=0, window=12, hidden=8)


def test_layout_has_one_integer_version_per_member(exported):
    d, version = exported
    assert version == 1
    for i in range(2):
        member = d / contract.model_name(i)
        assert [p.name for p in member.iterdir()] == ["1"]
        assert (member / "1" / "saved_model.pb").is_file()
        assert (member / "1" / contract.MANIFEST_FILE).is_file()
        assert (member / "1" / contract.WARMUP_FILE).is_file()


def test_signatures_match_the_contract(exported):
    d, _ = exported
    loaded = tf.saved_model.load(str(d / contract.model_name(0) / "1"))
    sig = loaded.signatures[contract.SIGNATURE]
    _, inputs = sig.structured_input_signature
    assert set(inputs) == {contract.INPUT_TOKENS, contract.INPUT_COND, contract.INPUT_AUX}
    assert inputs[contract.INPUT_AUX].shape.as_list() == [None, contract.AUX_LEN]
    assert inputs[contract.INPUT_TOKENS].dtype == tf.dtypes.as_dtype(contract.TOKENS_DTYPE)
    assert inputs[contract.INPUT_TOKENS].shape.as_list() == [None, 12]
    assert inputs[contract.INPUT_COND].shape.as_list() == [None, contract.COND_LEN]
    assert inputs[contract.INPUT_COND].dtype == tf.int32
    assert set(sig.structured_outputs) == {contract.OUTPUT_PROBS}
    assert sig.structured_outputs[contract.OUTPUT_PROBS].dtype == tf.dtypes.as_dtype(contract.PROBS_DTYPE)
    out = sig(
        tokens=tf.zeros([3, 12], tf.int32),
        cond=tf.constant([[4, 6, 23, 30]] * 3),
        aux=tf.zeros([3, contract.AUX_LEN], tf.int32),
    )[contract.OUTPUT_PROBS]
    assert out.shape == (3, len(Representation().vocab))
    np.testing.assert_allclose(out.numpy().sum(axis=1), 1.0, rtol=1e-5)


def test_manifest_round_trips_through_signature_and_file(exported):
    d, _ = exported
    path = d / contract.model_name(1) / "1"
    loaded = tf.saved_model.load(str(path))
    sig = loaded.signatures[contract.MANIFEST_SIGNATURE]
    _, inputs = sig.structured_input_signature
    assert set(inputs) == {contract.MANIFEST_INPUT} and inputs[contract.MANIFEST_INPUT].dtype == tf.int32
    text = sig(probe=tf.constant([0]))[contract.MANIFEST_OUTPUT].numpy()
    m = contract.Manifest.from_json(text)
    assert m == contract.Manifest.from_json((path / contract.MANIFEST_FILE).read_text())
    assert (m.member, m.members, m.version, m.window) == (1, 2, 1, 12)
    assert m.vocab == Representation().vocab.tokens
    assert m.combine["method"] in contract.COMBINE_METHODS


def test_warmup_file_holds_predict_requests(exported):
    d, _ = exported
    path = d / contract.model_name(0) / "1" / contract.WARMUP_FILE
    records = list(tf.data.TFRecordDataset(str(path)).as_numpy_iterator())
    rows = [
        tf.make_ndarray(
            prediction_log_pb2.PredictionLog.FromString(r).predict_log.request.inputs["cond"]
        ).shape[0]
        for r in records
    ]
    assert tuple(rows) == contract.BATCH_SIZES  # every size the client pads a batch to is compiled at load
    for rec in records:
        log = prediction_log_pb2.PredictionLog.FromString(rec)
        req = log.predict_log.request
        assert req.model_spec.name == contract.model_name(0)
        assert req.model_spec.signature_name == contract.SIGNATURE
        assert tf.make_ndarray(req.inputs[contract.INPUT_TOKENS]).shape[1] == 12
        assert tf.make_ndarray(req.inputs[contract.INPUT_COND]).dtype == np.int32


def test_models_config_parses_with_tf_serving_proto(exported):
    d, _ = exported
    cfg = text_format.Parse(
        (d / contract.MODELS_CONFIG).read_text(), model_server_config_pb2.ModelServerConfig()
    )
    entries = cfg.model_config_list.config
    assert [e.name for e in entries] == [contract.model_name(0), contract.model_name(1)]
    assert all(e.model_platform == "tensorflow" for e in entries)
    assert entries[0].base_path == str(d.resolve() / contract.model_name(0))
    text = export.models_config_text(d, 2, config_base="/models")
    cfg = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    assert cfg.model_config_list.config[1].base_path == "/models/lofi_member_1"


def test_versions_increase_and_latest_is_found(tmp_path):
    assert make_tiny_models(tmp_path, members=1, train_steps=0) == 1
    assert make_tiny_models(tmp_path, members=1, train_steps=0, seed=1) == 2
    assert export.latest_version(tmp_path) == 2
    assert export.next_version(tmp_path) == 3


def test_crash_mid_export_publishes_nothing(tmp_path, monkeypatch):
    models = [m for m, _ in tiny_members(2, seed=0, window=8, hidden=8, train_steps=0)]
    assert export.export_ensemble(models, tmp_path) == 1
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    calls = []
    real = export.write_warmup

    def failing(path, name, window, *a, **k):
        calls.append(name)
        real(path, name, window, *a, **k)
        if len(calls) == 2:  # the second member, after the first is fully staged
            raise OSError("disk full")

    monkeypatch.setattr(export, "write_warmup", failing)
    with pytest.raises(OSError):
        export.export_ensemble(models, tmp_path)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before
    assert export.latest_version(tmp_path) == 1
    assert json.loads((tmp_path / "lofi_member_0" / "1" / contract.MANIFEST_FILE).read_text())["version"] == 1


def test_staging_folders_carry_the_exporters_pid(tmp_path, monkeypatch):
    # issue 24 #2: a retrain killed mid-export cannot clean up; the bot removes `.tmp-<its pid>-*` instead
    import os
    from types import SimpleNamespace

    staged: list[Path] = []

    def killed(model, manifest, path):
        staged.append(Path(path).parent)
        assert Path(path).parent.is_dir()
        raise KeyboardInterrupt  # stands for the SIGKILL no code survives

    monkeypatch.setattr(export, "write_savedmodel", killed)
    member = SimpleNamespace(inputs=[SimpleNamespace(name=contract.INPUT_TOKENS, shape=(None, 8))])
    with pytest.raises(KeyboardInterrupt):
        export.stage_ensemble([member], tmp_path, 1)
    assert staged and staged[0].name.startswith(contract.staging_prefix(os.getpid()))
