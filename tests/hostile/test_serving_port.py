"""Issue 24 #4: a bot whose SERVING_PORT another process holds refuses to start, in one line; it never
composes through a model server it neither started nor was told to use."""

from __future__ import annotations

import socket

from lofi.cli import bot as cli_bot
from lofi.settings import Settings


def test_a_taken_serving_port_is_one_line_and_no_bot(tmp_path, monkeypatch, capfd):
    stranger = socket.socket()
    stranger.bind(("127.0.0.1", 0))
    stranger.listen()
    port = stranger.getsockname()[1]
    started = []

    async def serve(settings, token, make_backend, *, sync):
        started.append(settings.serving_address)

    monkeypatch.setattr(cli_bot, "serve", serve)
    settings = Settings(
        _env_file=None,
        discord_token="a-token-for-the-fake",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}",
        models_dir=tmp_path / "models",
        serving_address=None,
        serving_port=port,
        broker_url=None,
    )
    try:
        code = cli_bot.run_bot(settings, sync=False)
    finally:
        stranger.close()
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 2 and started == []
    assert len(err) == 1 and f"SERVING_PORT {port} is held by another process" in err[0]
