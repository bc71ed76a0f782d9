"""Issue 24, defects 5 and 6: what a direct message and a forged button may see.

Listings are guild-scoped (in a DM: the caller's own tracks only); a button acts only on a track of the guild
it was clicked in (or, in a DM, on the caller's own track); a button's custom id and an Extend menu's value
are checked like slash options; whatever is forged gets a clear ephemeral answer, never "Something went
wrong". The real LofiBot runs against the strict fake Discord, in two guilds.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from db import repository as repo
from tests.e2e.fake_discord import FakeDiscord
from tests.e2e.test_bot_e2e import ephemeral_reply, of, text_of

UNEXPECTED = "Something went wrong"


@pytest.fixture
def second_guild(fake_discord) -> str:
    """The bot is in a second guild too (added before it connects)."""
    return fake_discord.add_guild(int(fake_discord.guild_id) + (1 << 22), name="Other Guild").id


async def _row(bot, *, user: dict[str, Any], guild_id: str | None, title: str) -> int:
    """A finished, posted track of ``user`` in ``guild_id``, straight into the bot's database."""
    async with bot.sessionmaker.begin() as s:
        track = await repo.create_track(
            s,
            user_id=int(user["id"]),
            user_name=user["username"],
            guild_id=int(guild_id) if guild_id else None,
            mood_requested="rainy",
            length_requested_s=30.0,
            seed=1,
        )
        await repo.mark_done(
            s, track.id, mood="rainy", length_s=30.0, bpm=80.0, key="A minor", title=title,
            mp3_path="/nonexistent.mp3", midi_path="/nonexistent.mid",
        )  # fmt: skip
        await repo.set_message(s, track.id, message_id=10_000 + track.id, channel_id=5)
        return track.id


@pytest.fixture
async def listed(fake_discord, second_guild, start_bot, fake_pipeline):
    """Alice has a track in each guild, Bob one in the second guild only."""
    bot = await start_bot(pipeline=fake_pipeline)
    alice, bob = fake_discord.default_user, fake_discord.make_user(1_100_000_000_000_002_000, "bob")
    await _row(bot, user=alice, guild_id=fake_discord.guild_id, title="alice-first-guild")
    await _row(bot, user=alice, guild_id=second_guild, title="alice-other-guild")
    await _row(bot, user=bob, guild_id=second_guild, title="bob-other-guild")
    return alice, bob


async def _answer(fake: FakeDiscord, state) -> str:
    """What the user read in the bot's first answer to ``state`` (public or ephemeral)."""
    rec = await fake.wait_for(lambda r: r.interaction_id == state.id and r.ok and r.kind != "get_original")
    return text_of(rec)


# ---- defect 5: direct messages ---------------------------------------------------------------------------


async def test_top_in_a_dm_lists_only_the_callers_own_tracks(fake_discord, listed):
    alice, bob = listed
    text = await _answer(fake_discord, await fake_discord.send_dm_interaction("lofi-top", {"period": "all"}))
    assert "alice-first-guild" in text and "alice-other-guild" in text
    assert "bob-other-guild" not in text and UNEXPECTED not in text
    stranger = fake_discord.make_user(1_100_000_000_000_003_000, "carol")
    state = await fake_discord.send_dm_interaction("lofi-top", {"period": "all"}, user=stranger)
    text = await _answer(fake_discord, state)
    assert "guild" not in text and UNEXPECTED not in text, text  # nobody's titles, no error
    fake_discord.assert_no_errors()


async def test_top_in_a_guild_lists_that_guilds_tracks(fake_discord, listed):
    text = await _answer(fake_discord, await fake_discord.send_interaction("lofi-top", {"period": "all"}))
    assert "alice-first-guild" in text and "other-guild" not in text


async def test_history_in_a_dm_shows_your_own_and_refuses_someone_elses(fake_discord, listed):
    alice, bob = listed
    text = await ephemeral_reply(fake_discord, await fake_discord.send_dm_interaction("lofi-history"))
    assert "alice-first-guild" in text and "alice-other-guild" in text and UNEXPECTED not in text
    state = await fake_discord.send_dm_interaction("lofi-history", {"user": bob["id"]})
    text = await ephemeral_reply(fake_discord, state)
    assert "bob-other-guild" not in text and UNEXPECTED not in text
    assert "server" in text, text  # says where to ask instead
    fake_discord.assert_no_errors()


async def test_history_of_a_user_without_resolved_data_names_them(fake_discord, listed):
    # Discord resolves a user option; a payload without `resolved` gives discord.py a bare Object.
    alice, bob = listed
    state = await fake_discord.send_interaction("lofi-history", {"user": alice["id"]}, user=bob)
    text = await ephemeral_reply(fake_discord, state)
    assert "alice-first-guild" in text and "other-guild" not in text and UNEXPECTED not in text, text
    assert "Tracks by listener" in text  # the name the tracks were recorded with


