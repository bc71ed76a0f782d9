"""Serving benchmark; prints JSON.

- step: one ensemble step (every member, batch 1) over gRPC on loopback against the embedded server in its own
  process (as TF Serving would be), vs the same SavedModel signatures called in-process, one after another
  (`step_signatures_ms`, the floor), and vs `serving.local.LocalBackend` (`step_local_ms`: what the process
  that embeds the server composes with; its store's checks, members in parallel threads): medians and ratios
  (target: gRPC <= 1.5 x the signatures), for both response encodings (float_val like TF Serving,
  tensor_content).
- track: token generation of a 2-minute track with 3 members over gRPC (target <= 2 s), and over LocalBackend.

Members: `models/` (trained) when it holds an ensemble, else 3 untrained members of the training package's
`quick` architecture, else 3 tiny stand-ins; the JSON says which. Untrained members give near-uniform
distributions, so their tracks hit the per-bar token cap and take far more steps than a trained ensemble.

    .venv/bin/python bench/bench_serving.py [--models DIR] [--steps 200] [--length 120]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from music.request import TrackRequest, plan_track  # noqa: E402
from music.tokens import REPR_VERSION, Representation  # noqa: E402
from serving import contract  # noqa: E402


def _probs_fn(model):
    def probs(tokens, cond, aux):
        inputs = {contract.INPUT_TOKENS: tokens, contract.INPUT_COND: cond, contract.INPUT_AUX: aux}
        return {contract.OUTPUT_PROBS: model(inputs, training=False)}

    return probs


def _manifest_fn(text: str):
    import tensorflow as tf

    def manifest(probe):
        del probe
        return {contract.MANIFEST_OUTPUT: tf.constant(text)}

    return manifest


def export_quick_members(models_dir: Path, members: int = 3) -> str:
    """Export untrained members of the `quick` preset's architecture per the contract; returns a label."""
    import keras
    import tensorflow as tf

    from training.model import MemberConfig, build_member
    from training.train import PRESETS

    p = PRESETS["quick"]
    tokens = Representation().vocab.tokens
    for i in range(members):
        window = p.windows[i % len(p.windows)]
        cfg = MemberConfig(
            vocab_size=len(tokens),
            window=window,
            embed=p.embed,
            conv_filters=p.conv_filters,
            conv_stride=p.conv_stride,
            lstm_units=p.lstm_units,
            attn_units=p.attn_units,
            dense=p.dense,
        )
        model = build_member(cfg, seed=i)
        m = contract.Manifest(
            REPR_VERSION,
            list(tokens),
            contract.vocab_sha256(list(tokens)),
            window,
            i,
            members,
            1,
            config=cfg.to_dict(),
        )
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            contract.SIGNATURE,
            _probs_fn(model),
            input_signature=[
                tf.TensorSpec([None, window], tf.int32, name=contract.INPUT_TOKENS),
                tf.TensorSpec([None, contract.COND_LEN], tf.int32, name=contract.INPUT_COND),
                tf.TensorSpec([None, contract.AUX_LEN], tf.int32, name=contract.INPUT_AUX),
            ],
        )
        archive.add_endpoint(
            contract.MANIFEST_SIGNATURE,
            _manifest_fn(m.to_json()),
            input_signature=[tf.TensorSpec([1], tf.int32, name=contract.MANIFEST_INPUT)],
        )
        archive.write_out(str(models_dir / contract.model_name(i) / "1"), verbose=False)
    return (
        "untrained members of the training 'quick' architecture (Conv1D+BiLSTM+attention, windows 32/48/48)"
    )


