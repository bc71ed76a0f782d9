"""/lofi-status shows the model server's internals to admins only (issue 15): a member reads whether it is
reachable; an admin reads its address, the raw error and the members' states."""

from __future__ import annotations

from types import SimpleNamespace

from tests.e2e.fake_discord import EPHEMERAL
from tests.e2e.test_bot_e2e import of, text_of

ADDRESS = "10.20.30.40:8500"
MANAGE_GUILD = 1 << 5


def _client(up: bool):
    async def model_status():
        if not up:
            raise ConnectionError(f"failed to connect to all addresses; last error: ipv4:{ADDRESS}: refused")
        return {"lofi_member_0": {"version": 7, "state": "AVAILABLE", "base_path": "/srv/models/m0"}}

    async def factory(settings):
        return SimpleNamespace(model_status=model_status)

    return factory


async def _status_text(fake, **who) -> str:
    state = await fake.send_interaction("lofi-status", {}, **who)
    edit = await fake.wait_for(of(state, "original_edit"))
    assert edit.ok and edit.message["flags"] & EPHEMERAL
    return text_of(edit)


async def test_member_sees_reachability_only_and_admin_sees_internals_when_down(
    fake_discord, start_bot, fake_pipeline
):
    await start_bot(pipeline=fake_pipeline, client_factory=_client(up=False))
    member = fake_discord.make_user(1_100_000_000_000_007_000, "member")
    text = await _status_text(fake_discord, user=member)
    assert "model server: not reachable" in text
    assert ADDRESS not in text and "10.20.30.40" not in text and "ConnectionError" not in text

    admin = fake_discord.make_user(1_100_000_000_000_007_001, "manager")
    text = await _status_text(fake_discord, user=admin, member_permissions=MANAGE_GUILD)
    assert ADDRESS in text and "ConnectionError" in text
    fake_discord.assert_no_errors()


async def test_member_sees_reachable_without_member_details(fake_discord, start_bot, fake_pipeline):
    await start_bot(pipeline=fake_pipeline, client_factory=_client(up=True))
    member = fake_discord.make_user(1_100_000_000_000_007_002, "member")
    text = await _status_text(fake_discord, user=member)
    assert "model server: reachable" in text and "not reachable" not in text
    assert "/srv/models" not in text and "lofi_member_0" not in text

    admin = fake_discord.make_user(1_100_000_000_000_007_003, "manager")
    text = await _status_text(fake_discord, user=admin, member_permissions=MANAGE_GUILD)
    assert "lofi_member_0" in text and "version=7" in text
    fake_discord.assert_no_errors()
