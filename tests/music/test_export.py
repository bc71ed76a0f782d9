"""MP3 export under a size limit with ID3 tags, and the cover image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from music.arrange import arrange
from music.errors import RenderError
from music.export import choose_bitrate, write_cover, write_mp3
from music.request import load_moods
from tests.support.scores import example_score


def test_bitrate_is_the_best_that_fits():
    limit = 10 * 1024 * 1024
    assert choose_bitrate(120, limit) == 320
    assert choose_bitrate(300, limit) == 256
    assert choose_bitrate(600, limit) == 128
    assert choose_bitrate(600, 5 * 1024 * 1024) == 64
    with pytest.raises(RenderError, match="does not fit"):
        choose_bitrate(3600, 1024 * 1024)


def test_mp3_has_tags_and_stays_under_the_limit(tmp_path, ffprobe):
    sr, seconds = 44100, 6.0
    t = np.arange(int(sr * seconds)) / sr
    audio = np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)]).astype(np.float32) * 0.3
    limit = 200 * 1024  # forces a lower bitrate
    path, kbps = write_mp3(
        audio,
        sr,
        tmp_path / "x.mp3",
        size_limit=limit,
        tags={"title": "hazy window", "genre": "LoFi", "comment": "mood=rainy bpm=72 key=D minor seed=3"},
    )
    assert kbps < 320 and path.stat().st_size <= limit
    info = ffprobe(path)
    assert info["title"] == "hazy window" and info["genre"] == "LoFi"
    assert "seed=3" in info["comment"] and "key=D minor" in info["comment"]
    assert info["duration"] == pytest.approx(seconds, rel=0.02)


def test_cover_is_a_png_with_the_mood_palette(tmp_path):
    mood = load_moods()["night"]
    arr = arrange(example_score(4, 70.0), mood.sound, seed=1)
    path = write_cover(
        arr.notes,
        arr.total_ticks,
        tmp_path / "c.png",
        title="late tram",
        subtitle="night",
        colors=mood.sound["cover"]["colors"],
    )
    img = Image.open(path)
    assert img.format == "PNG" and img.size == (512, 512)
    assert img.convert("RGB").getpixel((2, 2))[:3] == pytest.approx(
        (11, 15, 36), abs=12
    )  # the mood's background
    assert len(set(img.convert("RGB").getdata())) > 20  # notes and text drawn
