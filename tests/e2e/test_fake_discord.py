"""The fake Discord itself: strict at the HTTP level, and usable by a real discord.py client."""

from __future__ import annotations

import asyncio
import io
import json

import aiohttp
import discord
import pytest
from discord import app_commands

from tests.e2e.conftest import start_client, stop_client
from tests.e2e.fake_discord import FakeDiscord, match_route, validate_body

MP3_BYTES = b"\xff\xfb\x90\x64" + b"\x00" * 413  # one MPEG-1 Layer III frame header + silence


@pytest.fixture
async def http(fake_discord: FakeDiscord):
    async with aiohttp.ClientSession(base_url=fake_discord.api_base.rsplit("/api/v10", 1)[0]) as session:
        yield session


def bot_auth(fake: FakeDiscord) -> dict[str, str]:
    return {"Authorization": f"Bot {fake.token}"}


def followup_path(fake: FakeDiscord, token: str) -> str:
    return f"/api/v10/webhooks/{fake.application_id}/{token}?wait=true"


async def acked_interaction(fake: FakeDiscord, http: aiohttp.ClientSession):
    state = fake.open_interaction()
    async with http.post(
        f"/api/v10/interactions/{state.id}/{state.token}/callback", json={"type": 5}
    ) as resp:
        assert resp.status == 204, await resp.text()
    return state


# ------------------------------------------------------------------------------ HTTP-level strictness


def test_routes_match_spec_templates_literal_first():
    assert match_route("/webhooks/1/abc/messages/@original", "PATCH") == (
        "/webhooks/{webhook_id}/{webhook_token}/messages/@original",
        {"webhook_id": "1", "webhook_token": "abc"},
    )
    assert match_route("/channels/1/messages/2/reactions/%F0%9F%91%8D/@me", "PUT")[1]["emoji_name"] == "👍"
    assert match_route("/no/such/route", "GET") is None


def test_validator_reports_discord_error_shape():
    body = {"content": "hi", "embeds": [{"title": "x" * 300}]}
    error = validate_body("/webhooks/{webhook_id}/{webhook_token}", "POST", body)
    assert error is not None and error["code"] == 50035 and error["message"] == "Invalid Form Body"
    assert error["errors"]["embeds"]["0"]["title"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
    assert validate_body("/webhooks/{webhook_id}/{webhook_token}", "POST", {"content": "hi"}) is None


async def test_missing_auth_is_401(fake_discord, http):
    async with http.get("/api/v10/users/@me") as resp:
        assert resp.status == 401
    async with http.get("/api/v10/users/@me", headers={"Authorization": "Bot wrong"}) as resp:
        assert resp.status == 401
    async with http.get("/api/v10/users/@me", headers=bot_auth(fake_discord)) as resp:
        assert resp.status == 200
        assert (await resp.json())["id"] == fake_discord.bot_user_id


async def test_unknown_route_is_404(fake_discord, http):
    for path in ("/api/v10/no/such/route", "/elsewhere"):
        async with http.get(path, headers=bot_auth(fake_discord)) as resp:
            assert resp.status == 404
            assert await resp.json() == {"message": "404: Not Found", "code": 0}


async def test_embed_title_too_long_is_invalid_form_body(fake_discord, http):
    state = await acked_interaction(fake_discord, http)
    body = {"content": "hi", "embeds": [{"title": "x" * 300}]}
    async with http.post(followup_path(fake_discord, state.token), json=body) as resp:
        assert resp.status == 400
        error = await resp.json()
    assert error["code"] == 50035 and error["message"] == "Invalid Form Body"
    assert "title" in error["errors"]["embeds"]["0"]
    assert fake_discord.errors and fake_discord.errors[0].kind == "followup"


async def test_unknown_option_type_in_command_registration_is_rejected(fake_discord, http):
    commands = [
        {
            "name": "lofi",
            "description": "make a track",
            "options": [{"type": 99, "name": "length", "description": "how long"}],
        }
    ]
    async with http.put(
        f"/api/v10/applications/{fake_discord.application_id}/commands",
        json=commands,
        headers=bot_auth(fake_discord),
    ) as resp:
        assert resp.status == 400
        assert (await resp.json())["code"] == 50035
    commands[0]["options"][0]["type"] = 3
    async with http.put(
        f"/api/v10/applications/{fake_discord.application_id}/commands",
        json=commands,
        headers=bot_auth(fake_discord),
    ) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())[0]["id"]


