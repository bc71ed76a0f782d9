"""`lofi worker` and `lofi bot` refuse a missing or unusable broker with one line that never shows a password."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.db.pg import free_port

LOFI = str(Path(sys.executable).parent / "lofi")


def lofi(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("BROKER_URL", "DISCORD_TOKEN")}
    environ.update(env)
    return subprocess.run([LOFI, *args], env=environ, capture_output=True, text=True, timeout=120)


def test_a_worker_without_a_broker_says_what_to_set():
    out = lofi("worker")
    assert out.returncode == 2
    assert out.stderr.strip() == "lofi worker: BROKER_URL is not set (e.g. redis://127.0.0.1:6379/0)"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "redis://:hunter2secret@127.0.0.1:{free_port}/0",
            "is not reachable",
        ),  # the port filled in at run time
        ("amqp://guest:hunter2secret@localhost//", "must be a redis:// URL"),
        ("redis://:hunter2secret@127.0.0.1:notaport/0", "not a URL"),
    ],
    ids=[
        "nothing-listening",
        "not-redis",
        "bad-port",
    ],  # stable ids: xdist workers must collect the same tests
)
def test_an_unusable_broker_is_one_line_without_its_password(url, expected):
    out = lofi("worker", BROKER_URL=url.replace("{free_port}", str(free_port())))
    assert out.returncode == 2 and expected in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "hunter2secret" not in out.stderr + out.stdout


def test_the_bot_checks_its_broker_before_logging_in(tmp_path):
    url = f"redis://:hunter2secret@127.0.0.1:{free_port()}/0"
    out = lofi(
        "bot", BROKER_URL=url, DISCORD_TOKEN="x" * 59, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}"
    )
    assert out.returncode == 2 and "lofi bot: the broker at 127.0.0.1:" in out.stderr
    assert "hunter2secret" not in out.stderr + out.stdout
