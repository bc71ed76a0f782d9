"""The real LofiBot against the strict fake Discord: slash commands in, validated API calls out."""

from __future__ import annotations

import asyncio
import sys

from tests.e2e.conftest import ffprobe_format, is_mp3
from tests.e2e.fake_discord import EPHEMERAL, FakeDiscord, Recorded


def of(state, kind: str):
    """A predicate: a request of ``kind`` made for interaction ``state``."""
    return lambda r: r.kind == kind and r.interaction_id == state.id


def text_of(rec: Recorded) -> str:
    """Everything the user reads in a message payload: content and embed texts."""
    body = rec.json.get("data", rec.json) if rec.kind == "interaction_callback" else rec.json
    body = body or {}
    parts = [body.get("content") or ""]
    for embed in body.get("embeds") or []:
        parts += [embed.get("title") or "", embed.get("description") or ""]
        parts += [f"{f['name']}: {f['value']}" for f in embed.get("fields") or []]
    return "\n".join(parts)


async def ephemeral_reply(fake: FakeDiscord, state, timeout: float = 10.0) -> str:
    """The text of the ephemeral message the bot answered ``state`` with (callback, edit or follow-up)."""

    def answered(r: Recorded) -> bool:
        if r.interaction_id != state.id or not r.ok:
            return False
        if r.kind == "interaction_callback":
            return r.json["type"] == 4
        if r.kind == "original_edit":
            return "❌" in text_of(r)
        return r.kind == "followup" and bool(r.message and r.message["flags"] & EPHEMERAL)

    rec = await fake.wait_for(answered, timeout)
    flags = int((rec.message or {}).get("flags") or 0)
    assert flags & EPHEMERAL, f"not ephemeral: {rec.json}"
    return text_of(rec)


async def test_lofi_posts_a_real_mp3_reacts_and_counts_votes(
    fake_discord, start_bot, fake_pipeline, tmp_path
):
    bot = await start_bot(pipeline=fake_pipeline)
    synced = await fake_discord.wait_for("guild_commands")
    names = {c["name"] for c in synced.json}
    assert {"lofi", "lofi-top", "lofi-history"} <= names
    lofi = fake_discord.find_command("lofi")
    mood = next(o for o in lofi["options"] if o["name"] == "mood")
    assert "rainy" in [c["value"] for c in mood["choices"]]

    state = await fake_discord.send_interaction("lofi", {"length": "30s", "mood": "rainy"})
    callback = await fake_discord.wait_for(of(state, "interaction_callback"))
    assert callback.ok and callback.json["type"] == 5  # deferred within Discord's 3 s

    followup = await fake_discord.wait_for(of(state, "followup"), timeout=20)
    assert followup.ok, followup.response
    assert not followup.message["flags"] & EPHEMERAL, "the track must be public (votes need reactions)"
    (request,) = fake_pipeline.calls
    assert (request.length_s, request.mood) == (30.0, "rainy")
    by_ext = {f.filename.rsplit(".", 1)[-1]: f for f in followup.files}
    assert set(by_ext) == {"mp3", "mid", "png"}
    mp3 = by_ext["mp3"].data
    assert is_mp3(mp3) and ffprobe_format(mp3, tmp_path) == "mp3"
    assert by_ext["mid"].data[:4] == b"MThd" and by_ext["png"].data[:8] == b"\x89PNG\r\n\x1a\n"
    assert "rainy" in text_of(followup)
    buttons = [c["custom_id"] for row in followup.json["components"] for c in row["components"]]
    assert any(b.startswith("lofi:midi:") for b in buttons)

    message_id = followup.message["id"]
    await fake_discord.wait_for(
        lambda r: r.kind == "reaction_add" and r.params["message_id"] == message_id, count=2
    )
    assert fake_discord.reactions_on(message_id) == {
        "👍": {fake_discord.bot_user_id},
        "👎": {fake_discord.bot_user_id},
    }

    voter = fake_discord.make_user(1_100_000_000_000_003_000, "voter")
    assert await fake_discord.add_reaction(fake_discord.channel_id, message_id, voter["id"], "👍")
    for _ in range(100):  # the vote is stored by the bot's raw reaction listener
        top = await bot.browse.top("week", int(fake_discord.guild_id), int(voter["id"]))
        if top and top[0].score == 1:
            break
        await asyncio.sleep(0.05)
    assert top and (top[0].score, top[0].up, top[0].down) == (1, 1, 0), top

    top_state = await fake_discord.send_interaction("lofi-top", {})
    reply = await fake_discord.wait_for(of(top_state, "interaction_callback"))
    assert reply.ok and reply.json["type"] == 4
    assert "+1" in text_of(reply) and "👍1" in text_of(reply) and message_id in text_of(reply)

    midi_state = await fake_discord.send_component(next(b for b in buttons if "midi" in b), message_id)
    midi = await fake_discord.wait_for(of(midi_state, "interaction_callback"))
    assert midi.ok and midi.json["type"] == 4 and midi.json["data"]["flags"] & EPHEMERAL
    assert midi.files[0].filename.endswith(".mid") and midi.files[0].data[:4] == b"MThd"

    fake_discord.assert_no_errors()


