"""The one place that maps errors to what the user reads. Expected errors get a clear ephemeral message; the
unexpected are logged with their traceback and get a generic apology."""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from bot.errors import BotError
from db.retry import is_unavailable
from music.errors import MoodError, RenderError
from music.limits import quoted
from serving.errors import ServingError, ServingTimeout, ServingUnavailable

log = logging.getLogger(__name__)

CONTENT_MAX = 2000  # Discord refuses message content longer than this
UNEXPECTED = "Something went wrong on my side; it has been logged. Please try again later."
DATABASE_DOWN = "The database is unavailable right now; please try again shortly."


def unwrap(error: BaseException) -> BaseException:
    """The original exception behind discord.py's wrappers (CommandInvokeError, TransformerError causes)."""
    while (
        isinstance(error, app_commands.CommandInvokeError | app_commands.TransformerError)
        and error.__cause__ is not None
    ):
        error = error.__cause__
    return error


def message_for(error: BaseException) -> str | None:
    """The user-facing message for an expected error, or None for an unexpected one."""
    error = unwrap(error)
    if isinstance(error, BotError):
        return str(error)
    if isinstance(error, MoodError):
        return f"Unknown mood. {error}"
    if isinstance(error, ServingTimeout):
        return "The music model is too slow to answer right now; please try again in a minute."
    if isinstance(error, ServingUnavailable):
        return "The music model is not reachable right now; please try again later."
    if isinstance(error, RenderError):
        return "I composed the track but could not render the audio; the failure has been logged."
    if isinstance(error, ServingError):
        return "The music model could not make this track (its server is misconfigured); the failure has been logged."
    if isinstance(error, app_commands.CommandOnCooldown):
        return f"Slow down a little: try again in {error.retry_after:.0f} s."
    if isinstance(error, app_commands.MissingPermissions | app_commands.CheckFailure):
        return "You are not allowed to use this command here."
    if isinstance(error, app_commands.TransformerError):
        return f"I could not understand {quoted(error.value)}."
    if isinstance(error, app_commands.CommandSignatureMismatch):
        return f"`/{error.command.qualified_name}` came with options I do not know; please try again."
    if is_unavailable(error):
        return DATABASE_DOWN
    if isinstance(error, discord.HTTPException) and error.status == 413:
        return "The files are too large to upload here; try a shorter length."
    return None


def describe(error: BaseException) -> str:
    """`message_for`, logging and apologising for anything unexpected."""
    text = message_for(error)
    if text is None:
        original = unwrap(error)
        log.error("unexpected error", exc_info=(type(original), original, original.__traceback__))
        return UNEXPECTED
    original = unwrap(error)
    if isinstance(original, RenderError | ServingError):
        log.warning("%s: %s", type(original).__name__, original)
    elif text == DATABASE_DOWN:  # an outage, not a bug: one line, no traceback
        log.warning("the database is unavailable: %s: %s", type(original).__name__, str(original)[:200])
    return text


def fit(text: str, limit: int = CONTENT_MAX) -> str:
    """`text` cut to Discord's content limit (a last resort: messages quote user input shortened)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def send_error(interaction: discord.Interaction, text: str) -> None:
    """Reply ephemerally whether or not the interaction was already answered or deferred."""
    text = fit(text)
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True)
        else:
            await interaction.response.send_message(text, ephemeral=True)
    except discord.HTTPException:
        log.exception("could not send the error message to the user")


async def on_app_command_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
    """`CommandTree.on_error`: one clear ephemeral message per failure."""
    await send_error(interaction, describe(error))
