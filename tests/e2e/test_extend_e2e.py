"""The Extend button on a posted track: a length menu, then a longer version that continues the track's
tokens, posted like a new track."""

from __future__ import annotations

from tests.e2e.fake_discord import EPHEMERAL
from tests.e2e.test_bot_e2e import of, text_of


def buttons_of(rec) -> list[str]:
    return [c["custom_id"] for row in rec.json["components"] for c in row["components"]]


async def test_extend_continues_the_track_and_posts_the_longer_version(
    fake_discord, start_bot, fake_pipeline
):
    await start_bot(pipeline=fake_pipeline)
    state = await fake_discord.send_interaction("lofi", {"length": "30s", "mood": "night", "seed": 42})
    posted = await fake_discord.wait_for(of(state, "followup"), timeout=20)
    ext = next(b for b in buttons_of(posted) if b.startswith("lofi:ext:"))

    click = await fake_discord.send_component(ext, posted.message["id"])
    menu = await fake_discord.wait_for(of(click, "interaction_callback"))
    assert menu.ok and menu.json["data"]["flags"] & EPHEMERAL
    select = menu.json["data"]["components"][0]["components"][0]
    assert select["type"] == 3 and [o["value"] for o in select["options"]] == ["30", "60", "120", "180"]

    choose = await fake_discord.send_component(
        select["custom_id"], menu.message["id"], component_type=3, values=["60"]
    )
    longer = await fake_discord.wait_for(of(choose, "followup"), timeout=20)
    assert longer.ok and not longer.message["flags"] & EPHEMERAL
    (request, prefix, base) = fake_pipeline.extensions[0]
    assert prefix == [1, 2, 3]  # the original track's tokens, from the database
    assert (base.length_s, base.mood, base.seed) == (30.0, "night", 42)
    assert (request.length_s, request.mood, request.seed) == (90.0, "night", 42)
    assert "1:30" in text_of(longer)
    assert {f.filename.rsplit(".", 1)[-1] for f in longer.files} == {"mp3", "mid", "png"}
    assert any(b.startswith("lofi:ext:") for b in buttons_of(longer))  # and it can be extended again
    fake_discord.assert_no_errors()
