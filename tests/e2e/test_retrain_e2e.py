"""/lofi-retrain end to end, slow: the real bot against the fake Discord, the real retrain runner in its own
process (tiny preset, a handful of real lead sheets), the real embedded gRPC server polling the models folder
and the real pipeline making short tracks. Only Discord is fake.

(A non-admin's /lofi-retrain being refused is covered by test_bot_e2e.test_retrain_is_for_admins_only.)
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.e2e.test_bot_e2e import of, text_of

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ADMIN_ID = 1_100_000_000_000_007_000
LISTENER_ID = 1_100_000_000_000_007_001
MEMBERS = 2  # make_tiny_models' members = the tiny preset's members
CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus" / "openewld" / "mxl"
TRACK = {"length": "8s", "mood": "rainy"}

# The real runner, killed hard (like the OOM killer would) right after the first epoch it reports.
CRASHING_RUNNER = [
    sys.executable,
    "-c",
    "import os, sys\n"
    "import training.runner as runner\n"
    "report = runner.Emitter.progress\n"
    "def progress(self, *args, **kwargs):\n"
    "    report(self, *args, **kwargs)\n"
    "    if args and isinstance(args[0], dict) and args[0].get('event') == 'epoch':\n"
    "        os._exit(3)\n"
    "runner.Emitter.progress = progress\n"
    "sys.exit(runner.main())\n",
]


def lead_sheets(dest: Path) -> Path:
    """The smallest OpenEWLD lead sheets, copied flat into ``dest``: 3 train, 1 val and 1 test piece.

    A piece's split is a hash of its name (here the file name) and the split seed, which is 0 for models
    made by ``make_tiny_models`` (their manifests record none) and the runner's default training seed.
    """
    from training.dataset import split_of

    dest.mkdir(parents=True)
    want = {"train": 3, "val": 1, "test": 1}
    for path in sorted(CORPUS.rglob("*.mxl"), key=lambda p: (p.stat().st_size, p.name)):
        split = split_of(path.name, 0)
        if want[split] > 0 and not (dest / path.name).exists():
            want[split] -= 1
            shutil.copyfile(path, dest / path.name)
        if not any(want.values()):
            return dest
    raise AssertionError(f"not enough lead sheets in {CORPUS}: still wanted {want}")


@pytest.fixture
def served(tmp_path):
    """Version 1: untrained tiny members, served by the embedded server polling the models folder."""
    from serving.server import EmbeddedServer, config_for_models_dir
    from tests.support.tiny_models import make_tiny_models

    models = tmp_path / "models"
    make_tiny_models(models, members=MEMBERS, seed=0, version=1, train_steps=0)
    with EmbeddedServer(config_for_models_dir(models), port=0, poll_s=0.5, models_dir=models) as server:
        yield server, models


async def start_real_bot(start_bot, server, models: Path, data_dir: Path, tmp_path: Path, **overrides):
    return await start_bot(  # no pipeline: the resources `lofi bot` opens
        serving_address=server.address,
        serving_timeout_s=30.0,
        models_dir=models,
        data_dir=data_dir,
        cache_dir=tmp_path / "cache",
        retrain_preset="tiny",
        admin_user_ids=[ADMIN_ID],
        min_length_s=5.0,
        **overrides,
    )


def member_versions(version: int) -> dict[str, str]:
    return {f"lofi_member_{i}": str(version) for i in range(MEMBERS)}


async def make_track(fake, bot, user):
    """Ask for a short track; returns the posted message's text and the track row."""
    from db.models import Track

    state = await fake.send_interaction("lofi", TRACK, user=user)
    followup = await fake.wait_for(of(state, "followup"), timeout=180)
    assert followup.ok, followup.response
    assert any(f.filename.endswith(".mp3") for f in followup.files)
    async with bot.sessionmaker() as s:
        track = await s.get(Track, await track_id_of(bot, followup.message["id"]))
    return text_of(followup), track


async def track_id_of(bot, message_id: str) -> int:
    from db import repository as repo

    for _ in range(100):  # the message id is stored right after the post
        async with bot.sessionmaker() as s:
            track = await repo.track_by_message(s, int(message_id))
        if track is not None:
            return track.id
        await asyncio.sleep(0.05)
    raise AssertionError(f"no track row for message {message_id}")


async def last_run(bot):
    from db import repository as repo

    async with bot.sessionmaker() as s:
        return await repo.last_retrain(s)


