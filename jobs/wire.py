"""What crosses the broker, as JSON (never pickle: whoever can write to the broker must not run code on a
worker): a track job, its result with the files inside, and a failure by name.

A result carries its MP3, MIDI and cover as base64, so a worker on another host needs no shared file system;
the bot writes them into its own output folder and posts them as it posts a local track.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compose.continuation import extended_plan
from compose.errors import GenerationError
from compose.pipeline import Composer, TrackResult
from jobs.errors import JobFailed
from music.errors import DecodeError, MoodError, RenderError
from music.progress import Progress
from music.request import TrackRequest, plan_track
from music.track import TrackFiles
from serving.errors import (
    BadRequest,
    ContractError,
    ModelNotFound,
    ServingError,
    ServingTimeout,
    ServingUnavailable,
    VocabularyMismatch,
)

Wire = dict[str, Any]

# The errors a worker reports by name and the bot raises again as themselves (its messages know them all);
# anything else arrives as JobFailed with the worker's type name and message.
KNOWN_ERRORS: dict[str, type[Exception]] = {
    cls.__name__: cls
    for cls in (
        ServingError,
        ServingUnavailable,
        ServingTimeout,
        ModelNotFound,
        BadRequest,
        VocabularyMismatch,
        ContractError,
        GenerationError,
        RenderError,
        DecodeError,
        MoodError,
    )
}


def request_to_wire(request: TrackRequest) -> Wire:
    return {
        "length_s": request.length_s,
        "mood": request.mood,
        "seed": request.seed,
        "bpm": request.bpm,
        "key": request.key,
        "radio": request.radio,
    }


def request_from_wire(data: Mapping[str, Any]) -> TrackRequest:
    """The request again, validated as any request is (a bad one raises ValueError / MoodError)."""
    bpm, key = data.get("bpm"), data.get("key")  # .get: a job queued by a bot older than the field
    return TrackRequest(
        length_s=float(data["length_s"]),
        mood=str(data["mood"]),
        seed=int(data["seed"]),
        bpm=None if bpm is None else float(bpm),
        key=None if key is None else str(key),
        radio=bool(data.get("radio", False)),  # .get: queued by a bot before radio pieces
    )


@dataclass(frozen=True)
class TrackJob:
    """One call of the composing engine: a new track for `request`, or (with `prefix` and `base`) the longer
    version of the track `base` asked for and `prefix` holds."""

    request: TrackRequest
    size_limit: int | None = None
    prefix: tuple[int, ...] | None = None
    base: TrackRequest | None = None

    async def run(self, maker: Composer, out_dir: Path, progress: Progress | None = None) -> TrackResult:
        """The job on `maker`, its files in `out_dir` (what a worker does; the local transport calls the
        same two methods directly)."""
        if self.prefix is None or self.base is None:
            return await maker.make_track(
                self.request, out_dir, progress=progress, size_limit=self.size_limit
            )
        return await maker.extend_track(
            self.request,
            out_dir,
            prefix=self.prefix,
            base=self.base,
            progress=progress,
            size_limit=self.size_limit,
        )

    def to_wire(self) -> Wire:
        return {
            "kind": "track",  # the other kinds: jobs.exports
            "request": request_to_wire(self.request),
            "size_limit": self.size_limit,
            "prefix": None if self.prefix is None else list(self.prefix),
            "base": None if self.base is None else request_to_wire(self.base),
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> TrackJob:
        prefix, base, limit = data.get("prefix"), data.get("base"), data.get("size_limit")
        return cls(
            request=request_from_wire(data["request"]),
            size_limit=None if limit is None else int(limit),
            prefix=None if prefix is None else tuple(int(t) for t in prefix),
            base=None if base is None else request_from_wire(base),
        )


def file_to_wire(path: Path) -> Wire:
    """A file by its name and bytes."""
    return {"name": path.name, "data": base64.b64encode(path.read_bytes()).decode("ascii")}


def file_from_wire(data: Mapping[str, Any], out_dir: Path) -> Path:
    """A file of `file_to_wire` written into `out_dir`."""
    name = Path(str(data["name"])).name  # a name only: a result never writes outside `out_dir`
    if name in ("", ".", ".."):
        raise JobFailed(f"a worker returned a file without a usable name: {data['name']!r}")
    path = out_dir / name
    path.write_bytes(base64.b64decode(data["data"], validate=True))
    return path


def result_to_wire(result: TrackResult) -> Wire:
    """A made track with its files' bytes."""
    f = result.files
    return {
        "files": {
            "mp3": file_to_wire(Path(f.mp3)),
            "midi": file_to_wire(Path(f.midi)),
            "cover": file_to_wire(Path(f.cover)),
        },
        "facts": {
            "duration_s": f.duration_s,
            "bpm": f.bpm,
            "key": f.key,
            "mood": f.mood,
            "seed": f.seed,
            "title": f.title,
            "loudness_lufs": f.loudness_lufs,
            "true_peak_dbtp": f.true_peak_dbtp,
            "timings": dict(f.timings),
        },
        "tokens": [int(t) for t in result.tokens],
        "versions": {str(k): int(v) for k, v in result.versions.items()},
        "timings": dict(result.timings),
    }


def result_from_wire(data: Mapping[str, Any], job: TrackJob, out_dir: Path) -> TrackResult:
    """The track a worker made for `job`, its files written into `out_dir`; its plan is the one the worker
    followed (plans are a pure function of the job)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files, facts = data["files"], data["facts"]
    track_files = TrackFiles(
        mp3=file_from_wire(files["mp3"], out_dir),
        midi=file_from_wire(files["midi"], out_dir),
        cover=file_from_wire(files["cover"], out_dir),
        duration_s=float(facts["duration_s"]),
        bpm=float(facts["bpm"]),
        key=str(facts["key"]),
        mood=str(facts["mood"]),
        seed=int(facts["seed"]),
        title=str(facts["title"]),
        loudness_lufs=float(facts["loudness_lufs"]),
        true_peak_dbtp=float(facts["true_peak_dbtp"]),
        timings={str(k): float(v) for k, v in facts["timings"].items()},
    )
    plan = (
        plan_track(job.request)
        if job.prefix is None or job.base is None
        else extended_plan(job.base, job.request.length_s)
    )
    return TrackResult(
        files=track_files,
        tokens=[int(t) for t in data["tokens"]],
        versions={str(k): int(v) for k, v in data["versions"].items()},
        plan=plan,
        timings={str(k): float(v) for k, v in data["timings"].items()},
    )


def error_to_wire(error: BaseException) -> Wire:
    return {"error": {"type": type(error).__name__, "message": str(error)}}


def error_from_wire(data: Mapping[str, Any]) -> Exception:
    """The worker's error as the exception this side raises."""
    name, message = str(data.get("type", "")), str(data.get("message", ""))
    cls = KNOWN_ERRORS.get(name)
    return cls(message) if cls is not None else JobFailed(f"{name}: {message}" if name else message)


def failure_of(data: Mapping[str, Any]) -> Exception | None:
    """The error a result reports, or None for a made track."""
    error = data.get("error")
    return error_from_wire(error) if isinstance(error, Mapping) else None
