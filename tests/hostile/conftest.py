"""The hostile suite reuses the e2e fixtures: the strict fake Discord, the real bot and its fake pipeline."""

from tests.e2e.conftest import fake_discord, fake_pipeline, media, start_bot  # noqa: F401
