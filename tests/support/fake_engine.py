"""What the bot's tests share in their stand-ins for the composing engine (`bot.resources.TrackMaker`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from music.progress import Progress
from music.request import TrackRequest

if TYPE_CHECKING:
    from compose.pipeline import TrackResult


class ExtendsByMaking:
    """`extend_track` for a fake engine: records (request, prefix, base) in `extensions` and makes the longer
    track as its `make_track` makes any other (a subclass defines `make_track`)."""

    def __init__(self) -> None:
        self.extensions: list[tuple[TrackRequest, list[int], TrackRequest]] = []

    async def extend_track(
        self,
        request: TrackRequest,
        out_dir: Path,
        *,
        prefix: Sequence[int],
        base: TrackRequest,
        progress: Progress | None = None,
        size_limit: int | None = None,
    ) -> TrackResult:
        self.extensions.append((request, list(prefix), base))
        return await self.make_track(request, out_dir, progress=progress, size_limit=size_limit)
