"""Issue 24, defect 8: a track a restart interrupted (kill -9 while it rendered) leaves its user reading
"Rendering…" forever and its partial files on disk. The bot keeps the interaction with the track while it is
made; after a restart it edits that reply to say the track was lost, and removes the files."""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy import select, update

from bot.posting import INTERRUPTED_TEXT
from db import repository as repo
from db.models import Track, TrackStatus
from tests.e2e.test_bot_e2e import of, text_of


async def test_a_restart_tells_the_user_whose_track_it_interrupted(
    fake_discord, start_bot, fake_pipeline, tmp_path
):
    fake_pipeline.gate = asyncio.Event()  # the track never finishes in the first bot
    first = await start_bot(pipeline=fake_pipeline)
    state = await fake_discord.send_interaction("lofi", {"length": "30s", "mood": "rainy"})
    await asyncio.wait_for(fake_pipeline.started.wait(), 10)
    await fake_discord.wait_for(of(state, "original_edit"))
    async with first.sessionmaker() as s:
        track = (await s.scalars(select(Track))).one()
    # while the track is made its row knows where to tell the user
    assert (track.reply_application_id, track.reply_token) == (int(fake_discord.application_id), state.token)

    # What kill -9 leaves behind: the row still generating with its reply, and partial files. (Stopping the
    # bot politely would mark it failed itself, so the row is put back as a killed process leaves it.)
    await first.close()
    async with first.sessionmaker.begin() as s:
        await s.execute(
            update(Track)
            .where(Track.id == track.id)
            .values(status=TrackStatus.generating, reply_application_id=track.reply_application_id,
                    reply_token=track.reply_token)
        )  # fmt: skip
    partial = tmp_path / "out" / f"track-{track.id:06d}"
    partial.mkdir(parents=True, exist_ok=True)
    (partial / "half-written.mp3").write_bytes(b"\xff\xfb" + b"\0" * 1000)

    second = await start_bot(pipeline=fake_pipeline)
    edit = await fake_discord.wait_for(
        lambda r: of(state, "original_edit")(r) and INTERRUPTED_TEXT in text_of(r), timeout=15
    )
    assert edit.ok
    assert not partial.exists()
    async with second.sessionmaker() as s:
        row = await s.get(Track, track.id)
    assert (row.status, row.error, row.reply_token) == (TrackStatus.failed, repo.INTERRUPTED, None)
    fake_discord.assert_no_errors()


async def test_a_finished_track_keeps_no_interaction_token(fake_discord, start_bot, fake_pipeline):
    bot = await start_bot(pipeline=fake_pipeline)
    state = await fake_discord.send_interaction("lofi", {"length": "30s", "mood": "rainy"})
    await fake_discord.wait_for(of(state, "followup"), timeout=20)
    async with bot.sessionmaker() as s:
        track = (await s.scalars(select(Track))).one()
    assert (
        track.status is TrackStatus.done and track.reply_token is None and track.reply_application_id is None
    )


async def test_a_radio_outage_leaves_one_failed_piece_not_one_per_retry(
    fake_discord, start_bot, fake_pipeline
):
    # issue 24: every retry of the radio's composing during an outage left a failed track row (5-6 each time)
    from bot.services import Requester
    from music.request import TrackRequest
    from serving.errors import ServingUnavailable

    class Down:
        up = False

        async def make_track(self, request, out_dir, **kwargs):
            if not self.up:
                raise ServingUnavailable("the model server is down")
            return await fake_pipeline.make_track(request, out_dir, **kwargs)

    engine = Down()
    bot = await start_bot(pipeline=engine)
    who = Requester(1, "lofi radio (rainy)")
    for seed in range(4):
        with contextlib.suppress(ServingUnavailable):
            await bot.radio.compose(TrackRequest(length_s=30.0, mood="rainy", seed=seed), who)
    engine.up = True
    await bot.radio.compose(TrackRequest(length_s=30.0, mood="rainy", seed=9), who)
    async with bot.sessionmaker() as s:
        rows = (await s.scalars(select(Track).order_by(Track.id))).all()
    assert [r.status for r in rows] == [TrackStatus.failed, TrackStatus.done]
    assert "down" in rows[0].error
