"""Secrets never reach child processes: fluidsynth and ffmpeg are really spawned (as scripts that dump the
environment they were given) with the Discord token and other secrets set in ours (issue 15)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from music.childenv import child_env, is_secret
from music.errors import RenderError
from music.export import write_mp3
from music.fluidsynth_cli import render_midi

BOT_TOKEN = "MTEwMDAwMDAwMDAwMDAwMDAwMQ.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB"
SECRETS = {
    "DISCORD_TOKEN": BOT_TOKEN,
    "discord_token": BOT_TOKEN + "x",
    "Discord_Token": "mixed-case-token",
    "OPENAI_API_KEY": "sk-123",
    "AWS_SECRET_ACCESS_KEY": "aws-secret",
    "PGPASSWORD": "pg-password",
    "DATABASE_URL": "postgresql+asyncpg://lofi:hunter2@db:5432/lofi",
    "BOT_CREDENTIALS_JSON": "{}",
    "HIDDEN_UNDER_ANOTHER_NAME": BOT_TOKEN,
}
HARMLESS = {"LOFI_HARMLESS": "kept", "DATABASE_URL_PLAIN": "sqlite+aiosqlite:///var/lofi.sqlite3"}


def _fake_tool(bin_dir: Path, name: str) -> Path:
    """An executable `name` on `bin_dir` that writes its environment to $ENV_DUMP and fails."""
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text('#!/bin/sh\nenv > "$ENV_DUMP"\nexit 3\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def _dumped(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep:
            env[name] = value
    return env


@pytest.fixture
def secret_env(monkeypatch, tmp_path):
    """Our environment holds secrets; fake fluidsynth/ffmpeg come first on PATH; returns the dump file."""
    for k, v in {**SECRETS, **HARMLESS}.items():
        monkeypatch.setenv(k, v)
    bin_dir = tmp_path / "bin"
    _fake_tool(bin_dir, "fluidsynth")
    _fake_tool(bin_dir, "ffmpeg")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    dump = tmp_path / "env.txt"
    monkeypatch.setenv("ENV_DUMP", str(dump))
    return dump


def _assert_scrubbed(env: dict[str, str]) -> None:
    leaked = {k for k in SECRETS if k in env}
    assert not leaked, f"secrets reached the child: {sorted(leaked)}"
    assert not any(BOT_TOKEN in v or "hunter2" in v for v in env.values())
    assert env["LOFI_HARMLESS"] == "kept" and env["DATABASE_URL_PLAIN"] == HARMLESS["DATABASE_URL_PLAIN"]
    assert env["PATH"] and env["ENV_DUMP"]  # the rest of the environment is still there


def test_fluidsynth_gets_no_secrets(secret_env, tmp_path):
    sf2 = tmp_path / "fake.sf2"
    sf2.write_bytes(b"RIFF\0\0\0\0sfbk" + b"\0" * 64)
    midi = tmp_path / "x.mid"
    midi.write_bytes(b"MThd")
    with pytest.raises(RenderError, match="exit 3"):
        render_midi(midi, sf2)
    _assert_scrubbed(_dumped(secret_env))


def test_ffmpeg_gets_no_secrets(secret_env, tmp_path):
    audio = np.zeros((2, 4410), dtype=np.float32)
    with pytest.raises(RenderError, match="exit 3"):
        write_mp3(audio, 44100, tmp_path / "x.mp3", tags={"title": "t"})
    _assert_scrubbed(_dumped(secret_env))


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_every_secret_is_recognised_whatever_its_case(name):
    assert is_secret(name, SECRETS[name])
    assert name not in child_env(environ={name: SECRETS[name], "HOME": "/home/x"})


def test_known_secret_values_and_extras():
    environ = {"HOME": "/h", "SOME_VAR": "prefix-s3cr3t-suffix", "LANG": "C.UTF-8"}
    env = child_env({"PYTHONUNBUFFERED": "1"}, environ=environ, secrets=["s3cr3t"])
    assert env == {"HOME": "/h", "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1"}
    assert not is_secret("DATABASE_URL", "sqlite+aiosqlite:////tmp/x.sqlite3")
    assert not is_secret("HTTP_PROXY", "http://proxy:3128")
    assert is_secret("HTTP_PROXY", "http://user:pw@proxy:3128")


def _environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def test_the_radios_render_worker_process_holds_no_secrets(secret_env):
    # issue 24, defect 10: the spawned worker inherited the bot's environment, token and passwords included
    from bot.radio.worker import RenderWorker

    worker = RenderWorker()
    try:
        pid = worker.submit(os.getpid).result(timeout=60)
        env = _environ_of(pid)
        assert pid != os.getpid() and env.get("LOFI_HARMLESS") == "kept"
        assert not set(SECRETS) & set(env)
        assert not any(BOT_TOKEN in value or "hunter2" in value for value in env.values())
    finally:
        worker.shutdown()
    # this process keeps its own (settings were read from it; they are put back once the child is started)
    assert os.environ["DISCORD_TOKEN"] == BOT_TOKEN
