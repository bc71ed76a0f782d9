"""The embedded server against TF Serving's own test models, driven by the real tensorflow-serving-api stubs."""

from __future__ import annotations

from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving.server import EmbeddedServer, config_from_flags, read_config_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tf-serving"
TWO_VERSIONS = FIXTURES / "saved_model_half_plus_two_2_versions"


@pytest.fixture(scope="module", params=[False, True], ids=["float_val", "tensor_content"])
def server(request):
    srv = EmbeddedServer(config_from_flags("default", TWO_VERSIONS), poll_s=0, tensor_content=request.param)
    with srv:
        yield srv


@pytest.fixture(scope="module")
def channel(server):
    ch = grpc.insecure_channel(server.address)
    yield ch
    ch.close()


def _predict_request(x, name="default", version=None, key="x"):
    req = predict_pb2.PredictRequest()
    req.model_spec.name = name
    req.model_spec.signature_name = "serving_default"
    if version is not None:
        req.model_spec.version.value = version
    req.inputs[key].CopyFrom(tf.make_tensor_proto(np.asarray(x, np.float32)))
    return req


def test_predict_half_plus_two(channel):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    resp = stub.Predict(_predict_request([[1.0], [2.0], [5.0]]), timeout=10)
    np.testing.assert_allclose(tf.make_ndarray(resp.outputs["y"]), [[2.5], [3.0], [4.5]])
    assert resp.model_spec.version.value == 124


def test_status_reports_latest_version_available(channel):
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    req = get_model_status_pb2.GetModelStatusRequest()
    req.model_spec.name = "default"
    resp = stub.GetModelStatus(req, timeout=10)
    assert [(s.version, s.state) for s in resp.model_version_status] == [
        (124, get_model_status_pb2.ModelVersionStatus.AVAILABLE)
    ]
    assert resp.model_version_status[0].status.error_code == 0


def test_unloaded_version_is_not_found(channel):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.Predict(_predict_request([[1.0]], version=123), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "Specific(default, 123)" in err.value.details()


def test_unknown_model_is_not_found(channel):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.Predict(_predict_request([[1.0]], name="nope"), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    status = model_service_pb2_grpc.ModelServiceStub(channel)
    req = get_model_status_pb2.GetModelStatusRequest()
    req.model_spec.name = "nope"
    with pytest.raises(grpc.RpcError) as err:
        status.GetModelStatus(req, timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_wrong_input_key_is_invalid_argument(channel):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.Predict(_predict_request([[1.0]], key="wrong"), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "wrong" in err.value.details()


def test_wrong_dtype_and_shape_are_invalid_argument(channel):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    req = _predict_request([[1.0]])
    req.inputs["x"].CopyFrom(tf.make_tensor_proto(np.asarray([[1]], np.int32)))
    with pytest.raises(grpc.RpcError) as err:
        stub.Predict(req, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as err:
        stub.Predict(_predict_request([[1.0, 2.0]]), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_metadata_lists_signatures(channel):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    req = get_model_metadata_pb2.GetModelMetadataRequest()
    req.model_spec.name = "default"
    req.metadata_field.append("signature_def")
    resp = stub.GetModelMetadata(req, timeout=10)
    sdm = get_model_metadata_pb2.SignatureDefMap()
    resp.metadata["signature_def"].Unpack(sdm)
    assert {"serving_default", "regress_x2_to_y3"} <= set(sdm.signature_def)
    assert list(sdm.signature_def["serving_default"].inputs) == ["x"]
    assert resp.model_spec.version.value == 124


def test_models_config_with_specific_version(tmp_path):
    cfg = tmp_path / "models.config"
    cfg.write_text(f"""model_config_list {{
  config {{
    name: "default"
    base_path: "{TWO_VERSIONS}"
    model_platform: "tensorflow"
    model_version_policy {{ specific {{ versions: 123 }} }}
  }}
}}
""")
    with EmbeddedServer(read_config_file(cfg), poll_s=0) as srv, grpc.insecure_channel(srv.address) as ch:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(ch)
        resp = stub.Predict(_predict_request([[1.0]], version=123), timeout=10)
        np.testing.assert_allclose(tf.make_ndarray(resp.outputs["y"]), [[2.5]])