async def test_bad_length_gets_a_clear_ephemeral_message(fake_discord, start_bot, fake_pipeline):
    await start_bot(pipeline=fake_pipeline)
    short = await fake_discord.send_interaction("lofi", {"length": "5s", "mood": "rainy"})
    assert "between" in await ephemeral_reply(fake_discord, short)
    garbage = await fake_discord.send_interaction("lofi", {"length": "banana", "mood": "rainy"})
    assert "length" in (await ephemeral_reply(fake_discord, garbage)).lower()
    assert fake_pipeline.calls == []
    fake_discord.assert_no_errors()


async def test_serving_down_gets_a_clear_message(fake_discord, start_bot, fake_pipeline):
    async def serving_down(settings):
        raise ConnectionRefusedError("no serving")

    await start_bot(pipeline=fake_pipeline, client_factory=serving_down)
    state = await fake_discord.send_interaction("lofi", {"length": "30s", "mood": "rainy"})
    text = await ephemeral_reply(fake_discord, state)
    assert "not reachable" in text
    assert fake_pipeline.calls == [] and not fake_discord.find(of(state, "reaction_add"))
    fake_discord.assert_no_errors()


async def test_queue_full_is_refused_clearly_and_queued_jobs_finish(fake_discord, start_bot, fake_pipeline):
    fake_pipeline.gate = asyncio.Event()
    await start_bot(pipeline=fake_pipeline, queue_size=1, workers=1)
    users = [fake_discord.make_user(1_100_000_000_000_004_000 + i, f"u{i}") for i in range(3)]

    running = await fake_discord.send_interaction("lofi", {"length": "30s", "mood": "rainy"}, user=users[0])
    await asyncio.wait_for(fake_pipeline.started.wait(), 10)
    waiting = await fake_discord.send_interaction("lofi", {"length": "30s", "mood": "rainy"}, user=users[1])
    # queued once it shows its place: the defer comes before the job is recorded and submitted, and a third
    # request checked in between would pass the check and be refused only at submit
    await fake_discord.wait_for(of(waiting, "original_edit"))
    refused = await fake_discord.send_interaction("lofi", {"length": "30s", "mood": "rainy"}, user=users[2])
    assert "busy" in (await ephemeral_reply(fake_discord, refused)).lower()

    fake_pipeline.gate.set()
    for state in (running, waiting):
        rec = await fake_discord.wait_for(of(state, "followup"), timeout=20)
        assert rec.ok and any(f.filename.endswith(".mp3") for f in rec.files)
    assert len(fake_pipeline.calls) == 2
    fake_discord.assert_no_errors()


async def test_track_over_the_upload_limit_is_refused_clearly(fake_discord, start_bot, fake_pipeline):
    await start_bot(pipeline=fake_pipeline)
    fake_discord.upload_limit = 2048  # this guild's limit, sent in the interaction's attachment_size_limit
    state = await fake_discord.send_interaction("lofi", {"length": "30s", "mood": "rainy"})
    text = await ephemeral_reply(fake_discord, state, timeout=20)
    assert "upload limit" in text
    assert not any(r.files for r in fake_discord.find(of(state, "followup")))
    fake_discord.assert_no_errors()


async def test_track_stays_public_when_a_progress_edit_fails(fake_discord, start_bot, fake_pipeline):
    await start_bot(pipeline=fake_pipeline)
    fake_discord.fail_next("original_edit", status=500)
    state = await fake_discord.send_interaction("lofi", {"length": "30s", "mood": "rainy"})
    followup = await fake_discord.wait_for(of(state, "followup"), timeout=20)
    assert followup.ok and not followup.message["flags"] & EPHEMERAL, "the track was posted ephemeral"
    message_id = followup.message["id"]
    await fake_discord.wait_for(
        lambda r: r.kind == "reaction_add" and r.params["message_id"] == message_id, count=2
    )
    assert all(r.ok for r in fake_discord.find("reaction_add"))


