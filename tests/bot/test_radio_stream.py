"""The radio's stream and station without Discord: 20 ms frames, crossfades, underruns, the broadcast, outages."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from bot.radio.station import RadioConfig, RadioStation
from bot.radio.stream import FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE, Piece, RadioStream, to_pcm16


def tone(seconds: float, hz: float, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return to_pcm16(amp * np.sin(2 * np.pi * hz * t))


def frames(stream: RadioStream, n: int) -> np.ndarray:
    out = []
    for _ in range(n):
        data = stream.read()
        assert len(data) == FRAME_BYTES
        out.append(np.frombuffer(data, np.int16).reshape(-1, 2))
    return np.concatenate(out)


def test_frames_are_3840_bytes_and_silence_counts_as_underrun():
    stream = RadioStream(crossfade_s=0.5)
    assert stream.read() == bytes(FRAME_BYTES) and stream.underruns == 1
    stream.enqueue(Piece(tone(1.0, 440)))
    audio = frames(stream, 50)
    assert np.abs(audio).max() > 9000 and stream.underruns == 1
    frames(stream, 1)  # the piece is over: silence again
    assert stream.underruns == 2


def test_crossfade_overlaps_pieces_without_a_dip_and_reports_each_start():
    started = []
    stream = RadioStream(crossfade_s=0.5, on_start=lambda p: started.append(p.seed))
    stream.enqueue(Piece(tone(2.0, 220), seed=1))
    stream.enqueue(Piece(tone(2.0, 330), seed=2))
    audio = frames(stream, int(3.5 * SAMPLE_RATE / FRAME_SAMPLES))  # 2 + 2 - 0.5 s
    assert started == [1, 2] and stream.underruns == 0
    rms = np.sqrt(np.mean(audio.astype(np.float64).reshape(-1, 960, 2) ** 2, axis=(1, 2)))
    assert rms.min() > 0.6 * np.median(rms)  # equal-power: no hole in the middle of the crossfade
    assert stream.remaining_s() == 0.0


def test_drop_queued_keeps_the_playing_piece():
    stream = RadioStream(crossfade_s=0.5)
    stream.enqueue(Piece(tone(2.0, 220), mood="rainy"))
    frames(stream, 5)
    stream.enqueue(Piece(tone(2.0, 330), mood="rainy"))
    assert len(stream.drop_queued(keep=lambda p: p.mood == "sunny")) == 1
    assert stream.queued == 0 and stream.current.mood == "rainy"


def test_piece_rejects_the_wrong_format():
    with pytest.raises(ValueError):
        Piece(np.zeros((10, 2), np.float32))


async def test_station_composes_ahead_and_broadcasts_its_mood_once_composed():
    import discord.opus

    calls = []

    async def make(mood, seed):
        calls.append(mood)
        await asyncio.sleep(0.01)
        return Piece(tone(6.0, 220 if mood == "rainy" else 440), mood=mood)

    cfg = RadioConfig(piece_length_s=6, crossfade_s=0.5, ahead_s=7.0)
    station = RadioStation(make, "rainy", cfg, seed=1)
    assert not station.broadcast.on_air  # nothing to say before the first piece
    await station.start()
    await asyncio.sleep(0.3)
    assert station.broadcast.on_air and station.stream.queued >= 1 and set(calls) == {"rainy"}
    tail, head = station.broadcast.bounds()
    assert head >= 10  # ~15 frames due in 0.3 s, plus the lead
    decoder = discord.opus.Decoder()
    pcm = b"".join(decoder.decode(station.broadcast.frame(n), fec=False) for n in range(tail, head))
    audio = np.frombuffer(pcm, np.int16).reshape(-1, 2)[1920:]  # past the codec's start-up
    spectrum = np.abs(np.fft.rfft(audio[:, 0].astype(np.float64)))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / len(audio) - 220) < 10
    assert station.now_playing is not None and station.now_playing.mood == "rainy"
    await station.stop()
    assert not station.broadcast.on_air


async def test_station_reports_an_outage_and_recovers():
    down = True
    events = []

    async def make(mood, seed):
        if down:
            from serving.errors import ServingUnavailable

            raise ServingUnavailable("down")
        return Piece(tone(1.0, 220))

    cfg = RadioConfig(piece_length_s=1, crossfade_s=0.2, ahead_s=2.0, retry_s=0.05, retry_max_s=0.1)
    station = RadioStation(make, "chill", cfg, on_event=lambda k, d: events.append((k, d)))
    await station.start(wait_first=False)
    await asyncio.sleep(0.3)
    assert [k for k, _ in events] == ["down"] and events[0][1]["serving"] is True
    down = False
    await asyncio.sleep(0.3)
    # once back, the station goes on air by itself: its first piece starts sounding
    assert [k for k, _ in events] == ["down", "up", "now_playing"] and station.broadcast.on_air
    await station.stop()


async def test_a_silent_station_does_not_wait_out_its_backoff_once_the_server_is_back():
    # issue 24: after an outage the radio waited its full backoff (up to 30 s) although nothing was playing
    from serving.errors import ServingUnavailable

    down, tries = True, []

    async def make(mood, seed):
        tries.append(asyncio.get_running_loop().time())
        if down:
            raise ServingUnavailable("down")
        return Piece(tone(1.0, 220))

    cfg = RadioConfig(piece_length_s=1, crossfade_s=0.2, ahead_s=2.0, retry_s=0.1, retry_max_s=30.0)
    station = RadioStation(make, "chill", cfg)
    await station.start(wait_first=False)
    await asyncio.sleep(1.6)  # long enough for the doubling backoff to have grown past 1.6 s (0.1 .. 1.6)
    down = False
    back = asyncio.get_running_loop().time()
    await asyncio.wait_for(station._first.wait(), timeout=5)
    assert asyncio.get_running_loop().time() - back < 0.5  # tried again within retry_s, not the backoff
    assert max(b - a for a, b in zip(tries, tries[1:], strict=False)) < 0.3
    await station.stop()
