"""Fixtures for the serving tests: tiny contract-following members, an embedded server over them, and the
production in-process backend over that server's store."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """A models dir with 2 tiny members at version 1 (shared, read-only)."""
    d = tmp_path_factory.mktemp("models")
    from tests.support.tiny_models import make_tiny_models

    make_tiny_models(d, members=2, seed=0, version=1)
    return d


@pytest.fixture(scope="session")
def tiny_server(tiny_models):
    """The embedded server over `tiny_models` (no polling)."""
    from serving.server import EmbeddedServer, config_for_models_dir

    with EmbeddedServer(config_for_models_dir(tiny_models), poll_s=0) as srv:
        yield srv


@pytest.fixture
async def tiny_backend(tiny_server):
    """`LocalBackend` over `tiny_server`'s store, as the process that embeds a server composes: the tiny
    members are loaded and compiled once a session, not once a test (`open_local_backend` gives one over a
    models folder of a test's own)."""
    from serving.local import LocalBackend

    backend = LocalBackend(tiny_server.store)
    yield backend
    await backend.close()
