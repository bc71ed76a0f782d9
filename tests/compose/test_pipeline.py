"""Composer.make_track end to end (tiny models, real render), and the `lofi serve` / `lofi generate` commands."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from compose.pipeline import Composer
from music.request import TrackRequest

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "tf-serving" / "saved_model_half_plus_two_2_versions"
LOFI = [sys.executable, "-m", "lofi.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
async def test_make_track_renders_with_pinned_versions(tiny_backend, tmp_path):
    stages = []
    composer = Composer(tiny_backend)
    try:
        result = await composer.make_track(
            TrackRequest(16, "rainy", 5), tmp_path, progress=lambda stage, *a, **k: stages.append(stage)
        )
    finally:
        await composer.close()
    assert Path(result.files.mp3).is_file() and Path(result.files.midi).is_file()
    assert result.versions == {"lofi_member_0": 1, "lofi_member_1": 1}
    assert {"generate", "decode", "render", "total"} <= set(result.timings)
    assert stages[0] == "composing" and "rendering" in stages
    assert all(isinstance(t, int) for t in result.tokens)


def test_serve_command_speaks_tf_serving_and_stops_on_sigterm(tmp_path):
    port = _free_port()
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="0", TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen(
        [
            *LOFI,
            "serve",
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--model_name",
            "default",
            "--model_base_path",
            str(FIXTURE),
            "--file_system_poll_wait_seconds",
            "0",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            grpc.channel_ready_future(ch).result(timeout=60)
            req = predict_pb2.PredictRequest()
            req.model_spec.name = "default"
            req.inputs["x"].CopyFrom(tf.make_tensor_proto(np.float32([[1.0], [2.0], [5.0]])))
            resp = prediction_service_pb2_grpc.PredictionServiceStub(ch).Predict(req, timeout=10)
            np.testing.assert_allclose(tf.make_ndarray(resp.outputs["y"]), [[2.5], [3.0], [4.5]])
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "loaded default version 124" in out and "stopped" in out


@pytest.mark.slow
def test_generate_command_json(tiny_models, tmp_path):
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="0", TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("SERVING_ADDRESS", None)
    out = tmp_path / "t.mp3"
    proc = subprocess.run(
        [
            *LOFI,
            "generate",
            "--length",
            "0:16",
            "--mood",
            "chill",
            "--seed",
            "2",
            "--json",
            "--models",
            str(tiny_models),
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert out.is_file() and summary["mp3"] == str(out)
    assert summary["versions"] == {"lofi_member_0": 1, "lofi_member_1": 1}
    assert summary["timings"]["generate"] > 0


@pytest.mark.slow
def test_generate_command_writes_stems_and_a_loop_beside_the_track(tiny_models, tmp_path):
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="0", TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("SERVING_ADDRESS", None)
    out = tmp_path / "t.mp3"
    args = ["--length", "0:20", "--mood", "rainy", "--seed", "4", "--stems", "--loop", "4", "--json"]
    proc = subprocess.run(
        [*LOFI, "generate", *args, "--models", str(tiny_models), "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    tonic, mode = summary["key"].split()
    named = f"_{round(summary['bpm'])}bpm_{tonic.replace('#', 'sharp')}{'min' if mode == 'minor' else 'maj'}_"
    stems = [Path(p) for p in summary["stems"]]
    assert {p.parent for p in stems} == {tmp_path} and all(named in p.name and p.is_file() for p in stems)
    parts = ["keys", "bass", "melody", "drums", "ambience"]
    assert [p.stem.rsplit("_", 1)[1] for p in stems if p.suffix == ".wav"] == parts  # WAV: no upload limit
    assert [p.stem.rsplit("_", 1)[1] for p in stems if p.suffix == ".mid"] == parts[:-1]
    loop = [Path(p) for p in summary["loop"]]
    assert [p.name.split(named)[1] for p in loop] == ["loop-4bars.wav", "loop-4bars.mid"]
    assert all(p.is_file() for p in loop)


def test_generate_command_refuses_a_loop_longer_than_the_track_before_any_work(tmp_path):
    proc = subprocess.run(
        [*LOFI, "generate", "--length", "0:16", "--loop", "8", "--models", str(tmp_path / "none")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "--loop 8" in proc.stderr and "bars" in proc.stderr, proc.stderr


def test_generate_command_rejects_a_bad_length(tmp_path):
    proc = subprocess.run(
        [*LOFI, "generate", "--length", "soon", "--models", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "soon" in proc.stderr


def test_registering_the_commands_does_not_import_tensorflow():
    code = (
        "import argparse, sys, lofi.cli.generate as c; p = argparse.ArgumentParser(); c.register(p.add_subparsers()); "
        "print('tensorflow' in sys.modules or 'grpc' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "False", proc.stderr
