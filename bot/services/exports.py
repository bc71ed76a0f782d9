"""A finished track's stems and seamless loop (the Stems and Loop buttons): who may have them, which loop
length fits, and the render from the track's stored tokens and facts (nothing is generated again)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import NoLoop, TrackGone
from bot.resources import TrackMaker
from bot.services.common import Viewer
from bot.services.outdir import track_dir
from compose.exports import replay_plan
from db.models import Track, TrackStatus
from music.producer_files import wav_bytes
from music.render_config import SAMPLE_RATE
from music.request import TrackRequest
from music.seamless import LOOP_BARS
from serving.errors import ServingUnavailable

if TYPE_CHECKING:
    from music.producer_files import ExportFiles


@dataclass(frozen=True)
class ExportSource:
    """What a finished track is rendered again from: its tokens and its facts as recorded."""

    track_id: int
    title: str
    tokens: tuple[int, ...]
    facts: TrackRequest


def facts_of(track: Track) -> TrackRequest:
    """The facts `compose.exports.replay_plan` needs, from a finished track's row: the resolved mood, the
    length to the sample, the actual tempo and key (not what was asked: the random mood or tempo drawn)."""
    return TrackRequest(
        length_s=float(track.length_s or track.length_requested_s),
        mood=track.mood or track.mood_requested,
        seed=int(track.seed),
        bpm=None if track.bpm is None else float(track.bpm),
        key=track.key or track.key_requested,
        radio=track.radio,
    )


def loop_bars(facts: TrackRequest, size_limit: int | None) -> int:
    """The longest loop (8 bars, else 4) the track holds and whose WAV fits `size_limit`; NoLoop otherwise."""
    plan = replay_plan(facts)
    bar_s = plan.seconds / plan.n_bars
    held = [bars for bars in sorted(LOOP_BARS, reverse=True) if bars <= plan.n_bars]
    if not held:
        raise NoLoop(
            f"This track has {plan.n_bars} bars, too few for a loop: a loop is {min(LOOP_BARS)} or "
            f"{max(LOOP_BARS)} bars. Extend it first."
        )
    for bars in held:
        if size_limit is None or wav_bytes(int(round(bars * bar_s * SAMPLE_RATE))) <= size_limit:
            return bars
    raise NoLoop(f"Even a {min(held)}-bar loop of this track is over this channel's upload limit as WAV.")


class ExportService:
    """Stems and loops of finished tracks, rendered by `maker` (in-process or on the broker's workers) into a
    fresh folder inside the track's folder (two clicks at once never share one)."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], maker: TrackMaker | None, out_dir: Path
    ):
        self.sessionmaker = sessionmaker
        self.maker = maker
        self.out_dir = Path(out_dir)

    async def source(self, track_id: int, viewer: Viewer) -> ExportSource:
        """Track `track_id` to render again; TrackGone unless it is finished, has its tokens and is `viewer`'s
        to use (the MIDI button's rule: a track of this guild, or in a DM the viewer's own)."""
        async with self.sessionmaker() as s:
            track = await s.get(Track, track_id)
        if (
            track is None
            or not viewer.may_use(track.guild_id, track.user_id)
            or track.status is not TrackStatus.done
            or not track.tokens
        ):
            raise TrackGone()
        return ExportSource(
            track.id, track.title or f"lofi #{track.id}", tuple(int(t) for t in track.tokens), facts_of(track)
        )

    async def stems_of(self, source: ExportSource, *, size_limit: int) -> ExportFiles:
        """The track's stems and each part's MIDI, every file within `size_limit` (or left out, with a note)."""
        maker, folder = self._maker(), await self._folder(source, "stems-")
        try:
            return await maker.render_stems(source.tokens, source.facts, folder, size_limit=size_limit)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # a failed render leaves no half-written files
            raise

    async def loop_of(self, source: ExportSource, *, size_limit: int) -> tuple[int, ExportFiles]:
        """An 8-bar seamless loop of the track's main section (4 bars when 8 do not fit) and its MIDI; returns
        its bars and files."""
        bars = loop_bars(source.facts, size_limit)  # before any work: a clear refusal
        maker, folder = self._maker(), await self._folder(source, f"loop{bars}-")
        try:
            files = await maker.render_loop(source.tokens, source.facts, bars, folder, size_limit=size_limit)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return bars, files

    def _maker(self) -> TrackMaker:
        if self.maker is None:
            raise ServingUnavailable("no serving client")
        return self.maker

    async def _folder(self, source: ExportSource, prefix: str) -> Path:
        # A new entry also makes the track's folder the newest, so trimming out/ takes it last.
        parent = track_dir(self.out_dir, source.track_id)
        parent.mkdir(parents=True, exist_ok=True)
        return Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=prefix, dir=parent))
