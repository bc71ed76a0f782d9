"""The steps both readers share: the duration grid."""

from __future__ import annotations

from music.score_building import snap_duration
from music.tokens import DURATIONS


def test_durations_snap_to_the_duration_grid():
    assert snap_duration(50) == 48 and snap_duration(100) == 96
    assert snap_duration(200, limit=190) == 180
    assert all(snap_duration(d) == d for d in DURATIONS)
