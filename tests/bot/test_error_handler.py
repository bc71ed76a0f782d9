"""One place maps errors to messages; the unexpected are logged and get a generic apology."""

from __future__ import annotations

import logging

from discord import app_commands

from bot.error_handler import UNEXPECTED, describe, message_for
from bot.errors import BadLength, NotAdmin, OnCooldown, QueueFull, UploadTooLarge
from music.errors import MoodError, RenderError
from serving.errors import ServingTimeout, ServingUnavailable


def test_domain_errors_have_clear_messages():
    assert "between" in message_for(BadLength("A track must be between 15s and 10m00s long"))
    assert "mood" in message_for(MoodError("unknown mood 'x'")).lower()
    assert "not reachable" in message_for(ServingUnavailable("down"))
    assert "too slow" in message_for(ServingTimeout("deadline"))
    assert "render" in message_for(RenderError("fluidsynth failed"))
    assert "upload limit" in message_for(UploadTooLarge(20 * 2**20, 10 * 2**20))
    assert "busy" in message_for(QueueFull(8))
    assert "20 s" in message_for(OnCooldown(19.6))
    assert "server managers" in message_for(NotAdmin("/lofi-retrain"))


def test_wrapped_errors_are_unwrapped():
    try:
        raise ServingUnavailable("down")
    except ServingUnavailable as exc:
        wrapped = app_commands.CommandInvokeError.__new__(app_commands.CommandInvokeError)
        wrapped.__cause__ = exc
    assert "not reachable" in message_for(wrapped)


def test_unexpected_error_is_logged_with_traceback(caplog):
    with caplog.at_level(logging.ERROR, logger="bot.error_handler"):
        assert describe(ZeroDivisionError("x")) == UNEXPECTED
    assert caplog.records and caplog.records[0].exc_info is not None
