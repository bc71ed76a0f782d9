"""Debug logs carry no tokens (issue 15): the real bot answers a real interaction through the fake Discord
while discord.py logs at DEBUG; the entry layer's filter must leave neither the interaction token (in the
webhook URLs and the gateway payload) nor the bot token in what is written."""

from __future__ import annotations

import io
import logging

import pytest

from lofi.logsafe import REDACTED, RedactTokens, install_redaction, setup_logging
from tests.e2e.test_bot_e2e import of


@pytest.fixture
def debug_log():
    """Everything discord.py and the bot log at DEBUG, formatted, through a handler with the filter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    install_redaction([handler])
    loggers = [logging.getLogger(name) for name in ("discord", "bot")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
        lg.addHandler(handler)
    try:
        yield stream
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)


async def test_interaction_follow_up_at_debug_logs_no_token(
    fake_discord, start_bot, fake_pipeline, debug_log
):
    install_redaction([]).add_secret(fake_discord.token)  # as `lofi bot` registers its token
    await start_bot(pipeline=fake_pipeline)
    state = await fake_discord.send_interaction("lofi", {"length": "30s", "mood": "rainy"})
    followup = await fake_discord.wait_for(of(state, "followup"), timeout=20)
    assert followup.ok, followup.response
    text = debug_log.getvalue()
    # discord.py did log the follow-up's request (so the check below means something) ...
    assert f"/webhooks/{fake_discord.application_id}/{REDACTED}" in text
    assert "'token': '[REDACTED]'" in text  # the INTERACTION_CREATE payload
    # ... and neither token is in the log
    assert state.token not in text
    assert fake_discord.token not in text


def test_discord_py_log_formats_are_redacted():
    # the exact calls of discord/http.py, discord/gateway.py and discord/webhook/async_.py
    interaction_token = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDEyMzQ1Njc4OTpBQkNERUZHSElKS0xNTk9QUVJTVFVW"
    bot_token = "MTEwMDAwMDAwMDAwMDAwMDAwMQ.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB"
    url = f"https://discord.com/api/v10/webhooks/1100000000000000001/{interaction_token}/messages/@original"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactTokens())
    log = logging.getLogger("test.redaction")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    try:
        log.debug("%s %s with %s has returned %s", "PATCH", url, '{"content": "hi"}', 200)
        log.debug(
            "For Shard ID %s: WebSocket Event: %s",
            None,
            {"t": "INTERACTION_CREATE", "d": {"id": "1", "token": interaction_token}},
        )
        log.debug(
            "Webhook ID %s with %s has returned status code %s",
            "1",
            url.replace("webhooks", "interactions"),
            204,
        )
        log.debug("headers %s", {"Authorization": f"Bot {bot_token}"})
        try:
            raise RuntimeError(f"403 Forbidden at {url}")
        except RuntimeError:
            log.exception("request failed")
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert interaction_token not in text and bot_token not in text
    assert text.count(REDACTED) >= 5 and "403 Forbidden" in text


def test_entry_layer_installs_the_filter_on_its_handlers():
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    root.handlers = []
    try:
        setup_logging(verbose=True)
        assert root.handlers and all(
            any(isinstance(f, RedactTokens) for f in h.filters) for h in root.handlers
        )
    finally:
        for h in root.handlers:
            h.close()
        root.handlers, root.level = saved, level