async def test_valid_followup_with_file_passes(fake_discord, http):
    state = await acked_interaction(fake_discord, http)
    form = aiohttp.FormData()
    payload = {"content": "your track", "attachments": [{"id": 0, "filename": "track.mp3"}]}
    form.add_field("payload_json", json.dumps(payload), content_type="application/json")
    form.add_field("files[0]", MP3_BYTES, filename="track.mp3", content_type="application/octet-stream")
    async with http.post(followup_path(fake_discord, state.token), data=form) as resp:
        assert resp.status == 200, await resp.text()
        message = await resp.json()
    assert message["attachments"][0]["filename"] == "track.mp3"
    rec = await fake_discord.wait_for("followup")
    assert rec.ok and rec.files[0].data == MP3_BYTES and rec.json["content"] == "your track"


async def test_upload_over_10_mib_is_413(fake_discord, http):
    state = await acked_interaction(fake_discord, http)
    form = aiohttp.FormData()
    form.add_field("payload_json", json.dumps({"attachments": [{"id": 0, "filename": "big.mp3"}]}))
    form.add_field("files[0]", io.BytesIO(b"\0" * (10 * 1024 * 1024 + 1)), filename="big.mp3")
    async with http.post(followup_path(fake_discord, state.token), data=form) as resp:
        assert resp.status == 413
        assert (await resp.json())["code"] == 40005


async def test_followup_before_ack_and_double_ack_are_refused(fake_discord, http):
    state = fake_discord.open_interaction()
    async with http.post(followup_path(fake_discord, state.token), json={"content": "early"}) as resp:
        assert resp.status == 404 and (await resp.json())["code"] == 10015
    callback = f"/api/v10/interactions/{state.id}/{state.token}/callback"
    async with http.post(callback, json={"type": 5}) as resp:
        assert resp.status == 204
    async with http.post(callback, json={"type": 5}) as resp:
        assert resp.status == 400 and (await resp.json())["code"] == 40060


async def test_late_ack_is_unknown_interaction(fake_discord, http):
    fake_discord.ack_deadline = 0.0
    state = fake_discord.open_interaction()
    await asyncio.sleep(0.01)
    async with http.post(
        f"/api/v10/interactions/{state.id}/{state.token}/callback", json={"type": 5}
    ) as resp:
        assert resp.status == 404 and (await resp.json())["code"] == 10062


# ------------------------------------------------------------------------------ a real discord.py client


class MiniClient(discord.Client):
    """One slash command that defers, posts a file as a follow-up and reacts to it."""

    def __init__(self) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_reactions = True
        super().__init__(intents=intents)
        self.tree = app_commands.CommandTree(self)
        self.reactions: asyncio.Queue[discord.RawReactionActionEvent] = asyncio.Queue()
        self.sent: asyncio.Future[discord.Message] | None = None

        @self.tree.command(name="ping-file", description="replies with a file")
        @app_commands.describe(word="a word to echo")
        async def ping_file(
            interaction: discord.Interaction, word: str, times: app_commands.Range[int, 1, 3] = 1
        ):
            await interaction.response.defer(thinking=True)
            file = discord.File(io.BytesIO(MP3_BYTES), filename="ping.mp3")
            embed = discord.Embed(title=f"{word} x{times}", description="from the mini client")
            message = await interaction.followup.send(file=file, embed=embed, wait=True)
            await message.add_reaction("👍")
            await message.add_reaction("👎")
            await interaction.edit_original_response(content="done")

    async def setup_hook(self) -> None:
        await self.tree.sync()

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await self.reactions.put(payload)