FAKE_RETRAIN = [
    sys.executable,
    "-c",
    'import json; print(json.dumps({"event": "epoch", "epoch": 1, "loss": 1.0})); '
    'print(json.dumps({"event": "result", "promoted": False, "reason": "not better"}))',
]


async def test_retrain_is_for_admins_only(fake_discord, start_bot, fake_pipeline):
    await start_bot(pipeline=fake_pipeline, retrain_command=FAKE_RETRAIN)
    member = fake_discord.make_user(1_100_000_000_000_006_000, "member")
    refused = await fake_discord.send_interaction("lofi-retrain", {"epochs": 1}, user=member)
    assert "Only server managers" in await ephemeral_reply(fake_discord, refused)

    manager = fake_discord.make_user(1_100_000_000_000_006_001, "manager")
    manage_guild = 1 << 5
    state = await fake_discord.send_interaction(
        "lofi-retrain", {"epochs": 1, "include_votes": False}, user=manager, member_permissions=manage_guild
    )
    started = await fake_discord.wait_for(of(state, "interaction_callback"))
    assert started.ok and started.json["type"] == 4 and "Retrain #1 started" in text_of(started)
    done = await fake_discord.wait_for(
        lambda r: of(state, "original_edit")(r) and "Retrain #1:" in text_of(r), 30
    )
    assert "current models stay" in text_of(done)
    fake_discord.assert_no_errors()


async def test_status_reports_serving_down(fake_discord, start_bot, fake_pipeline):
    await start_bot(pipeline=fake_pipeline)  # the stub serving client has no model-status call
    state = await fake_discord.send_interaction("lofi-status", {})
    callback = await fake_discord.wait_for(of(state, "interaction_callback"))
    assert callback.json == {"type": 5, "data": {"flags": EPHEMERAL}}
    edit = await fake_discord.wait_for(of(state, "original_edit"))
    assert "LoFi bot status" in text_of(edit) and "🔴" in text_of(edit)
    assert edit.message["flags"] & EPHEMERAL
    fake_discord.assert_no_errors()


async def test_expired_token_falls_back_to_a_channel_post(fake_discord, start_bot, fake_pipeline):
    await start_bot(pipeline=fake_pipeline)
    fake_discord.fail_next("followup", status=401, code=50027, message="Invalid Webhook Token")
    state = await fake_discord.send_interaction("lofi", {"length": "30s", "mood": "rainy"})
    posted = await fake_discord.wait_for("channel_message", timeout=8)
    assert posted.ok and any(f.filename.endswith(".mp3") and is_mp3(f.data) for f in posted.files)
    message_id = posted.message["id"]
    await fake_discord.wait_for(
        lambda r: r.kind == "reaction_add" and r.params["message_id"] == message_id, count=2
    )
    assert [r.status for r in fake_discord.errors] == [401]  # only the injected fault
    assert fake_discord.find(of(state, "interaction_callback"))


async def test_variation_button_makes_another_track(fake_discord, start_bot, fake_pipeline):
    await start_bot(pipeline=fake_pipeline)
    first = await fake_discord.send_interaction("lofi", {"length": "30s", "mood": "rainy", "seed": 7})
    track = await fake_discord.wait_for(of(first, "followup"), timeout=20)
    await fake_discord.wait_for(of(first, "original_edit"), count=2)  # the ✅ Done edit: the job has finished
    buttons = [c["custom_id"] for row in track.json["components"] for c in row["components"]]
    variation = await fake_discord.send_component(next(b for b in buttons if "var" in b), track.message["id"])
    callback = await fake_discord.wait_for(of(variation, "interaction_callback"))
    assert callback.ok and callback.json["type"] == 5
    second = await fake_discord.wait_for(of(variation, "followup"), timeout=20)
    assert second.ok and any(f.filename.endswith(".mp3") for f in second.files)
    assert [(r.length_s, r.mood) for r in fake_pipeline.calls] == [(30.0, "rainy")] * 2
    assert fake_pipeline.calls[0].seed == 7
    fake_discord.assert_no_errors()
