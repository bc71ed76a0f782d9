"""The main job (`make run` = `lofi run`): with no models it trains, then without a token it makes a demo
track through the real pipeline (embedded gRPC server, FluidSynth, MP3) and says how to connect the bot."""

import shutil
from pathlib import Path

import pytest

from lofi import settings as settings_module
from lofi.cli import main

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus" / "openewld" / "mxl"
PIECES = ["I_Wanna_Be_Loved_by_You", "Le_temps_des_cerises", "Guilty", "Because"]


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Settings pointing at empty models/out/cache folders and a four-piece corpus."""
    data = tmp_path / "corpus"
    data.mkdir()
    for name in PIECES:
        shutil.copy(next(CORPUS.rglob(f"{name}.mxl")), data / f"{name}.mxl")
    env = {
        "MODELS_DIR": tmp_path / "models",
        "OUT_DIR": tmp_path / "out",
        "CACHE_DIR": tmp_path / "cache",
        "DATA_DIR": data,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    for key in ("DISCORD_TOKEN", "SERVING_ADDRESS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    settings_module.get_settings.cache_clear()
    yield tmp_path
    settings_module.get_settings.cache_clear()


@pytest.mark.slow
def test_first_run_trains_then_makes_a_demo_track_and_a_second_run_reuses_the_models(isolated, capsys):
    assert main(["run", "--preset", "tiny", "--length", "15s", "--mood", "night", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    versions = sorted(p.name for p in (isolated / "models" / "lofi_member_0").iterdir())
    assert versions == ["1"]
    mp3 = isolated / "out" / "demo" / "lofi-night-3.mp3"
    assert mp3.stat().st_size > 10_000 and mp3.read_bytes()[:3] in (b"ID3", b"\xff\xfb")
    assert list(mp3.parent.glob("*.mid")) and list(mp3.parent.glob("*.png"))
    assert "Trained and exported version 1" in out
    assert "oauth2/authorize" in out and "DISCORD_TOKEN" in out

    # A second run trains nothing: same single version, a new demo for another seed.
    assert main(["run", "--preset", "tiny", "--length", "15s", "--mood", "night", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    assert "Trained" not in out
    assert sorted(p.name for p in (isolated / "models" / "lofi_member_0").iterdir()) == ["1"]
    assert (isolated / "out" / "demo" / "lofi-night-4.mp3").exists()


def test_a_model_server_that_does_not_answer_falls_back_to_the_embedded_one(isolated, monkeypatch, capsys):
    from lofi.model_server import reachable as _reachable

    assert _reachable("127.0.0.1:1", timeout_s=0.5) is False