async def test_real_client_logs_in_syncs_and_answers_an_interaction(fake_discord):
    client = MiniClient()
    task = await start_client(client, fake_discord)
    try:
        assert client.user is not None and str(client.user.id) == fake_discord.bot_user_id
        guild = client.get_guild(int(fake_discord.guild_id))
        assert guild is not None and guild.get_channel(int(fake_discord.channel_id)) is not None
        sync = await fake_discord.wait_for("commands")
        assert sync.ok and sync.json[0]["name"] == "ping-file"

        state = await fake_discord.send_interaction("ping-file", {"word": "lofi", "times": 2})
        callback = await fake_discord.wait_for("interaction_callback")
        assert callback.ok and callback.json["type"] == 5 and callback.interaction_id == state.id
        followup = await fake_discord.wait_for("followup")
        assert followup.ok, followup.response
        assert followup.json["embeds"][0]["title"] == "lofi x2"
        assert [f.filename for f in followup.files] == ["ping.mp3"] and followup.files[0].data == MP3_BYTES
        await fake_discord.wait_for("reaction_add", count=2)
        edit = await fake_discord.wait_for("original_edit")
        assert edit.ok and edit.json["content"] == "done"
        message_id = followup.message["id"]
        assert fake_discord.reactions_on(message_id) == {
            "👍": {fake_discord.bot_user_id},
            "👎": {fake_discord.bot_user_id},
        }

        user = fake_discord.make_user(1_100_000_000_000_002_000, "voter")
        assert await fake_discord.add_reaction(fake_discord.channel_id, message_id, user["id"], "👍")
        while True:  # the bot's own two reactions come first (Discord sends them too)
            event = await asyncio.wait_for(client.reactions.get(), 5)
            if str(event.user_id) != fake_discord.bot_user_id:
                break
        assert (event.message_id, event.user_id, str(event.emoji)) == (int(message_id), int(user["id"]), "👍")
        fake_discord.assert_no_errors()
        assert fake_discord.heartbeats >= 1
    finally:
        await stop_client(client, task)


async def test_first_followup_after_an_ephemeral_defer_inherits_ephemeral(fake_discord, http):
    """Discord: a follow-up sent while the deferred message still loads resolves it, keeping its flags."""
    state = fake_discord.open_interaction()
    callback = f"/api/v10/interactions/{state.id}/{state.token}/callback?with_response=true"
    async with http.post(callback, json={"type": 5, "data": {"flags": 64}}) as resp:
        assert resp.status == 200
        assert (await resp.json())["interaction"]["response_message_ephemeral"] is True
    async with http.post(
        followup_path(fake_discord, state.token), json={"content": "public?", "flags": 0}
    ) as resp:
        message = await resp.json()
    assert message["id"] == state.original["id"] and message["flags"] & 64
    reaction = (
        f"/api/v10/channels/{fake_discord.channel_id}/messages/{message['id']}/reactions/%F0%9F%91%8D/@me"
    )
    async with http.put(reaction, headers=bot_auth(fake_discord)) as resp:
        assert (
            resp.status == 404 and (await resp.json())["code"] == 10008
        )  # no reactions on ephemeral messages
    async with http.post(followup_path(fake_discord, state.token), json={"content": "second"}) as resp:
        second = await resp.json()
    assert second["id"] != message["id"] and not second["flags"] & 64


async def test_gateway_refuses_a_wrong_token(fake_discord):
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(fake_discord.gateway_url + "?v=10&encoding=json") as ws,
    ):
        hello = await ws.receive_json()
        assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] > 0
        await ws.send_json({"op": 2, "d": {"token": "wrong", "intents": 1, "properties": {}}})
        msg = await ws.receive()
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4004


async def test_reactions_need_the_reactions_intent(fake_discord):
    client = MiniClient()
    client._connection._intents.guild_reactions = False
    task = await start_client(client, fake_discord)
    try:
        state = await fake_discord.send_interaction("ping-file", {"word": "x"})
        followup = await fake_discord.wait_for(
            lambda r: r.kind == "followup" and r.interaction_id == state.id
        )
        assert not await fake_discord.add_reaction(fake_discord.channel_id, followup.message["id"], 42, "👍")
        await fake_discord.wait_for(lambda r: r.kind == "original_edit" and r.interaction_id == state.id)
        assert client.reactions.empty()
    finally:
        await stop_client(client, task)
