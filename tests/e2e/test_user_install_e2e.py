"""Issue 23 item 4: the app everywhere. The track commands are user-installable and work in the bot's DMs, group
DMs and servers where only the user installed the app (the bot is not a member: webhook answers only, no
reactions, no events); the radio and the admin command stay with servers that added the bot. The real LofiBot,
synced globally (as a user-installable app must be), against the strict fake Discord, which checks the synced
payloads against Discord's OpenAPI spec and refuses what Discord refuses where the bot is not a member.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import discord
import pytest

from db import repository as repo
from db.models import Track
from tests.e2e.fake_discord import (
    EPHEMERAL,
    CommandUnavailable,
    FakeDiscord,
    validate_body,
)
from tests.e2e.test_bot_e2e import ephemeral_reply, of, text_of

TRACK_COMMANDS = ("lofi", "lofi-top", "lofi-history", "lofi-status")
GROUP_DM = "1100000000000009999"
MANAGE_GUILD = 1 << 5
INTERNALS = "10.20.30.40:8500"


@pytest.fixture
def foreign_guild(fake_discord) -> str:
    """A server where users installed the app but the bot is not a member."""
    gid = int(fake_discord.guild_id) + (5 << 22)
    return fake_discord.add_guild(gid, name="Friends Only", bot_member=False).id


@pytest.fixture
async def app(fake_discord, foreign_guild, start_bot, fake_pipeline):
    """The bot, its commands synced globally (DISCORD_GUILD_ID unset)."""
    return await start_bot(pipeline=fake_pipeline, discord_guild_id=None)


def _buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["custom_id"]: c for row in message["components"] for c in row["components"]}


def _votes(message: dict[str, Any], track_id: int) -> tuple[str, str]:
    """The labels (counts) of the 👍 and 👎 buttons of a post."""
    buttons = _buttons(message)
    return buttons[f"lofi:vote:up:{track_id}"]["label"], buttons[f"lofi:vote:down:{track_id}"]["label"]


async def _post(fake: FakeDiscord, state) -> tuple[Any, int]:
    """The public follow-up that posted the track asked for by ``state``, and the track's id."""
    followup = await fake.wait_for(of(state, "followup"), timeout=20)
    assert followup.ok, followup.response
    assert not followup.message["flags"] & EPHEMERAL
    assert {f.filename.rsplit(".", 1)[-1] for f in followup.files} == {"mp3", "mid", "png"}
    midi = next(b for b in _buttons(followup.message) if b.startswith("lofi:midi:"))
    return followup, int(midi.rsplit(":", 1)[1])


async def _press(fake: FakeDiscord, custom_id: str, message_id: str, user=None) -> dict[str, Any]:
    """Click a vote button; the message as the bot's UPDATE_MESSAGE answer left it."""
    state = await fake.send_component(custom_id, message_id, user=user)
    rec = await fake.wait_for(of(state, "interaction_callback"))
    assert rec.ok and rec.json["type"] == 7, (rec.status, rec.json)
    return fake.messages[message_id]


async def _stored_vote(bot, track_id: int, user_id: str) -> int | None:
    async with bot.sessionmaker() as s:
        row = await repo._vote_row(s, track_id, int(user_id))
        return None if row is None else row.value


def _nothing_on_channels(fake: FakeDiscord) -> None:
    """The bot used the interaction webhooks only: no reactions, no channel posts, nothing refused."""
    kinds = {r.kind for r in fake.records}
    assert not kinds & {"reaction_add", "channel_message", "get_channel", "get_message"}, kinds
    fake.assert_no_errors()
    assert not fake.self_check_problems, fake.self_check_problems


async def test_synced_commands_say_who_may_install_them_and_where(fake_discord, app):
    synced = await fake_discord.wait_for("commands")
    assert synced.ok, synced.response  # the body passed the fake's check against Discord's OpenAPI spec
    by_name = {c["name"]: c for c in synced.json}
    for name in TRACK_COMMANDS:
        assert by_name[name]["integration_types"] == [0, 1], name  # server and user installs
        assert by_name[name]["contexts"] == [0, 1, 2], name  # servers, the bot's DMs, group DMs
    for name in ("lofi-radio", "lofi-retrain"):
        assert by_name[name]["integration_types"] == [0] and by_name[name]["contexts"] == [0], name
    # the spec the fake checks sync bodies against knows these fields: a context Discord lacks is refused
    bad = [{**synced.json[0], "contexts": [3]}]
    assert validate_body("/applications/{application_id}/commands", "PUT", bad) is not None
    assert not fake_discord.find("guild_commands")
    fake_discord.assert_no_errors()


async def test_radio_and_retrain_are_offered_only_in_servers_that_added_the_bot(
    fake_discord, foreign_guild, app
):
    for name in ("lofi-radio", "lofi-retrain"):
        with pytest.raises(CommandUnavailable):
            await fake_discord.send_dm_interaction(name)
        with pytest.raises(CommandUnavailable):
            await fake_discord.send_dm_interaction(name, private_channel=GROUP_DM)
        with pytest.raises(CommandUnavailable):
            await fake_discord.send_interaction(name, guild_id=foreign_guild)
        fake_discord.find_command(name)  # still there in the bot's own server
    for name in TRACK_COMMANDS:  # offered everywhere (the check raises where Discord would not offer it)
        cmd = fake_discord.find_command(name, foreign_guild)
        for context, owners in ((0, {"1": "1"}), (1, {"1": "1"}), (2, {"1": "1"}), (0, {"0": "1"})):
            fake_discord.check_offered(cmd, {"context": context, "authorizing_integration_owners": owners})


