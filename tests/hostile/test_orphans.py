"""Issue 24 #2: a retrain process never outlives the bot that started it, and one killed mid-export says
so and leaves no staging folder behind."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from bot.services import RetrainService
from db.models import RetrainStatus
from tests.bot.conftest import sessionmaker, settings  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for init to reap it has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _wait_for_reader(fifo: Path, deadline_s: float) -> int:
    """A write end of `fifo`, once a reader has it open (the trainer got that far); -1 if none came."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
            time.sleep(0.05)
    return -1


def test_a_bot_killed_with_9_takes_its_retrain_process_with_it(tmp_path):
    fifo, pid_file = tmp_path / "training-blocks-here", tmp_path / "trainer.pid"
    os.mkfifo(fifo)
    # The real runner, with a `training.retrain` that blocks (a long training) until the test lets it go.
    trainer = tmp_path / "trainer.py"
    trainer.write_text(
        textwrap.dedent(f"""
        import os, sys, types
        open({str(pid_file)!r}, "w").write(str(os.getpid()))
        fake = types.ModuleType("training.retrain")
        def retrain(*args, **kwargs):
            open({str(fifo)!r}).read()
            raise SystemExit("the parent was gone and this trainer would have gone on to publish")
        fake.retrain = retrain
        sys.modules["training.retrain"] = fake
        from training import runner
        sys.exit(runner.main())
        """)
    )
    # The bot's side: the real RetrainService starting it (its database is never reached before the kill).
    bot = tmp_path / "the_bot.py"
    bot.write_text(
        textwrap.dedent(f"""
        import asyncio, sys
        from bot.services import RetrainService
        from lofi.settings import Settings
        settings = Settings(_env_file=None, models_dir={str(tmp_path / "models")!r}, discord_token=None)
        service = RetrainService(None, settings, [sys.executable, {str(trainer)!r}])
        asyncio.run(service.run(1, {{}}))
        """)
    )
    parent = subprocess.Popen([sys.executable, str(bot)], cwd=ROOT)
    writer, child = -1, None
    try:
        writer = _wait_for_reader(fifo, 60.0)
        assert writer >= 0, "the retrain process never started training"
        child = int(pid_file.read_text())
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        end = time.monotonic() + 10
        while _alive(child) and time.monotonic() < end:
            time.sleep(0.05)
        assert not _alive(child), "the retrain process outlived the bot that started it"
    finally:
        if parent.poll() is None:
            parent.kill()
        if child is not None and _alive(child):
            os.kill(child, signal.SIGKILL)
        if writer >= 0:
            os.close(writer)


async def test_a_retrain_killed_mid_export_says_so_and_leaves_no_staging(
    sessionmaker,  # noqa: F811
    settings,  # noqa: F811
    tmp_path,
):
    member = Path(settings.models_dir) / "lofi_member_0"
    (member / "1").mkdir(parents=True)
    stranger = member / ".tmp-1-another-export"  # another process's export: not ours to remove
    stranger.mkdir()
    script = tmp_path / "killed_runner.py"
    script.write_text(
        textwrap.dedent(f"""
        import os, signal
        staging = os.path.join({str(member)!r}, f".tmp-{{os.getpid()}}-x7", "m", "variables")
        os.makedirs(staging)
        open(os.path.join(staging, "variables.data-00000-of-00001"), "wb").write(b"half a member")
        print("WARNING:tensorflow:5 out of the last 5 calls to <function serve> triggered tf.function "
              "retracing.", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """)
    )
    service = RetrainService(sessionmaker, settings, [sys.executable, str(script)])
    run_id, params = await service.start(_who(), epochs=1, include_votes=False)
    outcome = await service.run(run_id, params)
    assert outcome.status is RetrainStatus.failed
    assert outcome.message == "the training process was killed (signal 9)"
    assert sorted(p.name for p in member.iterdir()) == sorted(["1", stranger.name])


def _who():
    from bot.services import Requester

    return Requester(user_id=1, user_name="admin", guild_id=None, channel_id=None)
