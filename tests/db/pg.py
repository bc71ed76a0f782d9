"""A throw-away PostgreSQL cluster for the tests: initdb in a temporary folder, a free loopback port, stopped
at the end of the session.

initdb and postgres refuse to run as root, so as root the cluster belongs to the `postgres` user (Debian's
`postgresql` package creates it) and every server command runs through `runuser -u postgres --`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

USER = "lofi"


def find_bindir() -> Path | None:
    """The folder of `initdb`/`pg_ctl`: on PATH, else the newest /usr/lib/postgresql/<major>/bin (Debian)."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent  # Debian links some of them into /usr/local/bin
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name)
    )
    return Path(found[-1]).parent if found else None


def free_port() -> int:
    """A TCP port that nothing listens on at the moment (loopback)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    """A running cluster: `url(db)` is an asyncpg URL for database `db` on it."""

    bindir: Path
    root: Path
    port: int
    as_postgres: bool

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _cmd(self, *args: str) -> list[str]:
        return (["runuser", "-u", "postgres", "--"] if self.as_postgres else []) + list(args)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://{USER}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str) -> None:
        """Run one statement as the cluster's superuser (psql from the same installation)."""
        subprocess.run(
            [str(self.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
             str(self.port), "-U", USER, "-d", "postgres", "-c", statement],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip

    def stop(self) -> None:
        subprocess.run(
            self._cmd(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster(bindir: Path, attempts: int = 3) -> Cluster:
    """initdb + pg_ctl start on a free loopback port (retried on a port race); fsync off: data is disposable."""
    as_postgres = os.geteuid() == 0
    root = Path(tempfile.mkdtemp(prefix="lofi-pg-"))
    if as_postgres:
        shutil.chown(root, "postgres", "postgres")
    cluster = Cluster(bindir, root, 0, as_postgres)
    run = {"capture_output": True, "text": True, "timeout": 120}
    out = subprocess.run(
        cluster._cmd(str(bindir / "initdb"), "-D", str(cluster.data), "-U", USER, "-A", "trust", "-E", "UTF8",
                     "--locale=C", "--no-sync"),
        **run,
    )  # fmt: skip
    if out.returncode:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {out.stderr.strip() or out.stdout.strip()}")
    for _ in range(attempts):
        cluster.port = free_port()
        opts = (
            f"-p {cluster.port} -c listen_addresses=127.0.0.1 -k {root} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        out = subprocess.run(
            cluster._cmd(str(bindir / "pg_ctl"), "-D", str(cluster.data), "-o", opts, "-l",
                         str(root / "server.log"), "-w", "-t", "60", "start"),
            **run,
        )  # fmt: skip
        if out.returncode == 0:
            return cluster
        time.sleep(0.2)
    log = (root / "server.log").read_text() if (root / "server.log").exists() else out.stderr
    with contextlib.suppress(Exception):
        cluster.stop()
    raise RuntimeError(f"PostgreSQL did not start: {log.strip()[-2000:]}")
