"""The "Extend" button's work: a longer version of a posted track that continues its music (same key, tempo
and material: generation continues the track's own tokens, see `serving.extend`), posted like a new track."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from bot.errors import BadLength, TrackGone
from bot.services import TrackService
from db.models import Track, TrackStatus
from music.request import TrackRequest

EXTRA_LENGTHS = (("+30 s", 30.0), ("+1 min", 60.0), ("+2 min", 120.0), ("+3 min", 180.0))


def default_extend_pipeline(settings: Any) -> Callable[..., Any]:
    """The real extend pipeline with the settings' soundfont and grooves (imported lazily: it pulls in the
    serving stack)."""
    from serving.extend import extend_track

    return functools.partial(extend_track, **settings.render_options())


def choices_for(length_s: float, max_length_s: float) -> list[tuple[str, float]]:
    """The extra lengths that keep the track within `max_length_s`."""
    return [(label, extra) for label, extra in EXTRA_LENGTHS if length_s + extra <= max_length_s]


async def extension_of(bot: Any, track_id: int, extra_s: float) -> tuple[TrackRequest, TrackService]:
    """The request for track `track_id` made `extra_s` longer, and a track service whose pipeline continues
    that track's tokens; TrackGone when the track has no tokens, BadLength past the longest track."""
    async with bot.sessionmaker() as s:
        track = await s.get(Track, track_id)
    if track is None or track.status is not TrackStatus.done or not track.tokens:
        raise TrackGone()
    base = TrackRequest(
        length_s=track.length_requested_s, mood=track.mood_requested, seed=track.seed, bpm=track.bpm_requested
    )
    length = float(track.length_s or track.length_requested_s) + extra_s
    if length > bot.settings.max_length_s:
        raise BadLength(
            f"That would make it {length:.0f} s long; the longest track is {bot.settings.max_length_s:.0f} s."
        )
    extend = getattr(bot, "extend_pipeline", None) or default_extend_pipeline(bot.settings)
    pipeline = functools.partial(extend, prefix=list(track.tokens), base=base)
    tracks = bot.tracks
    service = TrackService(
        tracks.sessionmaker, pipeline, tracks.client_provider, tracks.out_dir, tracks.executor
    )
    return TrackRequest(length_s=length, mood=base.mood, seed=base.seed, bpm=base.bpm), service
