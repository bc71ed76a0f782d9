"""The `lofi` command modules: one convention (`register` + `run`), and what the corpus and model commands
share (their options' defaults, and a training or corpus error as `error: ...` with exit status 2)."""

from __future__ import annotations

import argparse
import importlib

import pytest

from lofi import settings as settings_module
from lofi.cli import COMMAND_MODULES, build_parser, main
from lofi.cli.arguments import corpus_cache, data_paths, models_dir
from lofi.settings import Settings

# Each subcommand's arguments, enough to parse (nothing runs).
ARGV = {
    "lofi.cli.corpus": ["corpus", "stats", "x"],
    "lofi.cli.train": ["train"],
    "lofi.cli.evaluate": ["eval"],
    "lofi.cli.serve": ["serve"],
    "lofi.cli.generate": ["generate"],
    "lofi.cli.render": ["render", "x.json", "--out", "x.mp3"],
    "lofi.cli.bot": ["bot"],
    "lofi.cli.worker": ["worker"],
    "lofi.cli.run": ["run"],
}


@pytest.mark.parametrize("name", COMMAND_MODULES)
def test_every_command_module_registers_its_run_function(name):
    module = importlib.import_module(name)
    assert build_parser().parse_args(ARGV[name]).func is module.run


def test_corpus_check_runs_the_same_handler_as_stats():
    assert (
        build_parser().parse_args(["corpus", "check", "x"]).func
        is importlib.import_module("lofi.cli.corpus").run
    )


def test_corpus_help_prints_its_threshold(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["corpus", "--help"])
    assert exit_.value.code == 0 and "needs >= 99%)" in capsys.readouterr().out


def test_models_and_data_default_to_the_settings(tmp_path):
    s = Settings(_env_file=None, models_dir=tmp_path / "m", data_dir=tmp_path / "d", cache_dir=tmp_path / "c")
    unset = argparse.Namespace(models=None, data=None)
    assert models_dir(unset, s) == tmp_path / "m" and data_paths(unset, s) == [tmp_path / "d"]
    given = argparse.Namespace(models=tmp_path / "x", data=[tmp_path / "y"])
    assert models_dir(given, s) == tmp_path / "x" and data_paths(given, s) == [tmp_path / "y"]
    assert corpus_cache(s) == tmp_path / "c" / "corpus"


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--preset", "tiny", "--data", "{missing}"],  # a CorpusError
        ["eval", "--data", "{missing}"],  # no models: a TrainingError
        ["corpus", "check", "{missing}", "--no-progress"],  # a CorpusError
    ],
)
def test_a_training_or_corpus_error_ends_the_command_with_status_2(argv, tmp_path, monkeypatch, capsys):
    for key, folder in {"MODELS_DIR": "models", "CACHE_DIR": "cache", "DATA_DIR": "data"}.items():
        monkeypatch.setenv(key, str(tmp_path / folder))
    settings_module.get_settings.cache_clear()
    try:
        code = main([a.format(missing=tmp_path / "missing") for a in argv])
    finally:
        settings_module.get_settings.cache_clear()
    assert code == 2 and capsys.readouterr().err.startswith("error: ")


def test_train_takes_a_time_budget_in_minutes_and_refuses_a_meaningless_one(capsys):
    args = build_parser().parse_args(["train", "--preset", "full", "--time-budget", "90"])
    assert args.time_budget == 90 * 60.0
    for bad in ("0", "-5", "soon", "1e9"):
        with pytest.raises(SystemExit) as exit_:
            build_parser().parse_args(["train", "--time-budget", bad])
        assert exit_.value.code == 2 and "--time-budget" in capsys.readouterr().err
