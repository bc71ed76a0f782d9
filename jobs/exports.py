"""The stems and loop jobs on the broker (the Stems and Loop buttons with BROKER_URL set): a finished track's
tokens and facts go to a worker, its files come back inside the result, as a track's do (`jobs.wire`).

They ride the track task (one queue, one worker pool): a payload's `kind` says which job it is, and a
payload without one is a track job (what bots older than the field send).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compose.pipeline import Composer
from jobs.wire import TrackJob, Wire, file_from_wire, file_to_wire, request_from_wire, request_to_wire
from music.producer_files import ExportFiles
from music.request import TrackRequest

EXPORT_KINDS = ("stems", "loop")


@dataclass(frozen=True)
class ExportJob:
    """A finished track rendered again from its `tokens` and `facts` (`compose.exports.replay_plan`): its
    stems (`kind` "stems") or a `bars`-bar seamless loop ("loop"), each file within `size_limit`."""

    kind: str
    tokens: tuple[int, ...]
    facts: TrackRequest
    bars: int | None = None
    size_limit: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in EXPORT_KINDS:
            raise ValueError(f"an export job is one of {', '.join(EXPORT_KINDS)}, not {self.kind!r}")
        if self.kind == "loop" and self.bars is None:
            raise ValueError("a loop job needs its bars")

    async def run(self, maker: Composer, out_dir: Path) -> ExportFiles:
        """The job on `maker`, its files in `out_dir`."""
        if self.kind == "stems":
            return await maker.render_stems(self.tokens, self.facts, out_dir, size_limit=self.size_limit)
        assert self.bars is not None  # __post_init__
        return await maker.render_loop(
            self.tokens, self.facts, self.bars, out_dir, size_limit=self.size_limit
        )

    def to_wire(self) -> Wire:
        return {
            "kind": self.kind,
            "tokens": [int(t) for t in self.tokens],
            "facts": request_to_wire(self.facts),
            "bars": self.bars,
            "size_limit": self.size_limit,
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> ExportJob:
        bars, limit = data.get("bars"), data.get("size_limit")
        return cls(
            kind=str(data["kind"]),
            tokens=tuple(int(t) for t in data["tokens"]),
            facts=request_from_wire(data["facts"]),
            bars=None if bars is None else int(bars),
            size_limit=None if limit is None else int(limit),
        )


def job_from_wire(data: Mapping[str, Any]) -> TrackJob | ExportJob:
    """The job a payload holds: an export job by its kind, else a track job (raises KeyError, TypeError or
    ValueError for a malformed one)."""
    kind = data.get("kind", "track")
    return TrackJob.from_wire(data) if kind == "track" else ExportJob.from_wire(data)


def export_to_wire(files: ExportFiles) -> Wire:
    """Rendered files with their bytes, in order, and the notes that go with them."""
    return {
        "export": {
            "files": [file_to_wire(Path(p)) for p in files.files],
            "notes": [str(n) for n in files.notes],
            "gain": float(files.gain),
        }
    }


def export_from_wire(data: Mapping[str, Any], out_dir: Path) -> ExportFiles:
    """The files a worker rendered, written into `out_dir` (names only: never outside it)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    export = data["export"]
    return ExportFiles(
        files=[file_from_wire(f, out_dir) for f in export["files"]],
        notes=[str(n) for n in export["notes"]],
        gain=float(export["gain"]),
    )
