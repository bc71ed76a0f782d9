"""Errors of the job transport. They subclass the serving errors, so every front end that already says "the
music model is not reachable / too slow" says it for a broker that is down or a job that never finished."""

from __future__ import annotations

from serving.errors import ServingError, ServingTimeout, ServingUnavailable


class QueueUnavailable(ServingUnavailable):
    """The broker cannot be reached (down, refusing connections, a wrong BROKER_URL)."""


class JobTimedOut(ServingTimeout):
    """No worker finished the job within its deadline (none running, all busy, or each one died)."""


class JobFailed(ServingError):
    """A worker ran the job and it failed with an error this side has no class for (its name and message)."""
