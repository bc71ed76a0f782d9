"""Fixtures for the composing tests: the serving tests' tiny contract-following members."""

from __future__ import annotations

from tests.serving.conftest import tiny_backend, tiny_models, tiny_server  # noqa: F401  (fixtures: pytest finds them by name)
