"""Services on a real SQLite file, with a fake pipeline and a fake retrain process."""

from __future__ import annotations

import dataclasses
import json
import sys
import textwrap

import pytest
from pydantic import SecretStr

from bot.errors import RetrainBusy, TrackGone, UploadTooLarge
from bot.services import (
    BrowseService,
    Requester,
    RetrainService,
    StatusService,
    TrackService,
    Viewer,
    VoteService,
)
from bot.services.exports import ExportService
from db import repository as repo
from db.models import RetrainStatus, TrackStatus
from music.errors import RenderError
from music.request import TrackRequest, mood_names, plan_track
from tests.bot.conftest import FakeComposer

WHO = Requester(user_id=11, user_name="alice", guild_id=1, channel_id=2)


def _request(seed=1):
    return TrackRequest(length_s=60, mood=mood_names()[0], seed=seed)


async def _track_state(sessionmaker, track_id):
    async with sessionmaker() as s:
        return await repo.get_track(s, track_id)


async def test_track_job_records_result(sessionmaker, settings, fake_pipeline):
    svc = TrackService(sessionmaker, fake_pipeline, settings.out_dir)
    stages = []
    track_id = await svc.create(_request(), WHO)
    info = await svc.run(track_id, _request(), size_limit=10_000, progress=stages.append)
    assert stages == ["composing", "rendering", "mastering"]
    assert info.mp3.is_file() and info.title == "Rain on glass" and info.versions == {"lofi_member_0": "3"}
    track = await _track_state(sessionmaker, track_id)
    assert track.status is TrackStatus.done and track.tokens == [5, 6, 7] and track.mp3_path == str(info.mp3)


async def test_track_job_failure_marks_failed(sessionmaker, settings):
    svc = TrackService(sessionmaker, FakeComposer(error=RenderError("no soundfont")), settings.out_dir)
    track_id = await svc.create(_request(), WHO)
    with pytest.raises(RenderError):
        await svc.run(track_id, _request(), size_limit=10_000)
    track = await _track_state(sessionmaker, track_id)
    assert track.status is TrackStatus.failed and "no soundfont" in track.error


async def test_track_too_large_for_upload(sessionmaker, settings):
    svc = TrackService(sessionmaker, FakeComposer(mp3_bytes=5000), settings.out_dir)
    track_id = await svc.create(_request(), WHO)
    with pytest.raises(UploadTooLarge):
        await svc.run(track_id, _request(), size_limit=1000)
    assert (await _track_state(sessionmaker, track_id)).status is TrackStatus.failed


async def test_variation_request_and_midi(sessionmaker, settings, fake_pipeline):
    svc = TrackService(sessionmaker, fake_pipeline, settings.out_dir)
    track_id = await svc.create(_request(seed=1), WHO)
    await svc.run(track_id, _request(seed=1), size_limit=10_000)
    here = Viewer(user_id=12, guild_id=WHO.guild_id)
    again = await svc.request_of(track_id, seed=99, viewer=here)
    assert (again.mood, again.length_s, again.seed) == (_request().mood, 60, 99)
    assert (await svc.midi_of(track_id, here)).suffix == ".mid"
    with pytest.raises(TrackGone):
        await svc.midi_of(track_id + 100, here)


async def test_a_radio_piece_is_replayed_as_one_for_its_stems_loop_and_extension(
    sessionmaker, settings, fake_pipeline
):
    """A posted radio piece has no intro or ending: its stems, loop and Extend must plan it that way too, or
    they would be another arrangement of its notes."""
    svc = TrackService(sessionmaker, fake_pipeline, settings.out_dir)
    exports = ExportService(sessionmaker, fake_pipeline, settings.out_dir)
    here = Viewer(user_id=12, guild_id=WHO.guild_id)
    ids = {}
    for radio in (True, False):
        request = dataclasses.replace(_request(seed=5), radio=radio)
        ids[radio] = await svc.create(request, WHO)
        await svc.run(ids[radio], request, size_limit=10_000)
    for radio, track_id in ids.items():
        facts = (await exports.source(track_id, here)).facts
        assert facts.radio is radio
        longer, extension = await svc.extension_of(track_id, 30, 600, here)
        assert longer.radio is radio and extension.base.radio is radio
        # a Variation is a new track, with the intro and ending of one
        assert (await svc.request_of(track_id, 6, here)).radio is False
    # and the flag decides the form, so replaying without it would not be the piece that was heard
    assert (
        plan_track(_request(seed=5)).form
        != plan_track(dataclasses.replace(_request(seed=5), radio=True)).form
    )


