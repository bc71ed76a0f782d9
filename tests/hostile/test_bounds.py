"""Memory and time bounds on generation: the CLI applies the bot's length limits, checks its arguments and
output folder before any work, and every generation stops at a wall-time bound with a clear GenerationError."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from compose.errors import GenerationError
from compose.loop import GenerationLoop
from compose.loop import generate as sample
from compose.sampler import SamplingOptions
from lofi.cli.generate import generate
from lofi.settings import Settings
from music.request import TrackRequest, plan_track
from music.tokens import Representation
from serving import contract


@pytest.fixture
def settings(tmp_path) -> Settings:
    # No models: a command that got past its argument checks would answer "no models" (exit 2 too), so each
    # test also checks the message, and that nothing was started or written.
    return Settings(_env_file=None, models_dir=tmp_path / "no-models", out_dir=tmp_path / "out")


def _run(settings, **kwargs) -> int:
    kwargs = {"length": "30s", "mood": "rainy", "seed": 1, **kwargs}
    return generate(settings, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"length": "99999h"}, "between 15s and 10m00s"),
        ({"length": "5s"}, "between 15s and 10m00s"),
        ({"seed": -1}, "seed must be a whole number from 0 to"),
        ({"seed": 2**40}, "seed must be a whole number from 0 to"),
        ({"bpm": 1000.0}, "tempo must be between"),
        ({"max_seconds": 0.0}, "--max-seconds"),
    ],
)
def test_bad_arguments_are_refused_before_any_work(settings, capsys, monkeypatch, kwargs, says):
    started = []
    monkeypatch.setattr("lofi.model_server.one_shot_backend", lambda *a, **k: started.append(a))
    assert _run(settings, **kwargs) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert started == []


def test_an_output_folder_that_cannot_be_written_is_refused_first(settings, capsys, monkeypatch, tmp_path):
    started = []
    monkeypatch.setattr("lofi.model_server.one_shot_backend", lambda *a, **k: started.append(a))
    for out in (Path("/proc/x.mp3"), tmp_path):  # an unwritable folder; a folder where a file belongs
        assert _run(settings, out=out) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("lofi generate: ") and len(err.splitlines()) == 1, err
        assert str(out) in err
    assert started == []


def test_the_command_line_exits_2_with_one_line(tmp_path):
    root = str(Path(__file__).resolve().parents[2])  # this checkout, not whatever the venv points at
    env = {
        "MODELS_DIR": str(tmp_path / "none"),
        "OUT_DIR": str(tmp_path / "out"),
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": root,
    }
    for argv in (["--length", "99999h"], ["--seed", "-1"], ["--out", "/proc/x.mp3"]):
        t0 = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "lofi.cli", "generate", *argv],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=tmp_path,
        )
        assert done.returncode == 2, (argv, done.stderr)
        lines = [line for line in done.stderr.splitlines() if line.startswith("lofi generate")]
        assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
        assert time.monotonic() - t0 < 60


def test_a_widening_flag_allows_a_longer_length(settings, capsys):
    assert _run(settings, length="20m", max_length="30m") == 2  # past the check: "no models" now
    assert "no models" in capsys.readouterr().err


class SlowBackend:
    """A model server that answers every step slowly with uniform probabilities (numpy only)."""

    def __init__(self, delay_s: float):
        self.rep = Representation()
        self.delay_s = delay_s
        self.calls = 0

    async def members(self):
        return ["m0"]

    async def latest_versions(self, names):
        return dict.fromkeys(names, 1)

    async def manifest(self, name, version):
        vocab = list(self.rep.vocab.tokens)
        return contract.Manifest(self.rep.version, vocab, contract.vocab_sha256(vocab), 16, 0, 1, version)

    async def predict(self, name, version, tokens, cond, aux):
        self.calls += 1
        await asyncio.sleep(self.delay_s)
        n = len(self.rep.vocab)
        return np.full((tokens.shape[0], n), 1.0 / n, np.float32)

    async def close(self):
        pass


async def test_a_request_in_the_shared_loop_stops_at_its_own_wall_time_bound():
    """The loop every front end composes through stops a request at its wall time, while the request beside
    it in the same batch (a longer bound) carries on."""
    plan = plan_track(TrackRequest(length_s=600, mood="rainy", seed=1))
    backend = SlowBackend(delay_s=0.01)
    loop = GenerationLoop(backend)
    t0 = time.perf_counter()
    patient = asyncio.create_task(loop.generate(plan, seed=2, options=SamplingOptions(max_seconds=600)))
    with pytest.raises(GenerationError, match=r"stopped after 0.3 s of wall time"):
        await loop.generate(plan, options=SamplingOptions(max_seconds=0.3))
    assert time.perf_counter() - t0 < 3 and backend.calls > 0
    assert not patient.done()
    await loop.close()
    with pytest.raises(GenerationError, match="closed"):
        await patient


async def test_a_request_in_the_shared_loop_stops_at_its_step_budget(monkeypatch):
    import compose.loop

    monkeypatch.setattr(compose.loop._Request, "step_budget", property(lambda self: 5))
    loop = GenerationLoop(SlowBackend(delay_s=0))
    try:
        with pytest.raises(GenerationError, match="no EOS after 5 steps"):
            await loop.generate(plan_track(TrackRequest(length_s=30, mood="chill", seed=1)))
    finally:
        await loop.close()


async def test_the_one_shot_helper_is_bounded_too():
    plan = plan_track(TrackRequest(length_s=600, mood="rainy", seed=1))
    with pytest.raises(GenerationError, match=r"stopped after 0.2 s of wall time"):
        await sample(SlowBackend(delay_s=0.01), plan, options=SamplingOptions(max_seconds=0.2))


def test_the_default_options_bound_wall_time():
    assert 0 < SamplingOptions().max_seconds <= 3600
