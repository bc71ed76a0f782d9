"""Errors of composing; the bot and the CLI map them to messages in one place."""

from __future__ import annotations

from serving.errors import ServingError


class GenerationError(ServingError):
    """Generation could not produce a valid sequence: a bound was reached (steps, wall time), every token was
    masked out, or a prefix does not fit its plan. A ServingError, so every front end that reports a failed
    model server reports this too."""
