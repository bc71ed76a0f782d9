"""The Stems and Loop buttons' rules without Discord: how files are packed into follow-ups, which loop fits."""

from __future__ import annotations

import pytest

from bot.errors import NoLoop
from bot.export_posting import pack
from bot.services.exports import loop_bars
from music.request import TrackRequest, plan_track


def files(tmp_path, *sizes: int):
    paths = []
    for i, size in enumerate(sizes):
        path = tmp_path / f"f{i}"
        path.write_bytes(b"x" * size)
        paths.append(path)
    return paths


def test_files_are_packed_in_order_within_the_limit_and_ten_a_message(tmp_path):
    paths = files(tmp_path, 6, 1, 5, 4, *[1] * 12)
    groups, too_big = pack(paths, limit=10)
    assert [p for g in groups for p in g] == paths and not too_big  # every file once, in order
    assert all(len(g) <= 10 and sum(p.stat().st_size for p in g) <= 10 for g in groups)
    assert [len(g) for g in groups] == [2, 3, 10, 1]


def test_a_file_over_the_limit_is_left_out_and_named(tmp_path):
    paths = files(tmp_path, 3, 11, 3)
    groups, too_big = pack(paths, limit=10)
    assert groups == [[paths[0], paths[2]]] and too_big == [paths[1]]


def facts(length_s: float, bpm: float = 80.0) -> TrackRequest:
    plan = plan_track(TrackRequest(length_s, "rainy", 1, bpm))
    return TrackRequest(plan.length_s, plan.mood.name, 1, plan.bpm, "A minor")


def test_a_loop_is_eight_bars_when_the_track_holds_them_else_four():
    assert loop_bars(facts(60.0), None) == 8
    assert loop_bars(facts(16.0), None) == 4  # 5 bars at 80 bpm


def test_an_eight_bar_loop_over_the_limit_falls_back_to_four():
    # 8 bars at 80 bpm: 24 s, 6.35 MB as 24-bit WAV; 4 bars: 3.18 MB
    assert loop_bars(facts(60.0), 5_000_000) == 4
    with pytest.raises(NoLoop, match="4-bar loop .* upload limit"):
        loop_bars(facts(60.0), 2_000_000)


def test_a_track_under_four_bars_is_told_so():
    with pytest.raises(NoLoop, match="3 bars, too few for a loop"):
        loop_bars(facts(9.0), None)
