"""`lofi bot` as a user starts it: a separate process configured by environment variables alone."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest

pytestmark = pytest.mark.slow


async def test_lofi_bot_starts_against_the_fake_with_only_environment_settings(fake_discord, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "SERVING_", "DATABASE_"))}
    env.update(
        DISCORD_TOKEN=fake_discord.token,
        DISCORD_GUILD_ID=str(fake_discord.guild_id),
        DISCORD_API_BASE=fake_discord.api_base,
        DISCORD_GATEWAY_URL=fake_discord.gateway_url,
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'lofi.sqlite3'}",
        MODELS_DIR=str(tmp_path / "models"),
        OUT_DIR=str(tmp_path / "out"),
        SERVING_ADDRESS="127.0.0.1:1",  # nothing there: the bot must still start and say so per request
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lofi.cli",
        "bot",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        registered = await fake_discord.wait_for("guild_commands", timeout=90)
        names = {c["name"] for c in registered.json}
        assert {"lofi", "lofi-top", "lofi-history", "lofi-status", "lofi-retrain"} <= names
        await fake_discord.wait_identified(30)
        state = await fake_discord.send_interaction("lofi", {"length": "3s", "mood": "rainy"})
        answer = await fake_discord.wait_for(
            lambda r: (
                r.interaction_id == state.id
                and r.kind in ("interaction_callback", "original_edit", "followup")
            ),
            timeout=30,
        )
        assert answer.ok
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            output = (await asyncio.wait_for(proc.communicate(), 30))[0].decode(errors="replace")
        except TimeoutError:
            proc.kill()
            output = (await proc.communicate())[0].decode(errors="replace")
    assert (tmp_path / "lofi.sqlite3").exists()
    assert fake_discord.token not in output, "the bot logged its token"