def prepare_models(arg: str | None, tmp: Path) -> tuple[Path, str]:
    """The models to benchmark and a description of them."""
    models = Path(arg) if arg else ROOT / "models"
    if (models / contract.model_name(0)).is_dir():
        return models, f"trained members from {models}"
    target = tmp / "models"
    try:
        return target, export_quick_members(target)
    except ImportError:
        from tests.support.tiny_models import make_tiny_models

        make_tiny_models(target, members=3, version=1, window=48, hidden=128)
        return target, "tiny stand-in members (training package unavailable)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(models: Path, tensor_content: bool) -> tuple[subprocess.Popen, str]:
    """`lofi serve` in its own process, like TF Serving would run."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "lofi.cli",
        "serve",
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        "--models",
        str(models),
        "--file_system_poll_wait_seconds",
        "0",
    ]
    if tensor_content:
        cmd.append("--tensor_content")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        grpc.channel_ready_future(ch).result(timeout=120)
    return proc, f"127.0.0.1:{port}"


class Signatures:
    """The serving signatures of a store's loaded members called directly, one member after another: no
    request checks, no threads (what a step costs at the least)."""

    def __init__(self, store):
        self.store = store

    async def predict(self, name, version, tokens, cond, aux):
        import tensorflow as tf

        fn = self.store.models[name][version].model.signatures[contract.SIGNATURE]
        out = fn(
            **{
                contract.INPUT_TOKENS: tf.constant(tokens, tf.int32),
                contract.INPUT_COND: tf.constant(cond, tf.int32),
                contract.INPUT_AUX: tf.constant(aux, tf.int32),
            }
        )
        return out[contract.OUTPUT_PROBS].numpy()


def _ms(seconds: list[float]) -> dict:
    return {
        "median": round(1000 * statistics.median(seconds), 3),
        "p90": round(1000 * float(np.percentile(seconds, 90)), 3),
    }


async def step_latencies(backend, names, versions, windows, steps: int, rng) -> list[float]:
    """Seconds of `steps` ensemble steps (all members, batch 1) on random windows."""
    vocab = len(Representation().vocab)
    cond = np.asarray([[4, 8, 20, 30]], np.int32)
    aux = np.asarray([[40, 30, 3, 12, 2, 3]], np.int32)
    out = []
    for i in range(steps + 10):
        toks = {w: rng.integers(1, vocab, (1, w), dtype=np.int32) for w in set(windows.values())}
        t = time.perf_counter()
        await asyncio.gather(*(backend.predict(n, versions[n], toks[windows[n]], cond, aux) for n in names))
        if i >= 10:  # warm-up
            out.append(time.perf_counter() - t)
    return out


async def track_generation(backend, length_s: float) -> dict:
    from compose.loop import generate

    plan = plan_track(TrackRequest(length_s, "chill", 7))
    gen = await generate(backend, plan)
    steps = gen.steps
    return {
        "seconds": round(gen.seconds, 3),
        "steps": steps,
        "bars": plan.n_bars,
        "tokens_per_bar": round(steps / plan.n_bars, 1),
        "ms_per_step": round(1000 * gen.seconds / max(steps, 1), 3),
        "ensemble_call_ms_median": round(1000 * statistics.median(gen.step_seconds), 3),
    }


async def bench(args) -> dict:
    from serving.client import ServingClient
    from serving.local import open_local_backend

    with tempfile.TemporaryDirectory() as tmp:
        models, what = prepare_models(args.models, Path(tmp))
        async with open_local_backend(models) as local:
            names = await local.members()
            versions = await local.latest_versions(names)
            windows = {n: (await local.manifest(n, versions[n])).window for n in names}
            rng = np.random.default_rng(0)
            floor = await step_latencies(Signatures(local.store), names, versions, windows, args.steps, rng)
            in_process = await step_latencies(local, names, versions, windows, args.steps, rng)
            result = {
                "models": what,
                "members": len(names),
                "windows": windows,
                "cpu_cores": os.cpu_count(),
                "step_signatures_ms": _ms(floor),
                "step_local_ms": _ms(in_process),
            }
            for encoding in ("float_val", "tensor_content"):
                proc, address = start_server(models, encoding == "tensor_content")
                try:
                    async with ServingClient(address, timeout_s=10) as client:
                        remote = await step_latencies(client, names, versions, windows, args.steps, rng)
                        med = statistics.median(remote)
                        entry = {
                            **_ms(remote),
                            "ratio_vs_signatures": round(med / statistics.median(floor), 3),
                            "ratio_vs_local": round(med / statistics.median(in_process), 3),
                        }
                        if encoding == "tensor_content":
                            entry["track_2m"] = await track_generation(client, args.length)
                        result[f"step_grpc_{encoding}_ms"] = entry
                finally:
                    proc.terminate()
                    proc.wait(timeout=30)
            result["track_2m_local"] = await track_generation(local, args.length)
        best = min(
            result["step_grpc_float_val_ms"]["ratio_vs_signatures"],
            result["step_grpc_tensor_content_ms"]["ratio_vs_signatures"],
        )
        track = result["step_grpc_tensor_content_ms"]["track_2m"]
        result["targets"] = {"ratio<=1.5": best <= 1.5, "track_2m<=2s": track["seconds"] <= 2.0}
        return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", help="models folder (default: models/, else built members)")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--length", type=float, default=120.0, help="track length in seconds")
    print(json.dumps(asyncio.run(bench(ap.parse_args())), indent=1))


if __name__ == "__main__":
    main()