@pytest.mark.parametrize("raw", [{"period": "all"}, "all", 5, [1], [{"name": "period"}], [None]])
@pytest.mark.parametrize("where", ["dm", "guild"])
async def test_options_that_are_not_a_list_of_options_get_a_clear_answer(
    fake_discord, listed, caplog, raw, where
):
    with caplog.at_level(logging.ERROR):
        if where == "dm":
            state = await fake_discord.send_dm_interaction("lofi-top", raw_options=raw)
        else:
            state = await fake_discord.send_interaction("lofi-top", raw_options=raw)
        text = await ephemeral_reply(fake_discord, state)
    assert "option" in text and UNEXPECTED not in text, text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


# ---- defect 6: buttons ------------------------------------------------------------------------------------


async def _posted_track(fake: FakeDiscord) -> int:
    """``/lofi`` in the first guild: the id of the posted track (from its buttons)."""
    state = await fake.send_interaction("lofi", {"length": "30s", "mood": "rainy", "seed": 7})
    posted = await fake.wait_for(of(state, "followup"), timeout=20)
    ids = [c["custom_id"] for row in posted.json["components"] for c in row["components"]]
    return int(next(i for i in ids if i.startswith("lofi:midi:")).rsplit(":", 1)[1])


@pytest.fixture
async def posted(fake_discord, second_guild, start_bot, fake_pipeline) -> int:
    await start_bot(pipeline=fake_pipeline)
    return await _posted_track(fake_discord)


def _files_of(fake: FakeDiscord, state) -> list[str]:
    return [f.filename for r in fake.records if r.interaction_id == state.id for f in r.files]


async def test_midi_only_in_the_tracks_guild_or_its_owners_dm(fake_discord, posted, second_guild):
    mine = await fake_discord.forge_component(f"lofi:midi:{posted}")
    await ephemeral_reply(fake_discord, mine)
    assert any(name.endswith(".mid") for name in _files_of(fake_discord, mine))  # the control
    owner_dm = await fake_discord.forge_component(f"lofi:midi:{posted}", dm=True)
    await ephemeral_reply(fake_discord, owner_dm)
    assert any(name.endswith(".mid") for name in _files_of(fake_discord, owner_dm))

    stranger = fake_discord.make_user(1_100_000_000_000_003_000, "carol")
    for state in (
        await fake_discord.forge_component(f"lofi:midi:{posted}", guild_id=second_guild),
        await fake_discord.forge_component(f"lofi:midi:{posted}", dm=True, user=stranger),
    ):
        text = await ephemeral_reply(fake_discord, state)
        assert "no longer available" in text and not _files_of(fake_discord, state), text
    fake_discord.assert_no_errors()


@pytest.mark.parametrize(
    "custom_id",
    ["lofi:var:{id}", "lofi:ext:{id}", "lofi:extlen:{id}", "lofi:stems:{id}", "lofi:loop:{id}"],
)
async def test_other_buttons_refuse_a_track_of_another_guild(
    fake_discord, posted, second_guild, fake_pipeline, custom_id
):
    values = ["60"] if "extlen" in custom_id else None
    state = await fake_discord.forge_component(
        custom_id.format(id=posted), guild_id=second_guild, values=values
    )
    text = await ephemeral_reply(fake_discord, state)
    assert "no longer available" in text, text
    assert len(fake_pipeline.calls) == 1 and not fake_pipeline.extensions  # nothing made for guild 2
    fake_discord.assert_no_errors()


@pytest.mark.parametrize("value", ["-10", "0", "-19.9", "nan", "inf", "abc", "45", "60.5", "1e3", ""])
async def test_extend_refuses_lengths_it_did_not_offer(fake_discord, posted, fake_pipeline, value):
    state = await fake_discord.forge_component(f"lofi:extlen:{posted}", values=[value])
    text = await ephemeral_reply(fake_discord, state)
    assert "Extend" in text and UNEXPECTED not in text, text
    assert len(fake_pipeline.calls) == 1 and not fake_pipeline.extensions
    fake_discord.assert_no_errors()


async def test_extend_with_an_offered_length_still_works(fake_discord, posted, fake_pipeline):
    state = await fake_discord.forge_component(f"lofi:extlen:{posted}", values=["60"])
    posted_again = await fake_discord.wait_for(of(state, "followup"), timeout=20)
    assert posted_again.ok and len(fake_pipeline.extensions) == 1


@pytest.mark.parametrize(
    "custom_id",
    [
        "lofi:midi:" + "9" * 40,
        "lofi:var:" + "9" * 19,  # over a 64-bit id
        "lofi:midi:abc",
        "lofi:var:nan",
        "lofi:ext:-1",
        "lofi:extlen:0",
        "lofi:radio:" + "1" * 30,
        "lofi:midi:",
        "lofi:stems:abc",
        "lofi:loop:-1",
        "lofi:stems:" + "9" * 20,
    ],
)
async def test_bad_button_ids_get_a_clear_answer(fake_discord, posted, fake_pipeline, caplog, custom_id):
    values = ["60"] if custom_id.startswith("lofi:extlen:") else None
    with caplog.at_level(logging.ERROR):
        state = await fake_discord.forge_component(custom_id, values=values)
        text = await ephemeral_reply(fake_discord, state)
    assert "button" in text and UNEXPECTED not in text, text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert len(fake_pipeline.calls) == 1
    fake_discord.assert_no_errors()
