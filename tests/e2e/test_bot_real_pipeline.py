"""The whole chain, slow: the real bot, the real pipeline, tiny real models behind the embedded gRPC server."""

from __future__ import annotations

import os

import pytest

from tests.e2e.conftest import ffprobe_format, is_mp3
from tests.e2e.test_bot_e2e import of

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="module")
def tiny_serving(tmp_path_factory):
    """Two tiny trained members exported to a models dir, served by `serving.server.EmbeddedServer`."""
    from serving.server import EmbeddedServer, config_for_models_dir
    from tests.support.tiny_models import make_tiny_models

    models = tmp_path_factory.mktemp("models")
    make_tiny_models(models, members=2, seed=0, version=1)
    with EmbeddedServer(config_for_models_dir(models), poll_s=0) as server:
        yield server, models


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_lofi_with_the_real_pipeline_and_tiny_models(fake_discord, start_bot, tiny_serving, tmp_path):
    server, models = tiny_serving
    # pipeline=None: the resources `lofi bot` opens (its gRPC client, the real engine), against the tiny models.
    await start_bot(
        serving_address=server.address,
        models_dir=models,
        serving_timeout_s=30.0,
    )
    state = await fake_discord.send_interaction("lofi", {"length": "20s", "mood": "rainy"})
    callback = await fake_discord.wait_for(of(state, "interaction_callback"))
    assert callback.ok and callback.json["type"] == 5

    followup = await fake_discord.wait_for(of(state, "followup"), timeout=240)
    assert followup.ok, followup.response
    mp3 = next(f for f in followup.files if f.filename.endswith(".mp3"))
    assert is_mp3(mp3.data) and ffprobe_format(mp3.data, tmp_path) == "mp3"
    assert len(mp3.data) <= fake_discord.upload_limit
    assert any(f.filename.endswith(".mid") and f.data[:4] == b"MThd" for f in followup.files)
    message_id = followup.message["id"]
    await fake_discord.wait_for(
        lambda r: r.kind == "reaction_add" and r.params["message_id"] == message_id, count=2
    )
    fake_discord.assert_no_errors()
