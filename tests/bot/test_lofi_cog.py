"""The /lofi flow with a fake interaction: queue, progress, post with buttons and votes; failures explained."""

from __future__ import annotations

from types import SimpleNamespace

import discord
import pytest

from bot.app import LofiBot
from bot.errors import AlreadyQueued
from db import repository as repo
from db.models import TrackStatus
from music.request import TrackRequest, mood_names
from serving.errors import ServingUnavailable
from tests.bot.conftest import FakeComposer, resources


class FakeMessage:
    def __init__(self, message_id):
        self.id = message_id
        self.channel = SimpleNamespace(id=2)
        self.jump_url = f"https://discord.com/channels/1/2/{message_id}"
        self.reactions: list[str] = []

    async def add_reaction(self, emoji):
        self.reactions.append(emoji)


class FakeInteraction:
    def __init__(self, user_id=11):
        self.user = SimpleNamespace(id=user_id, mention=f"<@{user_id}>", display_name="alice")
        self.guild_id, self.channel_id = 1, 2
        self.application_id, self.token = 3, "interaction-token"
        # the bot is in the guild (bot_is_member): the post gets vote reactions
        self.client = SimpleNamespace(get_guild=lambda guild_id: SimpleNamespace(id=guild_id))
        self.filesize_limit = 10 * 2**20
        self.edits: list[str] = []
        self.sent: list[dict] = []
        self.deferred = None
        outer = self

        class Response:
            def is_done(self):
                return outer.deferred is not None

            async def defer(self, *, ephemeral=False, thinking=False):
                outer.deferred = {"ephemeral": ephemeral, "thinking": thinking}

            async def send_message(self, content=None, **kw):
                outer.sent.append({"content": content, **kw})

        class Followup:
            async def send(self, content=None, **kw):
                outer.sent.append({"content": content, **kw})
                return outer.posted

        self.response, self.followup = Response(), Followup()
        self.posted = FakeMessage(777)

    async def edit_original_response(self, *, content=None, **kw):
        self.edits.append(content)


@pytest.fixture
async def make_bot(settings, sessionmaker):
    bots = []

    async def make(composer):
        bot = LofiBot(settings, resources(sessionmaker, composer), sync_commands=False)
        await bot.setup_hook()
        bots.append(bot)
        return bot

    yield make
    for bot in bots:
        await bot.close()


def _request():
    return TrackRequest(length_s=60, mood=mood_names()[0], seed=5)


async def test_track_is_posted_with_files_buttons_and_votes(make_bot):
    bot = await make_bot(FakeComposer())
    inter = FakeInteraction()
    await bot.poster.make_and_post(inter, _request())
    assert inter.deferred == {"ephemeral": True, "thinking": True}
    post = inter.sent[-1]
    assert [f.filename for f in post["files"]] == ["track.mp3", "track.mid", "cover.png"]
    embed: discord.Embed = post["embed"]
    fields = {f.name: f.value for f in embed.fields}
    assert fields["Seed"] == "5" and fields["Key"] == "A minor" and "lofi_member_0 v3" in fields["Models"]
    assert embed.image.url == "attachment://cover.png"
    custom_ids = {item.custom_id for item in post["view"].children}
    assert any(cid.startswith("lofi:var:") for cid in custom_ids)
    assert any(cid.startswith("lofi:midi:") for cid in custom_ids)
    assert inter.posted.reactions == ["👍", "👎"]
    assert "Done" in inter.edits[-1]
    async with bot.sessionmaker() as s:
        track = await repo.track_by_message(s, 777)
    assert track.status is TrackStatus.done


async def test_serving_down_is_explained_and_recorded(make_bot):
    bot = await make_bot(FakeComposer(error=ServingUnavailable("connection refused")))
    inter = FakeInteraction()
    await bot.poster.make_and_post(inter, _request())
    assert "not reachable" in inter.edits[-1]
    async with bot.sessionmaker() as s:
        rows = await repo.history(s, 11)
    assert rows[0].track.status is TrackStatus.failed


async def test_second_request_refused_before_deferring(make_bot):
    bot = await make_bot(FakeComposer())
    bot.queue._active_users.add(11)  # a job of this user is running
    inter = FakeInteraction()
    with pytest.raises(AlreadyQueued):
        await bot.poster.make_and_post(inter, _request())
    assert inter.deferred is None  # so the error handler can answer ephemerally