async def test_lofi_in_a_dm_posts_the_track_with_vote_buttons(fake_discord, app):
    bot, user = app, fake_discord.default_user
    state = await fake_discord.send_dm_interaction("lofi", {"length": "30s", "mood": "rainy"})
    followup, track_id = await _post(fake_discord, state)
    message = followup.message
    assert "guild_id" not in message and message["channel_id"] == fake_discord.dm_channel_id(user)
    assert _votes(message, track_id) == ("0", "0")
    assert len(message["components"]) == 2  # the track's buttons, then the votes on a row of their own

    message = await _press(fake_discord, f"lofi:vote:up:{track_id}", message["id"])
    assert _votes(message, track_id) == ("1", "0")
    assert await _stored_vote(bot, track_id, user["id"]) == 1
    message = await _press(fake_discord, f"lofi:vote:down:{track_id}", message["id"])
    assert _votes(message, track_id) == ("0", "1")  # one vote per user: 👎 replaces 👍
    message = await _press(fake_discord, f"lofi:vote:down:{track_id}", message["id"])
    assert _votes(message, track_id) == ("0", "0") and await _stored_vote(bot, track_id, user["id"]) is None

    async with bot.sessionmaker() as s:
        track = await s.get(Track, track_id)
        assert track is not None and track.guild_id is None and track.message_id == int(message["id"])
    history = await ephemeral_reply(fake_discord, await fake_discord.send_dm_interaction("lofi-history"))
    assert "rainy" in history and "@me" in history  # a DM jump link
    _nothing_on_channels(fake_discord)


async def test_lofi_in_a_server_the_bot_is_not_in(fake_discord, foreign_guild, app):
    bot = app
    assert bot.get_guild(int(foreign_guild)) is None  # Discord never told the bot about it
    guest = fake_discord.make_user(1_100_000_000_000_004_000, "guest")
    state = await fake_discord.send_interaction(
        "lofi", {"length": "30s", "mood": "rainy"}, guild_id=foreign_guild
    )
    followup, track_id = await _post(fake_discord, state)
    message = followup.message
    assert message["guild_id"] == foreign_guild
    assert message["channel_id"] == fake_discord.guild(foreign_guild).channel_id
    assert _votes(message, track_id) == ("0", "0")
    done = await fake_discord.wait_for(lambda r: r.kind == "original_edit" and "Done" in text_of(r))
    assert f"/channels/{foreign_guild}/" in text_of(done)

    message = await _press(fake_discord, f"lofi:vote:up:{track_id}", message["id"], user=guest)
    message = await _press(fake_discord, f"lofi:vote:up:{track_id}", message["id"])
    assert _votes(message, track_id) == ("2", "0")
    # a reaction there reaches nobody: Discord sends the bot no events of a server it is not in
    assert not await fake_discord.add_reaction(message["channel_id"], message["id"], guest["id"], "👎")

    top = await fake_discord.send_interaction("lofi-top", {"period": "all"}, guild_id=foreign_guild)
    reply = await fake_discord.wait_for(of(top, "interaction_callback"))
    assert "+2" in text_of(reply) and "👍2" in text_of(reply)
    home = await fake_discord.send_interaction("lofi-top", {"period": "all"})
    reply = await fake_discord.wait_for(of(home, "interaction_callback"))
    assert "+2" not in text_of(reply)  # that server's tracks stay there
    _nothing_on_channels(fake_discord)

    # what the bot no longer tries there, Discord refuses: it cannot see the channel
    with pytest.raises(discord.Forbidden):
        await bot.http.add_reaction(message["channel_id"], message["id"], "👍")


async def test_lofi_in_a_group_dm_lets_its_members_vote_and_no_one_else(fake_discord, app):
    friend = fake_discord.make_user(1_100_000_000_000_005_000, "friend")
    stranger = fake_discord.make_user(1_100_000_000_000_006_000, "stranger")
    state = await fake_discord.send_dm_interaction(
        "lofi", {"length": "30s", "mood": "rainy"}, private_channel=GROUP_DM
    )
    followup, track_id = await _post(fake_discord, state)
    assert followup.message["channel_id"] == GROUP_DM
    message = await _press(fake_discord, f"lofi:vote:up:{track_id}", followup.message["id"], user=friend)
    assert _votes(message, track_id) == ("1", "0")
    _nothing_on_channels(fake_discord)

    # someone elsewhere naming the track in a forged button gets a clear no, and no vote
    forged = await fake_discord.forge_component(f"lofi:vote:up:{track_id}", dm=True, user=stranger)
    assert "no longer available" in await ephemeral_reply(fake_discord, forged)
    assert await _stored_vote(app, track_id, stranger["id"]) is None
    sideways = await fake_discord.forge_component(f"lofi:vote:sideways:{track_id}", dm=True, user=stranger)
    assert "not one I made" in await ephemeral_reply(fake_discord, sideways)


async def test_status_where_the_bot_is_not_in_the_server_keeps_internals_from_its_managers(
    fake_discord, foreign_guild, start_bot, fake_pipeline
):
    async def factory(settings):
        async def model_status():
            raise ConnectionError(f"failed to connect; last error: ipv4:{INTERNALS}: refused")

        return SimpleNamespace(model_status=model_status)

    await start_bot(pipeline=fake_pipeline, client_factory=factory, discord_guild_id=None)
    texts = {}
    for where in (None, foreign_guild):
        state = await fake_discord.send_interaction(
            "lofi-status", {}, guild_id=where, member_permissions=MANAGE_GUILD
        )
        edit = await fake_discord.wait_for(of(state, "original_edit"))
        assert edit.ok and edit.message["flags"] & EPHEMERAL
        texts[where] = text_of(edit)
    assert INTERNALS in texts[None]  # a manager of a server that added the bot is an admin
    assert INTERNALS not in texts[foreign_guild] and "not reachable" in texts[foreign_guild]
    fake_discord.assert_no_errors()
