"""The retrain process: `python -m training.runner --params-json FILE`.

Runs `training.retrain.retrain` in its own process (the bot never imports training or TensorFlow; it starts
this module by name) and speaks one JSON
object per stdout line: progress events as they come, then `{"event": "result", ...}` or
`{"event": "error", "error": ...}`. The bot reads the lines; anything else on stdout is ignored.

With `LOFI_RETRAIN_PARENT_PID` set (the bot sets it), the process dies with that parent: a bot killed with
-9 must not leave a trainer that goes on to publish a version its database calls failed.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import json
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, TextIO


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Path):
        return str(value)
    return value


def _default(value: Any) -> Any:
    plain = _plain(value)
    return str(value) if plain is value else plain


class Emitter:
    """Writes JSON lines to the real stdout (libraries' prints go to stderr instead)."""

    def __init__(self, out: TextIO):
        self.out = out

    def __call__(self, event: dict) -> None:
        self.out.write(json.dumps(event, default=_default) + "\n")
        self.out.flush()

    def progress(self, *args: Any, **kwargs: Any) -> None:
        """Whatever the trainer reports (a dict, a dataclass, or positional values) becomes one event."""
        if len(args) == 1 and not kwargs:
            payload = _plain(args[0])
            event = dict(payload) if isinstance(payload, dict) else {"message": str(payload)}
        else:
            event = {"args": [_plain(a) for a in args], **{k: _plain(v) for k, v in kwargs.items()}}
        event.setdefault("event", "progress")
        self(event)


PARENT_PID_ENV = "LOFI_RETRAIN_PARENT_PID"
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int) -> None:
    """SIGKILL this process as soon as `parent_pid` is no longer its parent (the parent died)."""
    armed = False
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        armed = libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    if os.getppid() != parent_pid:  # it died before the prctl: the kernel will not tell us any more
        os.kill(os.getpid(), signal.SIGKILL)
    if not armed:  # no prctl here: notice the re-parenting instead (within a second)

        def watch() -> None:
            while os.getppid() == parent_pid:
                time.sleep(1.0)
            os.kill(os.getpid(), signal.SIGKILL)

        threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    """Run one retrain from the parameters file; exit 0 with a result line, 1 with an error line."""
    parser = argparse.ArgumentParser(prog="python -m training.runner")
    parser.add_argument("--params-json", type=Path, required=True)
    args = parser.parse_args(argv)
    if os.environ.get(PARENT_PID_ENV, "").isdigit():
        die_with_parent(int(os.environ[PARENT_PID_ENV]))
    emit = Emitter(sys.stdout)
    sys.stdout = sys.stderr  # keep stray prints out of the protocol stream
    try:
        params = json.loads(args.params_json.read_text())
        from training.retrain import retrain

        upload = _read_upload(params, emit)
        extra = [*(params.get("extra_pieces") or []), *(upload.pieces if upload else [])]
        kwargs: dict[str, Any] = {
            "extra_pieces": extra or None,
            "exclude": params.get("exclude_names") or None,  # corpus piece names
            "preset": params.get("preset") or "quick",
            "epochs": params.get("epochs"),
            "progress": emit.progress,
        }
        if params.get("seed") is not None:
            kwargs["seed"] = params["seed"]
        if params.get("cache_dir"):
            kwargs["cache_dir"] = Path(params["cache_dir"])
        result = retrain(Path(params["models_dir"]), [Path(p) for p in params["data_paths"]], **kwargs)
        emit(
            {
                "event": "result",
                "promoted": bool(result.promoted),
                "reason": str(result.reason),
                "old_metrics": _plain(result.old_metrics),
                "new_metrics": _plain(result.new_metrics),
                "new_version": _plain(result.new_version),
                "old_version": _plain(getattr(result, "old_version", None)),
                **({"upload": upload.event()} if upload else {}),
            }
        )
        return 0
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        from training.upload import UploadRefused

        # A refused attachment's message is meant for the chat as it is; anything else names its type.
        error = str(exc) if isinstance(exc, UploadRefused) else f"{type(exc).__name__}: {exc}"
        emit({"event": "error", "error": error})
        return 1


def _read_upload(params: dict[str, Any], emit: Emitter) -> Any:
    """The attachment's UploadReport (its pieces train beside the liked tracks: training only, so the
    held-out test split that decides promotion stays the corpus's), or None without one. UploadRefused
    if it is hostile or holds nothing usable."""
    upload = params.get("upload")
    if not upload:
        return None
    from training.upload import load_upload

    emit({"event": "reading_upload", "name": upload["name"]})
    cache = Path(params["cache_dir"]) if params.get("cache_dir") else None
    report = load_upload(Path(upload["path"]), upload["name"], cache)
    emit(report.event())
    return report


if __name__ == "__main__":
    sys.exit(main())
