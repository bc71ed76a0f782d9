"""The retrain process protocol: JSON lines for progress, then one result or error line."""

from __future__ import annotations

import io
import json
import sys
import types
from dataclasses import dataclass

import pytest

from training import runner as retrain_runner


@dataclass
class Result:
    promoted: bool
    reason: str
    old_metrics: dict
    new_metrics: dict
    new_version: int | None


@pytest.fixture
def fake_training(monkeypatch):
    calls = {}
    module = types.ModuleType("training.retrain")

    def retrain(
        models_dir,
        data_paths,
        extra_pieces=None,
        exclude=None,
        preset="quick",
        epochs=None,
        progress=None,
        **kw,
    ):
        calls.update(models_dir=models_dir, extra=extra_pieces, exclude=exclude, epochs=epochs)
        if epochs == 0:
            raise RuntimeError("corpus is empty")
        progress({"epoch": 1, "loss": 1.5})
        print("stray print from a library")
        return Result(False, "new model worse", {"val_loss": 1.0}, {"val_loss": 1.2}, None)

    module.retrain = retrain
    monkeypatch.setitem(sys.modules, "training.retrain", module)
    return calls


def _run(tmp_path, monkeypatch, params):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"models_dir": str(tmp_path), "data_paths": [str(tmp_path)], **params}))
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    rc = retrain_runner.main(["--params-json", str(path)])
    return rc, [json.loads(line) for line in out.getvalue().splitlines()]


def test_progress_then_result(tmp_path, monkeypatch, fake_training):
    rc, lines = _run(
        tmp_path, monkeypatch, {"extra_pieces": [[1, 2]], "exclude_names": ["bad.mid"], "epochs": 2}
    )
    assert rc == 0
    assert lines[0] == {"epoch": 1, "loss": 1.5, "event": "progress"}
    assert lines[-1]["event"] == "result" and lines[-1]["promoted"] is False
    assert fake_training["extra"] == [[1, 2]] and fake_training["exclude"] == ["bad.mid"]


def test_failure_is_an_error_line(tmp_path, monkeypatch, fake_training):
    rc, lines = _run(tmp_path, monkeypatch, {"epochs": 0})
    assert rc == 1
    assert lines == [{"event": "error", "error": "RuntimeError: corpus is empty"}]


def test_the_bots_pid_makes_the_runner_die_with_it(tmp_path, monkeypatch, fake_training):
    # issue 24 #2: the bot passes its pid; a runner started by hand (no variable) is left alone
    armed: list[int] = []
    monkeypatch.setattr(retrain_runner, "die_with_parent", armed.append)
    monkeypatch.delenv(retrain_runner.PARENT_PID_ENV, raising=False)
    _run(tmp_path, monkeypatch, {"epochs": 1})
    monkeypatch.setenv(retrain_runner.PARENT_PID_ENV, "4242")
    rc, _ = _run(tmp_path, monkeypatch, {"epochs": 1})
    assert rc == 0 and armed == [4242]
