"""TensorProto <-> numpy: both encodings TF Serving may send."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from serving.backend import array_to_tensor, tensor_to_array


@pytest.mark.parametrize("content", [True, False], ids=["tensor_content", "typed_val"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
def test_round_trip_matches_tensorflow(content, dtype):
    arr = (np.arange(12).reshape(3, 4) * 1.5).astype(dtype)
    proto = array_to_tensor(arr, content=content)
    np.testing.assert_array_equal(tensor_to_array(proto), arr)
    np.testing.assert_array_equal(tf.make_ndarray(proto), arr)


def test_reads_what_tensorflow_writes():
    for arr in (np.float32([[0.25, 0.75]]), np.full((2, 3), 7, np.int32), np.array([b"json"], dtype=object)):
        np.testing.assert_array_equal(tensor_to_array(tf.make_tensor_proto(arr)), arr)


def test_string_scalar():
    assert tensor_to_array(tf.make_tensor_proto(b"{}")) == b"{}"
