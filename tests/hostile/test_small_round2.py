"""Issue 24, defect 11: a bad DATABASE_URL is one line that never echoes the value, an absurdly long length is
called too long, and `/lofi-retrain` reads the corpus cache that `lofi train` (and `lofi corpus`) wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from bot.services import Requester, RetrainService
from db.engine import normalize_url
from db.errors import InvalidDatabaseURL
from lofi.cli.arguments import corpus_cache
from music.durations import parse_duration, parse_length
from tests.bot.conftest import sessionmaker, settings  # noqa: F401


def _lofi_bot(tmp_path, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "SERVING_", "DATABASE_"))}
    env.update(DISCORD_TOKEN="x", DATABASE_URL=database_url, SERVING_ADDRESS="127.0.0.1:1")
    return subprocess.run(
        [sys.executable, "-m", "lofi.cli", "bot", "--no-sync"],
        cwd=tmp_path, env={**env, "PYTHONPATH": os.getcwd()}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_non_numeric_port_is_one_line_without_the_password(tmp_path):
    out = _lofi_bot(tmp_path, "postgresql://lofi:hunter2@db.example:fivefourthree/lofi")
    assert out.returncode == 2, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert "DATABASE_URL" in lines[0] and "port" in lines[0]
    assert "hunter2" not in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize(
    "value",
    [
        "hunter2-is-my-password-really",  # no scheme at all: perhaps only the password was pasted
        "pw=hunter2 host=db",  # a libpq keyword string
        "postgresql://lofi:hunter2@db:99999999999/lofi",  # a port out of range
    ],
)
def test_no_part_of_a_bad_url_is_echoed(value):
    with pytest.raises(InvalidDatabaseURL) as err:
        normalize_url(value)
    msg = str(err.value)
    assert "DATABASE_URL" in msg and "\n" not in msg
    assert "hunter" not in msg and "pw=" not in msg, msg


@pytest.mark.parametrize("text", ["9" * 6000, "9" * 400 + "h", "9" * 330 + "m" + "9" * 330 + "s"])
def test_an_absurdly_long_length_is_called_too_long(text):
    with pytest.raises(ValueError) as err:
        parse_length(text, 15, 600)
    msg = str(err.value)
    assert "too long" in msg and "0 seconds" not in msg, msg
    assert "15s and 10m00s" in msg  # the limits, as for any length out of range
    with pytest.raises(ValueError, match="too long"):
        parse_duration(text)


def test_a_zero_length_is_still_more_than_0_seconds():
    with pytest.raises(ValueError, match="more than 0 seconds"):
        parse_duration("0s")


async def test_retrain_uses_the_corpus_cache_of_lofi_train(sessionmaker, settings, tmp_path):  # noqa: F811
    dump = tmp_path / "params.json"
    script = tmp_path / "fake_runner.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import json, shutil, sys
            shutil.copy(sys.argv[sys.argv.index("--params-json") + 1], {str(dump)!r})
            print(json.dumps({{"event": "result", "promoted": False, "reason": "params dumped"}}))
            """
        )
    )
    svc = RetrainService(sessionmaker, settings, [sys.executable, str(script)])
    run_id, params = await svc.start(Requester(1, "admin", 1, 2), epochs=1, include_votes=False)
    await svc.run(run_id, params)
    assert json.loads(dump.read_text())["cache_dir"] == str(corpus_cache(settings))