async def wait_available(bot, version: int, timeout: float = 60.0) -> dict:
    """Poll GetModelStatus (through the bot's own client) until every member has ``version`` AVAILABLE."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status = await bot.resources.models.model_status()
        if len(status) == MEMBERS and all(v.get(version) == "AVAILABLE" for v in status.values()):
            return status
        assert asyncio.get_running_loop().time() < deadline, f"version {version} never AVAILABLE: {status}"
        await asyncio.sleep(0.25)


async def test_retrain_runs_beside_a_track_promotes_and_the_next_track_uses_it(
    fake_discord, start_bot, served, tmp_path
):
    server, models = served
    bot = await start_real_bot(start_bot, server, models, lead_sheets(tmp_path / "corpus"), tmp_path)
    admin = fake_discord.make_user(ADMIN_ID, "admin")
    listener = fake_discord.make_user(LISTENER_ID, "listener")
    await wait_available(bot, 1)

    # 4 epochs: the tiny members learn clearly better than the untrained version 1 (NLL ~5.0 against ~6.4).
    retrain = await fake_discord.send_interaction(
        "lofi-retrain", {"epochs": 4, "include_votes": False}, user=admin
    )
    started = await fake_discord.wait_for(of(retrain, "interaction_callback"))
    assert started.ok and started.json["type"] == 4 and "Retrain #1 started" in text_of(started)

    # A track asked for while the retrain process runs is made by the served version 1.
    during_text, during = await make_track(fake_discord, bot, listener)
    assert during.versions == member_versions(1)
    assert "lofi_member_0 v1" in during_text and "lofi_member_1 v1" in during_text

    done = await fake_discord.wait_for(
        lambda r: of(retrain, "original_edit")(r) and "Retrain #1:" in text_of(r), 240
    )
    progress = [
        text_of(r) for r in fake_discord.find(of(retrain, "original_edit")) if "running:" in text_of(r)
    ]
    assert progress and all(t.startswith("🛠️ Retrain #1 running: ") for t in progress), progress

    run = await last_run(bot)
    assert run.started_at < during.started_at < run.finished_at, (
        "the track was not made while the retrain ran"
    )
    old_nll, new_nll = run.metrics["old"]["ensemble"]["nll"], run.metrics["new"]["ensemble"]["nll"]
    assert run.status == ("promoted" if new_nll <= old_nll else "kept"), (run.status, run.message)
    assert run.status == "promoted", f"a trained tiny model should beat an untrained one: {run.message}"
    assert (run.old_version, run.new_version, run.finished_at is not None) == ("1", "2", True)
    assert f"{new_nll:.4f}" in run.message and f"{old_nll:.4f}" in run.message
    assert run.params["epochs"] == 4 and run.params["include_votes"] is False
    assert text_of(done).startswith("✅ Retrain #1: new version 2 promoted.") and run.message in text_of(done)
    for i in range(MEMBERS):
        assert (models / f"lofi_member_{i}" / "2" / "saved_model.pb").is_file()

    status = await wait_available(bot, 2)
    assert all(v == {2: "AVAILABLE", 1: "AVAILABLE"} for v in status.values()), status  # latest 2 kept

    after_text, after = await make_track(fake_discord, bot, listener)
    assert after.versions == member_versions(2)
    assert "lofi_member_0 v2" in after_text and "lofi_member_1 v2" in after_text
    fake_discord.assert_no_errors()


async def test_a_retrain_that_dies_midway_leaves_the_old_version_serving(
    fake_discord, start_bot, served, tmp_path
):
    server, models = served
    bot = await start_real_bot(
        start_bot, server, models, lead_sheets(tmp_path / "corpus"), tmp_path, retrain_command=CRASHING_RUNNER
    )
    admin = fake_discord.make_user(ADMIN_ID, "admin")
    listener = fake_discord.make_user(LISTENER_ID, "listener")
    await wait_available(bot, 1)

    retrain = await fake_discord.send_interaction(
        "lofi-retrain", {"epochs": 4, "include_votes": False}, user=admin
    )
    started = await fake_discord.wait_for(of(retrain, "interaction_callback"))
    assert started.ok and "Retrain #1 started" in text_of(started)
    done = await fake_discord.wait_for(
        lambda r: (
            of(retrain, "original_edit")(r) and "Retrain #1" in text_of(r) and "running:" not in text_of(r)
        ),
        240,
    )
    assert text_of(done).startswith("❌ Retrain #1 failed; serving is unchanged.")
    assert "exited with code 3" in text_of(done)
    running = [r for r in fake_discord.find(of(retrain, "original_edit")) if "running:" in text_of(r)]
    assert running, "the runner died before reporting any progress: it did not get into the retrain"

    run = await last_run(bot)
    assert run.status == "failed" and run.finished_at is not None
    assert run.message.startswith("the training process exited with code 3"), run.message
    assert run.new_version is None and run.metrics == {}
    assert sorted(p.name for p in (models / "lofi_member_0").iterdir()) == ["1"]  # nothing half-published

    await asyncio.sleep(1.5)  # three polls of the models folder: nothing new to load
    status = await bot.resources.models.model_status()
    assert all(v == {1: "AVAILABLE"} for v in status.values()), status
    text, track = await make_track(fake_discord, bot, listener)
    assert track.versions == member_versions(1) and "lofi_member_0 v1" in text

    # /lofi-status reports the failed run.
    state = await fake_discord.send_interaction("lofi-status", {}, user=admin)
    edit = await fake_discord.wait_for(of(state, "original_edit"))
    assert "#1 failed" in text_of(edit) and "exited with code 3" in text_of(edit)
    fake_discord.assert_no_errors()
