"""Logging without secrets: a filter that redacts Discord tokens from every record, installed by `lofi`.

At DEBUG, discord.py logs every HTTP request's URL (`POST .../webhooks/<app id>/<interaction token>/...
has returned 200`, `.../interactions/<id>/<token>/callback`) and every gateway event's payload (the
INTERACTION_CREATE dict has `'token': '...'`). An interaction token lets whoever reads the log answer in the
bot's name for 15 minutes; the bot token for good. The filter sits on the handlers (a logger's own filter
would miss the records of its children), so every record that reaches a log is redacted: its message, and
the text of its exception and stack.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

REDACTED = "[REDACTED]"

# URL paths with a token in them: /webhooks/<id>/<token>, /interactions/<id>/<token>
_PATH_TOKEN = re.compile(r"(/(?:webhooks|interactions)/\d+/)([^/\s?#'\"]+)")
# A token in a dict repr or JSON ('token': '...', "token": "..."), as in gateway payloads
_KEY_TOKEN = re.compile(r"""(['"](?:token|access_token|refresh_token)['"]\s*:\s*['"])([^'"]+)(['"])""", re.I)
# An Authorization header value: `Bot <token>` / `Bearer <token>`
_AUTH = re.compile(r"\b(Bot|Bearer)\s+([A-Za-z0-9_.\-]{20,})")
# What a Discord bot token looks like (base64 user id . timestamp . HMAC)
_BOT_TOKEN = re.compile(r"[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}")


class RedactTokens(logging.Filter):
    """Rewrites each record so that no interaction, webhook or bot token (nor a registered secret) shows."""

    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__()
        self.secrets: set[str] = set()
        for s in secrets:
            self.add_secret(s)

    def add_secret(self, value: str | None) -> None:
        """Redact this exact value too (the bot's own token, whatever it looks like)."""
        if value and len(value.strip()) >= 6:
            self.secrets.add(value.strip())

    def redact(self, text: str) -> str:
        """`text` with every token replaced by [REDACTED]."""
        for s in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(s, REDACTED)
        text = _PATH_TOKEN.sub(rf"\1{REDACTED}", text)
        text = _KEY_TOKEN.sub(rf"\1{REDACTED}\3", text)
        text = _AUTH.sub(rf"\1 {REDACTED}", text)
        return _BOT_TOKEN.sub(REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let the handler report it as logging does
            return True
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


# The one filter of this process (secrets registered on it reach every handler it is installed on).
REDACTION = RedactTokens()


def install_redaction(handlers: Iterable[logging.Handler] | None = None) -> RedactTokens:
    """Put the filter on `handlers` (default: the root logger's) once; returns it."""
    for handler in logging.getLogger().handlers if handlers is None else handlers:
        if REDACTION not in handler.filters:
            handler.addFilter(REDACTION)
    return REDACTION


def setup_logging(verbose: bool = False) -> RedactTokens:
    """`lofi`'s logging: INFO (DEBUG with -v) to stderr, every record redacted."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    return install_redaction()
