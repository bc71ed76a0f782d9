"""`/lofi key:` through the real bot against the strict fake Discord: the option and its autocomplete, the key
reaching the engine and the posted track, a bad key's message, and Variation and Extend keeping the key."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import mido
import pytest
from sqlalchemy import select

from db.models import Track
from music.arrange import key_name
from tests.e2e.conftest import FakeComposer, ffprobe_format, is_mp3
from tests.e2e.test_bot_e2e import ephemeral_reply, of, text_of
from tests.e2e.test_bot_real_pipeline import tiny_serving  # noqa: F401  (a fixture: pytest finds it by name)
from tests.e2e.test_extend_e2e import buttons_of


class KeyedComposer(FakeComposer):
    """The fake engine, its files' key the plan's (as the real renderer writes it), so the embed shows it."""

    async def make_track(self, request, out_dir: Path, **kwargs):
        result = await super().make_track(request, out_dir, **kwargs)
        result.files = replace(result.files, key=key_name(result.plan.tonic, result.plan.mode))
        return result


def fields_of(rec) -> dict[str, str]:
    return {f["name"]: f["value"] for f in rec.json["embeds"][0]["fields"]}


async def choices_for(fake_discord, typed: str) -> list[dict]:
    """The autocomplete choices the bot answers for `typed` in the key option (callback type 8)."""
    state = await fake_discord.send_autocomplete(
        "lofi", {"length": "30s", "mood": "rainy", "key": typed}, "key"
    )
    answer = await fake_discord.wait_for(of(state, "interaction_callback"))
    assert answer.ok and answer.json["type"] == 8, answer.response
    return answer.json["data"]["choices"]


async def test_the_key_option_offers_the_24_keys_as_the_user_types(fake_discord, start_bot, media):
    await start_bot(pipeline=KeyedComposer(media))
    key = next(o for o in fake_discord.find_command("lofi")["options"] if o["name"] == "key")
    assert (key["type"], key["required"], key["autocomplete"], key["max_length"]) == (3, False, True, 20)

    everything = await choices_for(fake_discord, "")
    assert len(everything) == 24 and {"name": "Eb major", "value": "Eb major"} in everything
    assert [c["value"] for c in await choices_for(fake_discord, "d#m")] == ["Eb minor"]
    assert [c["value"] for c in await choices_for(fake_discord, "Am")] == ["A minor", "A major"]
    assert len(await choices_for(fake_discord, "H")) == 24  # not a key: every key, so the form shows
    fake_discord.assert_no_errors()


async def test_the_asked_key_is_posted_and_variation_and_extend_keep_it(fake_discord, start_bot, media):
    engine = KeyedComposer(media)
    bot = await start_bot(pipeline=engine)
    state = await fake_discord.send_interaction(
        "lofi", {"length": "30s", "mood": "rainy", "seed": 7, "key": "eb MAJOR"}
    )
    posted = await fake_discord.wait_for(of(state, "followup"), timeout=20)
    await fake_discord.wait_for(of(state, "original_edit"), count=2)  # the ✅ Done edit: the job has finished
    assert engine.calls[0].key == "Eb major"
    assert fields_of(posted)["Key"] == "Eb major"  # rainy is a minor mood: the key's mode wins
    mp3 = next(f for f in posted.files if f.filename.endswith(".mp3"))
    assert is_mp3(mp3.data) and len(mp3.data) <= fake_discord.upload_limit
    async with bot.resources.sessionmaker() as s:
        assert (await s.execute(select(Track.key_requested))).scalars().all() == ["Eb major"]

    buttons = buttons_of(posted)
    variation = await fake_discord.send_component(
        next(b for b in buttons if "var" in b), posted.message["id"]
    )
    second = await fake_discord.wait_for(of(variation, "followup"), timeout=20)
    assert engine.calls[1].key == "Eb major" and engine.calls[1].seed != 7
    assert fields_of(second)["Key"] == "Eb major"

    click = await fake_discord.send_component(
        next(b for b in buttons if b.startswith("lofi:ext:")), posted.message["id"]
    )
    menu = await fake_discord.wait_for(of(click, "interaction_callback"))
    select_menu = menu.json["data"]["components"][0]["components"][0]
    choose = await fake_discord.send_component(
        select_menu["custom_id"], menu.message["id"], component_type=3, values=["30"]
    )
    longer = await fake_discord.wait_for(of(choose, "followup"), timeout=20)
    ((request, _, base),) = engine.extensions
    assert (request.key, base.key, request.seed, request.length_s) == ("Eb major", "Eb major", 7, 60.0)
    assert fields_of(longer)["Key"] == "Eb major"
    fake_discord.assert_no_errors()


@pytest.mark.parametrize("key", ["H minor", "Eb dorian"])
async def test_a_bad_key_gets_a_clear_ephemeral_message(fake_discord, start_bot, media, key):
    engine = KeyedComposer(media)
    await start_bot(pipeline=engine)
    state = await fake_discord.send_interaction("lofi", {"length": "30s", "mood": "rainy", "key": key})
    text = await ephemeral_reply(fake_discord, state)
    assert text.startswith(f"Bad key: {key!r} is not a key; write a note A to G") and '"Eb major"' in text
    assert engine.calls == []
    fake_discord.assert_no_errors()


@pytest.mark.parametrize("key", ["F" * 6000, 5])  # what a client other than Discord's could send
async def test_a_key_past_its_declaration_is_named_and_makes_no_track(fake_discord, start_bot, media, key):
    engine = KeyedComposer(media)
    bot = await start_bot(pipeline=engine)
    state = await fake_discord.send_interaction("lofi", {"length": "30s", "mood": "rainy", "key": key})
    text = await ephemeral_reply(fake_discord, state)
    assert "`key`" in text and len(text) < 300 and "F" * 50 not in text
    async with bot.resources.sessionmaker() as s:
        assert (await s.execute(select(Track.id))).all() == []
    assert engine.calls == []
    fake_discord.assert_no_errors()


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_the_real_pipeline_writes_the_asked_key(fake_discord, start_bot, tiny_serving, tmp_path):  # noqa: F811
    server, models = tiny_serving
    await start_bot(serving_address=server.address, models_dir=models, serving_timeout_s=30.0)
    state = await fake_discord.send_interaction("lofi", {"length": "20s", "mood": "sunny", "key": "F#m"})
    posted = await fake_discord.wait_for(of(state, "followup"), timeout=240)
    assert posted.ok, posted.response
    assert fields_of(posted)["Key"] == "F# minor" and "sunny" in text_of(posted)  # sunny is major: F#m wins
    by_ext = {f.filename.rsplit(".", 1)[-1]: f for f in posted.files}
    assert set(by_ext) == {"mp3", "mid", "png"}
    mp3 = by_ext["mp3"].data
    assert is_mp3(mp3) and ffprobe_format(mp3, tmp_path) == "mp3" and len(mp3) <= fake_discord.upload_limit
    midi = tmp_path / "posted.mid"
    midi.write_bytes(by_ext["mid"].data)
    assert [m.key for t in mido.MidiFile(midi).tracks for m in t if m.type == "key_signature"] == ["F#m"]
    fake_discord.assert_no_errors()
