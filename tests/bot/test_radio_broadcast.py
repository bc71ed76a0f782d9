"""A station's broadcast and the guilds' listeners without Discord: one Opus encoding read at many cursors, a
bounded ring, late joiners and stalled players at the live edge, stations on air only while someone listens."""

from __future__ import annotations

import asyncio
import itertools
import time

import numpy as np
from discord.opus import OPUS_SILENCE

from bot.radio.broadcast import Broadcast
from bot.radio.listener import Listener
from bot.radio.station import RadioConfig, RadioStation
from bot.radio.stations import StationHub
from bot.radio.stream import FRAME_SAMPLES, Piece, to_pcm16


def counting_pcm():
    """A PCM source whose every frame differs (a rising ramp), so equal Opus frames mean the same audio."""
    counter = itertools.count()

    def read() -> bytes:
        n = next(counter)
        t = (n * FRAME_SAMPLES + np.arange(FRAME_SAMPLES)) / 48_000
        return to_pcm16(0.3 * np.sin(2 * np.pi * (200 + n) * t)).tobytes()

    return read


def wait_for_frames(b: Broadcast, n: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while b.bounds()[1] < n:
        assert time.monotonic() < deadline, f"only {b.bounds()[1]} frames encoded"
        time.sleep(0.01)


def test_broadcast_keeps_a_lead_over_the_clock_and_a_bounded_ring():
    b = Broadcast(counting_pcm(), ring_frames=40, lead_frames=5)
    b.start()
    try:
        time.sleep(1.2)  # 60 frames due: more than the ring holds
        tail, head = b.bounds()
        assert head - tail == 40  # the oldest fell out: memory stays bounded
        due = int(1.2 / 0.02)
        assert due <= head <= due + 5 + 5  # real time plus the lead (and a little scheduling slack)
        assert b.frame(tail - 1) is None and b.frame(head) is None and b.frame(head - 1)
        assert b.encode_cpu_s > 0
    finally:
        b.stop()
    assert not b.on_air


def test_listeners_read_the_same_frames_at_their_own_cursors():
    b = Broadcast(counting_pcm(), ring_frames=100, lead_frames=5)
    b.start()
    try:
        wait_for_frames(b, 5)  # the lead is encoded at once
        first, late = Listener(b), Listener(b)
        a = [first.read() for _ in range(5)]
        time.sleep(0.2)  # the late joiner tunes in 10 frames later: it starts at the live edge, not frame 0
        c = [late.read() for _ in range(5)]
        a += [first.read() for _ in range(5)]
        assert c[0] not in a[:5]
        assert all(f != OPUS_SILENCE for f in a + c)
        # what the late one hears is exactly the first one's stream from its joining point
        time.sleep(0.4)  # (the reads above ran faster than real time: let the station get ahead again)
        more = [first.read() for _ in range(20)]
        stream = a + more
        i = stream.index(c[0])
        assert stream[i : i + 5] == c
    finally:
        b.stop()


def test_a_stalled_listener_skips_to_the_live_edge():
    b = Broadcast(counting_pcm(), ring_frames=20, lead_frames=3)
    b.start()
    try:
        slow = Listener(b)
        slow.read()
        time.sleep(0.8)  # 40 frames: its cursor fell out of the 20-frame ring
        frame = slow.read()
        assert slow.skips == 1 and frame != OPUS_SILENCE
        tail, head = b.bounds()
        assert b.frame(head - 1 - 3 - 2) is not None  # it rejoined near the live edge, inside the ring
    finally:
        b.stop()


def test_tune_switches_station_at_the_next_read_and_none_is_silence():
    one, two = Broadcast(counting_pcm(), lead_frames=3), Broadcast(counting_pcm(), lead_frames=3)
    one.start()
    time.sleep(0.1)
    two.start()
    try:
        wait_for_frames(two, 3)
        listener = Listener(one)
        from_one = listener.read()
        listener.tune(two)
        from_two = listener.read()
        tail, head = two.bounds()
        assert from_two in {two.frame(n) for n in range(tail, head)}
        assert from_one not in {two.frame(n) for n in range(tail, head)}
        listener.tune(None)
        assert listener.read() == OPUS_SILENCE and listener.is_opus()
    finally:
        one.stop()
        two.stop()


async def test_a_station_is_on_air_from_the_first_listener_to_the_last():
    made = []

    def new_station(mood: str) -> RadioStation:
        async def make(mood, seed):
            return Piece(to_pcm16(np.zeros(48_000 * 2)), mood=mood)

        made.append(mood)
        return RadioStation(make, mood, RadioConfig(piece_length_s=2, crossfade_s=0.2, ahead_s=3))

    hub = StationHub(new_station)
    rainy = await hub.tune_in("rainy", 1)
    assert await hub.tune_in("rainy", 2) is rainy and made == ["rainy"]  # one station for both guilds
    assert hub.on_air("rainy") and hub.listeners(rainy) == {1, 2} and not hub.on_air("sunny")
    await hub.leave("rainy", 1)
    assert hub.on_air("rainy")  # guild 2 still listens
    await hub.leave("rainy", 2)
    assert not hub.on_air("rainy") and not rainy.broadcast.on_air and not rainy.running
    await asyncio.sleep(0)
    again = await hub.tune_in("rainy", 3)
    assert again is not rainy and made == ["rainy", "rainy"]
    await hub.close()
    assert not again.broadcast.on_air
