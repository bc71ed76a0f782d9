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


class DatabaseConfigError(DatabaseError):
    """The database the settings point at cannot be used; the message is one line naming DATABASE_URL and
    what to do (the entry layer prints it and exits with code 2)."""


class InvalidDatabaseURL(DatabaseConfigError, ValueError):
    """DATABASE_URL is not a URL of a supported database (SQLite or PostgreSQL)."""


class DatabaseNotWritable(DatabaseConfigError):
    """The SQLite database file or its folder cannot be created or written."""


class DatabaseUnreachable(DatabaseConfigError):
    """The database server cannot be connected to (not running, wrong host, port, credentials or name)."""


class DatabaseFileGone(DatabaseError):
    """The SQLite file was deleted or replaced while the process ran: what is written now would be lost."""


class DatabaseBusy(DatabaseError):
    """A transaction stayed locked out (SQLite lock, PostgreSQL serialisation failure) after every retry."""
