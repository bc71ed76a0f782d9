"""The radio decodes a piece to the samples that were encoded: no MP3 encoder delay in front, no padding behind
(issue 24: every piece began with 1,202 samples of silence, 25 ms)."""

from __future__ import annotations

import numpy as np

from bot.radio.audio import gapless_trim, load_pcm
from bot.radio.stream import SAMPLE_RATE
from music.export import write_mp3

RATE = 44100  # what the pipeline masters at


def clicks(seconds: float = 3.0) -> np.ndarray:
    audio = np.zeros((2, int(RATE * seconds)), np.float32)
    for start in range(1000, int(RATE * 2), 5000):
        audio[:, start : start + 3] = 0.8
    return audio


def lag_of(decoded: np.ndarray, reference: np.ndarray) -> int:
    n = min(len(decoded), len(reference), SAMPLE_RATE)
    c = np.correlate(decoded[:n], reference[:n], mode="full")
    return int(np.argmax(c)) - (n - 1)


def test_an_mp3_piece_starts_and_ends_where_the_music_does(tmp_path):
    from scipy.signal import resample_poly

    audio = clicks()
    path, _ = write_mp3(audio, RATE, tmp_path / "piece.mp3")
    assert gapless_trim(path) == (576 + 529, gapless_trim(path)[1])  # the LAME tag ffmpeg wrote
    pcm = load_pcm(path).astype(np.float64)[:, 0] / 32767
    reference = resample_poly(audio[0].astype(np.float64), SAMPLE_RATE // 300, RATE // 300)
    assert abs(lag_of(pcm, reference)) <= 2
    assert abs(len(pcm) - audio.shape[1] * SAMPLE_RATE / RATE) <= 2


def test_a_file_without_a_lame_tag_is_left_whole(tmp_path):
    from pedalboard.io import AudioFile

    path = tmp_path / "piece.wav"
    with AudioFile(str(path), "w", RATE, 2) as f:
        f.write(clicks(1.0))
    assert gapless_trim(path) == (0, 0)
    assert abs(len(load_pcm(path)) - SAMPLE_RATE) <= 2


def test_a_piece_with_the_pipelines_tags_is_trimmed_too(tmp_path):
    # A track's ID3 tag (title, mood, seed...) runs past 127 bytes: its size is four 7-bit digits, and read
    # as plain bytes it pointed past the first frame, so real pieces kept their 25 ms of encoder delay.
    tags = {"title": "velvet harbor", "artist": "lofi bot", "comment": "mood=chill " + "x" * 200}
    path, _ = write_mp3(clicks(), RATE, tmp_path / "tagged.mp3", tags=tags)
    assert path.read_bytes()[8] != 0  # the tag's size has a second 7-bit digit
    assert gapless_trim(path)[0] == 576 + 529
    assert abs(len(load_pcm(path)) - clicks().shape[1] * SAMPLE_RATE / RATE) <= 2