async def test_votes_only_on_track_messages(sessionmaker, settings, fake_pipeline):
    tracks = TrackService(sessionmaker, fake_pipeline, settings.out_dir)
    votes = VoteService(sessionmaker)
    track_id = await tracks.create(_request(), WHO)
    await tracks.run(track_id, _request(), size_limit=10_000)
    await tracks.set_message(track_id, message_id=555, channel_id=2, guild_id=1)
    assert await votes.react(123, 7, 1, added=True) is False
    assert await votes.react(555, 7, 1, added=True) is True
    assert await votes.react(555, 8, -1, added=True) is True
    assert await votes.react(555, 8, -1, added=False) is True
    top = await BrowseService(sessionmaker).top("all", guild_id=1, user_id=11)
    assert [(t.track_id, t.score) for t in top] == [(track_id, 1)]
    assert top[0].jump_url == "https://discord.com/channels/1/2/555"
    hist = await BrowseService(sessionmaker).history(11, guild_id=1, caller_id=11)
    assert hist[0].track_id == track_id


async def test_status_report_with_serving_down(sessionmaker):
    class Down:
        async def model_status(self):
            raise ConnectionError("refused")

    report = await StatusService(sessionmaker, Down(), timeout_s=1).report(None)
    assert not report.serving_ok and "refused" in report.serving_detail


async def test_status_report_with_serving_up(sessionmaker):
    class Up:
        async def model_status(self):
            return {"lofi_member_0": {"version": 3, "state": "AVAILABLE"}}

    report = await StatusService(sessionmaker, Up(), timeout_s=1).report(None)
    assert report.serving_ok and report.members == {"lofi_member_0": "version=3, state=AVAILABLE"}


async def test_status_report_names_the_workers_or_says_none_answered(sessionmaker):
    from bot.cogs.admin import status_embed

    class Up:
        async def model_status(self):
            return {}

    class Workers:
        def __init__(self, answer):
            self.answer = answer

        async def worker_status(self):
            if isinstance(self.answer, Exception):
                raise self.answer
            return self.answer

    def workers_field(report, admin):
        return next(f.value for f in status_embed(report, admin=admin).fields if f.name == "Workers")

    two = await StatusService(sessionmaker, Up(), 1, workers=Workers({"lofi@a-1": 2, "lofi@b-7": 1})).report(
        None
    )
    assert workers_field(two, False) == "🟢 2 online, 3 tracks in progress"
    assert "`lofi@a-1`: 2" in workers_field(two, True)
    none = await StatusService(sessionmaker, Up(), 1, workers=Workers({})).report(None)
    assert workers_field(none, False).startswith("🔴 no worker answered: tracks wait")
    down = await StatusService(sessionmaker, Up(), 1, workers=Workers(ConnectionError("refused"))).report(
        None
    )
    assert "refused" in workers_field(down, True) and "refused" not in workers_field(down, False)
    # without a broker the bot makes the tracks itself: no Workers field at all
    alone = await StatusService(sessionmaker, Up(), 1).report(None)
    assert all(f.name != "Workers" for f in status_embed(alone, admin=True).fields)


def _fake_runner(tmp_path, body: str) -> list[str]:
    script = tmp_path / "fake_runner.py"
    script.write_text(textwrap.dedent(body))
    return [sys.executable, str(script)]


