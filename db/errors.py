"""Errors of the storage layer."""


class DatabaseError(Exception):
    """Base class of every error raised by `db`."""


class TrackNotFound(DatabaseError, LookupError):
    """No track has the given id or message id."""


class RetrainAlreadyRunning(DatabaseError):
    """A retrain run is already recorded as running; only one may run at a time."""

    def __init__(self, run_id: int, started_at, user_name: str):
        # Plain values, not the row: the session is rolled back (and the row expired) by the time this is read.
        self.run_id, self.started_at, self.user_name = run_id, started_at, user_name
        super().__init__(
            f"retrain run {run_id} (asked by {user_name}) has been running since "
            f"{started_at:%Y-%m-%d %H:%M} UTC"
        )


class MigrationError(DatabaseError):
    """Upgrading the schema to the newest revision failed."""
