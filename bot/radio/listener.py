"""One guild's tuner: the `AudioSource` its voice client plays, reading a station's Opus frames at its own cursor.

discord.py sends what `read()` returns as is when `is_opus()` is true, so a guild costs no mixing and no
encoding: the station encoded the frame once for every guild. Changing station is `tune()`: the player keeps
running (no stop, no gap) and the next read comes from the new station's live edge.
"""

from __future__ import annotations

import threading

import discord
from discord.opus import OPUS_SILENCE

from bot.radio.broadcast import Broadcast


class Listener(discord.AudioSource):
    """Reads a `Broadcast` frame by frame (see the module docstring); thread-safe `tune()`.

    `read()` never returns an empty frame (that would make discord.py stop the player for good): before the
    first frame, between stations or if the station's thread lags, it returns Opus silence.
    """

    def __init__(self, broadcast: Broadcast | None = None):
        self._lock = threading.Lock()
        self._broadcast = broadcast
        self._cursor: int | None = None  # the next frame to read; None: start at the live edge
        self.frames = 0  # frames read
        self.silent = 0  # silence frames sent because no frame was there
        self.skips = 0  # times the cursor had fallen behind the ring and jumped to the live edge

    def tune(self, broadcast: Broadcast | None) -> None:
        """Listen to `broadcast` from its live edge on (None: silence)."""
        with self._lock:
            self._broadcast, self._cursor = broadcast, None

    @property
    def broadcast(self) -> Broadcast | None:
        """The station's broadcast this listener reads."""
        return self._broadcast

    def is_opus(self) -> bool:
        return True

    def read(self) -> bytes:
        """The next 20 ms Opus frame of the station (silence when there is none yet)."""
        with self._lock:
            self.frames += 1
            b = self._broadcast
            if b is None:
                self.silent += 1
                return OPUS_SILENCE
            if self._cursor is None:
                self._cursor = b.live()
            frame = b.frame(self._cursor)
            if frame is None and self._cursor < b.bounds()[0]:
                # fell out of the ring (this player stalled): rejoin live rather than replay the past
                self.skips += 1
                self._cursor = b.live()
                frame = b.frame(self._cursor)
            if frame is None:  # ahead of the station's thread: wait for it in place
                self.silent += 1
                return OPUS_SILENCE
            self._cursor += 1
            return frame

    def cleanup(self) -> None:
        """Called by discord.py when the player stops; the listener keeps its station for a restart."""
