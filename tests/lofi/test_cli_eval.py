"""`lofi eval`: held-out figures by token class, and `--test DIR` where every piece of DIR is a test piece."""

import json
import shutil
from pathlib import Path

import pytest

from lofi import settings as settings_module
from lofi.cli import main
from tests.support.tiny_models import make_tiny_models

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus" / "openewld" / "mxl"


@pytest.mark.slow
def test_eval_reports_token_classes_and_takes_a_test_folder(tmp_path, monkeypatch, capsys):
    files = sorted(CORPUS.rglob("*.mxl"))[:24]
    data, test = tmp_path / "corpus", tmp_path / "mine"
    data.mkdir()
    test.mkdir()
    for f in files[:21]:
        shutil.copy(f, data / f.name)
    for f in files[21:]:
        shutil.copy(f, test / f.name)
    make_tiny_models(tmp_path / "models", members=2, version=1)
    for key, value in {
        "CACHE_DIR": tmp_path / "cache",
        "DATA_DIR": data,
        "MODELS_DIR": tmp_path / "models",
    }.items():
        monkeypatch.setenv(key, str(value))
    settings_module.get_settings.cache_clear()
    try:
        assert main(["eval", "--test", str(test), "--json"]) == 0
    finally:
        settings_module.get_settings.cache_clear()
    report = json.loads(capsys.readouterr().out)
    assert report["test_pieces"] == 3
    ens, ngram = report["ensemble"]["by_class"], report["baselines"]["best_ngram"]["by_class"]
    assert {"pitch", "duration", "onset", "chord"} <= set(ens) and set(ens) == set(ngram)
    assert sum(c["tokens"] for c in ens.values()) == report["tokens"]
    assert report["ratios"]["pitch_nll_vs_best_ngram"] > 0
