"""Errors of the serving layer; the bot and the CLI map them to messages in one place."""

from __future__ import annotations


class ServingError(Exception):
    """Base class of every error raised by `serving`."""


class ServingUnavailable(ServingError):
    """The model server cannot be reached (down, refusing connections) after the bounded retries."""


class ServingTimeout(ServingError):
    """The model server did not answer within the deadline, after the bounded retries."""


class ModelNotFound(ServingError):
    """The server does not serve the model or the pinned version asked for (NOT_FOUND)."""


class BadRequest(ServingError):
    """The server rejected a request as malformed (INVALID_ARGUMENT): wrong input names, dtypes or shapes."""


class VocabularyMismatch(ServingError):
    """A model version was trained with another vocabulary than the one this code decodes with."""


class ContractError(ServingError):
    """A model does not follow `serving.contract` (missing signature, bad window, malformed manifest)."""


class PortUnavailable(ServingError):
    """The embedded model server cannot listen on its port (another process holds it)."""
