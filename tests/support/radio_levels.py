"""The level of radio transitions: pieces played through `RadioStream` as a listener hears them, and how far
the level dips across each crossfade below the music around it (the bench and the radio tests measure it)."""

from __future__ import annotations

import numpy as np

from bot.radio.stream import SAMPLE_RATE, Piece, RadioStream

WINDOW_S = 0.4  # the level: 400 ms windows (EBU R 128's momentary window), every 100 ms
SHORT_TERM_S = 3.0  # EBU R 128's short-term window: a sag a listener hears, not the gap between two chords
HOP_S = 0.1
MARGIN_S = 1.0  # the transition region: the crossfade and a second either side (a fade-out starts earlier)
AROUND_S = 5.0  # the music around it: 5 s before the region and 5 s after (10 s in all)


def play_through(pieces: list[Piece], crossfade_s: float = 4.0) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """(the stream's output as int16 (n, 2), the (first, end) sample of each crossfade) for `pieces` queued
    in order and read out frame by frame until the stream drains."""
    stream = RadioStream(crossfade_s=crossfade_s)
    for p in pieces:
        stream.enqueue(p)
    frames = []
    while stream.underruns == 0:
        frames.append(np.frombuffer(stream.read(), np.int16).reshape(-1, 2))
    audio = np.concatenate(frames[:-1])
    # the stream starts each piece exactly `overlap` samples before the previous one ends
    regions, end = [], 0
    for prev in pieces[:-1]:
        end += prev.pcm.shape[0] - (regions[-1][1] - regions[-1][0] if regions else 0)
        regions.append((end - stream.overlap(prev), end))
    return audio, regions


def mid_piece_regions(regions: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """A control for each transition region: one as long, halfway between it and the one before (the middle
    of the piece it ends), where the music's own ups and downs are all there is to measure."""
    out, previous_end = [], 0
    for first, end in regions:
        centre = (previous_end + first) // 2
        out.append((centre - (end - first) // 2, centre + (end - first) - (end - first) // 2))
        previous_end = end
    return out


def short_term_db(audio: np.ndarray, window_s: float = WINDOW_S) -> np.ndarray:
    """The RMS level (dBFS, both channels) of each `window_s` window, one every 100 ms."""
    x = audio.astype(np.float64) / 32768.0
    power = (x**2).mean(axis=1)
    win, hop = int(window_s * SAMPLE_RATE), int(HOP_S * SAMPLE_RATE)
    csum = np.concatenate([[0.0], np.cumsum(power)])
    starts = np.arange(0, len(power) - win + 1, hop)
    ms = (csum[starts + win] - csum[starts]) / win
    return np.asarray(10 * np.log10(np.maximum(ms, 1e-12)))


def transition_dips(
    audio: np.ndarray, regions: list[tuple[int, int]], window_s: float = WINDOW_S
) -> list[dict[str, float]]:
    """For each crossfade (first, end sample): the quietest `window_s` window over it (and a second either
    side) against the median window of the 10 s of music around it; `dip_db` is how far below it falls."""
    levels = short_term_db(audio, window_s)
    win_s = np.arange(len(levels)) * HOP_S + window_s / 2  # each window's centre, in seconds
    out = []
    for first, end in regions:
        lo, hi = first / SAMPLE_RATE - MARGIN_S, end / SAMPLE_RATE + MARGIN_S
        inside = (win_s >= lo) & (win_s <= hi)
        around = ((win_s >= lo - AROUND_S) & (win_s < lo)) | ((win_s > hi) & (win_s <= hi + AROUND_S))
        ref, low = float(np.median(levels[around])), float(levels[inside].min())
        out.append(
            {
                "at_s": round(first / SAMPLE_RATE, 2),
                "around_dbfs": round(ref, 1),
                "lowest_dbfs": round(low, 1),
                "dip_db": round(ref - low, 1),
            }
        )
    return out
