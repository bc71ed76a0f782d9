"""Messages a user never saw: every bad option answered clearly, never longer than Discord accepts.

The real LofiBot runs against the strict fake Discord (which validates every request against Discord's OpenAPI
spec, the 2,000-character content limit included); bad options are injected as a client other than Discord's
could send them.
"""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from db.models import Track
from tests.e2e.test_bot_e2e import ephemeral_reply, of

CONTENT_MAX = 2000


async def _tracks(bot) -> int:
    async with bot.sessionmaker() as s:
        return await s.scalar(select(func.count()).select_from(Track))


async def test_a_6000_character_length_gets_a_short_clear_answer(fake_discord, start_bot, fake_pipeline):
    await start_bot(pipeline=fake_pipeline)
    state = await fake_discord.send_interaction("lofi", {"length": "9" * 3000 + "x" * 3000, "mood": "rainy"})
    text = await ephemeral_reply(fake_discord, state)
    assert len(text) < CONTENT_MAX and "length" in text.lower()
    assert "9" * 100 not in text  # the input is quoted shortened
    assert fake_pipeline.calls == []
    fake_discord.assert_no_errors()


@pytest.mark.parametrize(
    ("options", "expect"),
    [
        ({"mood": "rainy"}, "`length`"),  # a missing required option
        ({"length": "30s"}, "`mood`"),
        ({"length": "30s", "mood": "rainy", "seed": -1}, "`seed`"),  # out of range
        ({"length": "30s", "mood": "rainy", "seed": 2**40}, "`seed`"),
        ({"length": "30s", "mood": "rainy", "tempo": 500}, "`tempo`"),
        ({"length": "30s", "mood": "rainy", "seed": "abc"}, "`seed`"),  # a string where an integer belongs
        ({"length": "30s", "mood": "rainy", "tempo": 90.5}, "`tempo`"),
        ({"length": "30s", "mood": "rainy", "seed": True}, "`seed`"),
        ({"length": 30, "mood": "rainy"}, "`length`"),
        ({"length": "30s", "mood": "jazzy" * 1000}, "`mood`"),  # not one of the choices, and long
    ],
)
async def test_bad_options_are_named_and_nothing_fails(
    fake_discord, start_bot, fake_pipeline, caplog, options, expect
):
    bot = await start_bot(pipeline=fake_pipeline)
    with caplog.at_level(logging.ERROR):
        state = await fake_discord.send_interaction("lofi", options)
        text = await ephemeral_reply(fake_discord, state)
    assert expect in text, text
    assert len(text) < 300 and "Something went wrong" not in text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text  # no traceback logged
    assert fake_pipeline.calls == [] and await _tracks(bot) == 0  # no track row, failed or otherwise
    fake_discord.assert_no_errors()


async def test_other_commands_validate_their_options_too(fake_discord, start_bot, fake_pipeline):
    await start_bot(pipeline=fake_pipeline)
    top = await fake_discord.send_interaction("lofi-top", {"period": "century"})
    assert "`period`" in await ephemeral_reply(fake_discord, top)
    retrain = await fake_discord.send_interaction(
        "lofi-retrain", {"epochs": "many"}, member_permissions=1 << 5
    )
    assert "`epochs`" in await ephemeral_reply(fake_discord, retrain)
    fake_discord.assert_no_errors()


async def test_the_bot_stays_up_and_answers_a_good_request_after_bad_ones(
    fake_discord, start_bot, fake_pipeline
):
    bot = await start_bot(pipeline=fake_pipeline)
    for options in ({"mood": "rainy"}, {"length": "x" * 6000, "mood": "rainy"}, {"length": "30s", "mood": 3}):
        await ephemeral_reply(fake_discord, await fake_discord.send_interaction("lofi", options))
    state = await fake_discord.send_interaction("lofi", {"length": "30s", "mood": "rainy", "seed": 3})
    posted = await fake_discord.wait_for(of(state, "followup"), timeout=20)
    assert posted.ok and any(f.filename.endswith(".mp3") for f in posted.files)
    assert await _tracks(bot) == 1
    fake_discord.assert_no_errors()
