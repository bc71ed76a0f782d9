"""`lofi worker` processes for the tests: real processes on a real broker, each with the given models loaded
in-process (no model server), started and waited for until Celery says it is ready."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

LOFI = str(Path(sys.executable).parent / "lofi")
SECRET_VARS = ("DISCORD_TOKEN", "DATABASE_URL")  # a worker needs neither: it must work without them


class Worker:
    def __init__(self, process: subprocess.Popen[bytes], log: Path):
        self.process, self.log = process, log

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def sigkill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.sigkill()


def start_worker(
    broker_url: str,
    models_dir: Path,
    log: Path,
    *,
    redeliver_s: float = 60.0,
    concurrency: int = 2,
    **env: str,
) -> Worker:
    """A `lofi worker` on `broker_url` serving the members under `models_dir`, ready to take jobs."""
    environ = {k: v for k, v in os.environ.items() if k not in SECRET_VARS and k != "SERVING_ADDRESS"}
    environ.update(
        BROKER_URL=broker_url,
        MODELS_DIR=str(models_dir),
        JOB_REDELIVER_S=str(redeliver_s),
        WORKER_CONCURRENCY=str(concurrency),
        RENDER_WORKERS="1",
        **env,
    )
    with open(log, "wb") as out:
        process = subprocess.Popen([LOFI, "worker"], stdout=out, stderr=subprocess.STDOUT, env=environ)
    worker = Worker(process, log)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"lofi worker exited with {process.returncode}:\n{worker.output()[-3000:]}")
        if " ready." in worker.output():
            return worker
        time.sleep(0.2)
    worker.stop()
    raise RuntimeError(f"lofi worker was not ready in time:\n{worker.output()[-3000:]}")
