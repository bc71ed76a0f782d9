"""`lofi bot`: refuses clearly without a token; the token never shows in settings' repr."""

from __future__ import annotations

import argparse

from lofi.cli import bot as cli
from lofi.settings import Settings


def test_missing_token_fails_clearly(monkeypatch, capsys):
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    monkeypatch.setattr("lofi.cli.bot.get_settings", lambda: Settings(_env_file=None))
    assert cli.run(argparse.Namespace(no_sync=False)) == 2
    assert "DISCORD_TOKEN is not set" in capsys.readouterr().err


def test_token_is_not_in_repr():
    s = Settings(_env_file=None, discord_token="super-secret-token")
    assert "super-secret-token" not in repr(s) and "super-secret-token" not in str(s.model_dump())


def test_registered_as_subcommand():
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bot", "--no-sync"])
    assert args.func is cli.run and args.no_sync
