"""The environment child processes get: ours without secrets (fluidsynth, ffmpeg, the retrain process).

A child inherits the whole environment unless it is given one; the Discord token (`DISCORD_TOKEN`, or
`discord_token` as pydantic-settings also reads it), API keys and database passwords have no business in
fluidsynth's or ffmpeg's. Every place that starts a child passes `env=child_env()`, or, where it cannot (a
multiprocessing worker), starts it inside `secrets_hidden_from_children()`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

# Variable names that hold secrets, whatever their case: DISCORD_TOKEN, discord_token, AWS_SECRET_ACCESS_KEY,
# PGPASSWORD, OPENAI_API_KEY, GOOGLE_APPLICATION_CREDENTIALS...
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|KEY|CREDENTIAL|AUTH", re.IGNORECASE)
# A URL with a password in it (DATABASE_URL=postgresql://user:pw@host/db, a proxy with credentials).
URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@", re.IGNORECASE)
# What a Discord bot token looks like (base64 user id . timestamp . HMAC), under whatever name it hides.
DISCORD_TOKEN_VALUE = re.compile(r"[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}")


def is_secret(name: str, value: str, secrets: Iterable[str] = ()) -> bool:
    """True when the variable `name=value` must not reach a child process."""
    if SECRET_NAME.search(name) or URL_WITH_PASSWORD.search(value) or DISCORD_TOKEN_VALUE.search(value):
        return True
    return any(s and s in value for s in secrets)


def child_env(
    extra: Mapping[str, str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    secrets: Iterable[str] = (),
) -> dict[str, str]:
    """A copy of `environ` (default: this process's) without secrets, plus `extra` (which is trusted).

    Args:
        extra: variables to set in the child (after scrubbing, so they are kept).
        environ: the environment to start from.
        secrets: known secret values: any variable containing one is dropped too.
    """
    source = os.environ if environ is None else environ
    secrets = tuple(secrets)
    env = {k: v for k, v in source.items() if not is_secret(k, v, secrets)}
    env.update(extra or {})
    return env


@contextmanager
def secrets_hidden_from_children() -> Iterator[None]:
    """Take the secret variables out of this process's environment while a child is started that cannot be
    given an environment of its own (multiprocessing's spawn inherits ours), and put them back afterwards.

    Nothing reads a secret from the environment after start-up (settings are read once), so the moment they
    are missing is harmless; a variable another thread sets meanwhile is kept.
    """
    hidden = {k: v for k, v in os.environ.items() if is_secret(k, v)}
    for name in hidden:
        os.environ.pop(name, None)
    try:
        yield
    finally:
        for name, value in hidden.items():
            os.environ.setdefault(name, value)