async def test_retrain_promoted_with_progress_and_votes(sessionmaker, settings, tmp_path, fake_pipeline):
    # a liked track's tokens must reach the trainer as extra pieces
    tracks = TrackService(sessionmaker, fake_pipeline, settings.out_dir)
    track_id = await tracks.create(_request(), WHO)
    await tracks.run(track_id, _request(), size_limit=10_000)
    async with sessionmaker.begin() as s:
        await repo.apply_reaction(s, track_id, 7, 1, added=True)
    command = _fake_runner(
        tmp_path,
        """
        import json, sys
        params = json.load(open(sys.argv[sys.argv.index("--params-json") + 1]))
        print("some TF noise")
        print(json.dumps({"event": "progress", "epoch": 1, "loss": 2.5}), flush=True)
        print(json.dumps({"event": "result", "promoted": True, "reason": "val loss 2.1 < 2.3",
                          "old_metrics": {"val_loss": 2.3}, "new_metrics": {"val_loss": 2.1},
                          "new_version": 4, "extra": params["extra_pieces"]}))
        assert params["extra_pieces"] == [[5, 6, 7]], params
    """,
    )
    svc = RetrainService(sessionmaker, settings, command)
    run_id, params = await svc.start(WHO, epochs=1, include_votes=True)
    with pytest.raises(RetrainBusy):
        await svc.start(WHO, epochs=1, include_votes=True)
    events = []

    async def on_progress(event):
        events.append(event)

    outcome = await svc.run(run_id, params, on_progress)
    assert outcome.status is RetrainStatus.promoted and outcome.new_version == "4"
    assert events == [{"event": "progress", "epoch": 1, "loss": 2.5}]
    async with sessionmaker() as s:
        last = await repo.last_retrain(s)
    assert last.status is RetrainStatus.promoted and last.metrics["new"] == {"val_loss": 2.1}
    assert last.params["liked_tracks"] == 1


async def test_retrain_child_gets_no_secrets_whatever_their_case(
    sessionmaker, settings, tmp_path, monkeypatch
):
    # issue 15: the retrain child is really spawned; it reports the environment it was given
    token = settings.discord_token.get_secret_value() if settings.discord_token else "a-bot-token-value-1234"
    secrets = {
        "DISCORD_TOKEN": token,
        "discord_token": token,
        "LOFI_API_KEY": "k-123",
        "SOME_SECRET": "s-123",
        "DB_PASSWORD": "p-123",
        "DATABASE_URL": "postgresql://lofi:hunter2@db/lofi",
        "RENAMED": token,
    }
    for k, v in secrets.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("LOFI_HARMLESS", "kept")
    settings = settings.model_copy(update={"discord_token": SecretStr(token)})
    dump = tmp_path / "child-env.json"
    command = _fake_runner(
        tmp_path,
        f"""
        import json, os
        open({str(dump)!r}, "w").write(json.dumps(dict(os.environ)))
        print(json.dumps({{"event": "result", "promoted": False, "reason": "env dumped"}}))
    """,
    )
    svc = RetrainService(sessionmaker, settings, command)
    run_id, params = await svc.start(WHO, epochs=1, include_votes=False)
    outcome = await svc.run(run_id, params)
    assert outcome.status is RetrainStatus.kept, outcome
    env = json.loads(dump.read_text())
    assert not set(secrets) & set(env), sorted(set(secrets) & set(env))
    assert not any(token in v or "hunter2" in v for v in env.values())
    assert env["LOFI_HARMLESS"] == "kept" and env["PYTHONUNBUFFERED"] == "1"


async def test_retrain_crash_is_recorded_as_failed(sessionmaker, settings, tmp_path):
    command = _fake_runner(
        tmp_path,
        """
        import sys
        print("Traceback: out of memory")
        sys.exit(3)
    """,
    )
    svc = RetrainService(sessionmaker, settings, command)
    run_id, params = await svc.start(WHO, epochs=None, include_votes=False)
    outcome = await svc.run(run_id, params)
    assert outcome.status is RetrainStatus.failed
    assert "code 3" in outcome.message and "out of memory" in outcome.message
    async with sessionmaker() as s:
        assert await repo.running_retrain(s) is None
