"""The composing engine makes what the code before it made: the same tokens from the shipped ensemble for the
same seeds (new pieces, several rows of one seed, an extension through the shared loop), and the same audio
before encoding.

The references were recorded from commit 0673ee3, the last one with three generation loops, before they
became one (2026-12-04). They depend on the shipped models: a retrain that ships new members changes them
(record them again from the new models, with the previous commit's code, and say so in the commit).
Re-recorded 2026-12-05 (issue 22): new shipped models, trained to convergence, and the widened form draws.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from compose.continuation import extended_plan
from compose.loop import GenerationLoop, generate
from music.request import TrackRequest, plan_track
from music.tokens import Representation
from serving.local import LocalBackend, open_local_backend

ROOT = Path(__file__).resolve().parents[2]
AUDIO = ROOT / "tests" / "fixtures" / "audio-rainy-20s-seed7.json"

TOKENS_SHA256 = {
    "rainy 30 s seed 1": "ad4ff77b7262b4cc5d98c6d566c61363517f871438a747dcd67f92fed1f5eb85",
    "rainy 20 s seed 7": "b62d91bbfa2fc33b60a7fa5872fd17ad0a6a0ab353cf0da0f1f8c6f7caf76ba1",
    "sunny 20 s seed 5, row 0": "a3ddcd30f29cc15784261ec938280ed70b369a4039cfb5be59d0e12202fd8878",
    "sunny 20 s seed 5, row 1": "62c920dfd0590fabb7767bfc7683c9c960e8da0e2768ccb5c74de6b7dfe96187",
    "rainy seed 7 extended to 40 s": "51e72202f762708c59d3c2d8ac43c18dfaab2c71790422b44f1d162b26823a5b",
}


def _sha(tokens: list[int]) -> str:
    return hashlib.sha256(json.dumps(tokens).encode()).hexdigest()


@pytest.fixture(scope="module")
def made() -> dict[str, list[int]]:
    return asyncio.run(_make())


async def _make() -> dict[str, list[int]]:
    async with open_local_backend(ROOT / "models") as backend:
        return await _make_over(backend)


async def _make_over(backend: LocalBackend) -> dict[str, list[int]]:
    rep = Representation()
    loop = GenerationLoop(backend, rep=rep)
    try:
        rainy7 = plan_track(TrackRequest(20, "rainy", 7), rep)
        tokens = {
            "rainy 30 s seed 1": (
                await generate(backend, plan_track(TrackRequest(30, "rainy", 1), rep))
            ).tokens[0],
            "rainy 20 s seed 7": (await loop.generate(rainy7)).tokens[0],
        }
        rows = await generate(backend, plan_track(TrackRequest(20, "sunny", 5), rep), n=2)
        tokens["sunny 20 s seed 5, row 0"], tokens["sunny 20 s seed 5, row 1"] = rows.tokens
        longer = extended_plan(rainy7.request, 40, rep)
        extension = await loop.generate(longer, prefix=tokens["rainy 20 s seed 7"])
        tokens["rainy seed 7 extended to 40 s"] = extension.tokens[0]
    finally:
        await loop.close()
    return tokens


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(TOKENS_SHA256))
async def test_the_same_seeds_give_the_same_tokens_as_before(made, case):
    assert _sha(made[case]) == TOKENS_SHA256[case]


def _fingerprint(audio: np.ndarray, block: int) -> dict[str, list]:
    x = audio.astype(np.float64)
    n = x.shape[1] // block
    blocks = x[:, : n * block].reshape(x.shape[0], n, block)
    return {
        "mean": blocks.mean(axis=2).tolist(),
        "rms": np.sqrt((blocks**2).mean(axis=2)).tolist(),
        "tail_sum": x[:, n * block :].sum(axis=1).tolist(),
    }


def render_fingerprint(tokens: list[int], block: int) -> dict[str, list]:
    """Render rainy 20 s seed 7 from `tokens` and fingerprint what the MP3 encoder is given."""
    import music.track

    captured = []
    encode = music.track.write_mp3

    def capture(audio, *args, **kwargs):
        captured.append(np.array(audio, copy=True))
        return encode(audio, *args, **kwargs)

    music.track.write_mp3 = capture
    rep = Representation()
    plan = plan_track(TrackRequest(20, "rainy", 7), rep)
    score = rep.decode(tokens, tonic=plan.tonic, bpm=plan.bpm)
    with tempfile.TemporaryDirectory() as tmp:
        music.track.render_track(score, plan, Path(tmp))
    (audio,) = captured
    return {"samples": audio.shape[1], **_fingerprint(audio, block)}


@pytest.mark.slow
def test_the_same_tokens_give_the_same_audio_before_encoding(made, tmp_path):
    """Every 8192-sample block of the mastered audio (what the MP3 encoder is given) has the mean and RMS it
    had before, to 1e-6.

    The render runs in a fresh process, as the reference's did: a FluidSynth synthesizer keeps a little state
    from one render to the next (measured: up to 0.004 on a sample after another track, 0.07 on a first
    render against a later one), so the same track rendered after other work in one process is equal only
    to about 1e-5 in these block figures.
    """
    reference = json.loads(AUDIO.read_text())
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps(made["rainy 20 s seed 7"]))
    code = (
        "import json, sys; from tests.compose.test_same_as_before import render_fingerprint; "
        f"print(json.dumps(render_fingerprint(json.load(open({str(tokens)!r})), {reference['block']})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True
    )
    now = json.loads(done.stdout.strip().splitlines()[-1])
    assert now["samples"] == reference["samples"]
    for key in ("mean", "rms", "tail_sum"):
        np.testing.assert_allclose(now[key], reference[key], rtol=0, atol=1e-6, err_msg=key)
