"""Every database test runs twice: on a real SQLite file in tmp_path and on a real PostgreSQL server (a
throw-away cluster started once per test session), schema made by the real migrations."""

from __future__ import annotations

import itertools
import os

import pytest

from db.engine import make_engine, make_sessionmaker, upgrade_engine
from tests.db.pg import find_bindir, start_cluster

_names = itertools.count()


@pytest.fixture(scope="session")
def pg_cluster():
    """A PostgreSQL cluster for this session. Skipped only where it cannot run (not root and no server
    binaries); in CI (CI=true) it must run, so a missing server fails instead."""
    bindir = find_bindir()
    if bindir is None:
        msg = "PostgreSQL server binaries not found (Debian: apt-get install postgresql; `make test` does it)"
        if os.environ.get("CI") == "true" or os.geteuid() == 0:
            pytest.fail(msg)
        pytest.skip(msg)
    cluster = start_cluster(bindir)
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def db_url(backend, tmp_path, request):
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'sub' / 'lofi.sqlite3'}"
        return
    cluster = request.getfixturevalue("pg_cluster")
    name = f"t{os.getpid()}_{next(_names)}"
    cluster.sql(f"CREATE DATABASE {name}")
    yield cluster.url(name)
    cluster.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def sqlite_only(backend):
    if backend != "sqlite":
        pytest.skip("SQLite-specific behaviour")


@pytest.fixture
async def sessionmaker(db_url):
    engine = make_engine(db_url)
    await upgrade_engine(engine)
    yield make_sessionmaker(engine)
    await engine.dispose()
