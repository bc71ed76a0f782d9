"""Errors of the bot layer. Each carries the message the user sees; `bot.error_handler` is the one place that
turns these (and the other packages' domain errors) into ephemeral replies."""

from __future__ import annotations

from discord import app_commands


class BotError(app_commands.AppCommandError):
    """Base class of every error raised by `bot`; `str(error)` is safe to show to the user."""


class BadLength(BotError):
    """A track length that cannot be parsed or is outside the allowed range."""


class BadKey(BotError):
    """A musical key that is not a key name ("H minor")."""


class BadOption(BotError):
    """A slash-command option that does not fit its declaration (type, range, choices, required)."""


class NoLoop(BotError):
    """A track too short for the shortest seamless loop, or whose shortest loop is over the upload limit."""


class QueueFull(BotError):
    """The job queue holds as many waiting jobs as it may."""

    def __init__(self, size: int):
        self.size = size
        super().__init__(f"I'm busy: {size} tracks are already waiting. Please try again in a few minutes.")


class AlreadyQueued(BotError):
    """The user already has a track queued or being made (one active job per user)."""

    def __init__(self) -> None:
        super().__init__("You already have a track in the works; wait for it to finish before asking again.")


class OnCooldown(BotError):
    """The user asked again too soon after their last request."""

    def __init__(self, retry_after: float):
        self.retry_after = retry_after
        super().__init__(f"Slow down a little: you can ask for another track in {retry_after:.0f} s.")


class UploadTooLarge(BotError):
    """The rendered MP3 is bigger than this channel accepts."""

    def __init__(self, size: int, limit: int):
        self.size, self.limit = size, limit
        super().__init__(
            f"The MP3 came out at {size / 2**20:.1f} MiB, over this server's "
            f"{limit / 2**20:.0f} MiB upload limit; try a shorter length."
        )


class AttachmentRefused(BotError):
    """A /lofi-retrain music attachment that is too big, of the wrong kind, or could not be downloaded."""


class NotAdmin(app_commands.CheckFailure, BotError):
    """The user may not run an admin command."""

    def __init__(self, command: str = "this command"):
        super().__init__(f"Only server managers or configured admins may use {command}.")


class RetrainBusy(BotError):
    """A retrain is already running."""

    def __init__(self, since: str, by: str):
        super().__init__(f"A retrain is already running (started {since} by {by}); one at a time, please.")


class TrackGone(BotError):
    """A button refers to a track that no longer exists or has no files."""

    def __init__(self) -> None:
        super().__init__("That track is no longer available.")


class DiskFull(BotError):
    """The disk the tracks are written to is full (the failed track's files are already removed)."""

    def __init__(self) -> None:
        super().__init__(
            "The bot's disk is full, so it cannot save this track; an admin has to free some space. "
            "Please try again later."
        )


class OthersTracksInDM(BotError):
    """Someone else's tracks asked for in a direct message, where they would show every server's."""

    def __init__(self) -> None:
        super().__init__(
            "In a direct message I only show your own tracks; use /lofi-history in a server to see "
            "someone else's tracks there."
        )


class BadButton(BotError):
    """A button or menu whose custom id names no track (forged or damaged)."""

    def __init__(self) -> None:
        super().__init__("That button is not one I made (its track id is not valid).")
