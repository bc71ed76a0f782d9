"""The radio's audio source: a playlist of rendered pieces read out as Discord's 20 ms PCM frames.

discord.py's `AudioPlayer` thread calls `read()` every 20 ms and wants exactly 3,840 bytes of 48 kHz 16-bit
stereo PCM. The pieces are mixed at read time: when the playing piece has `crossfade_s` left and the next
one is queued, both sound together under an equal-power crossfade. A piece that knows its bar length (a radio
piece: whole bars, no fades) is left over whole bars of its own, to the sample, so the next piece's first
downbeat lands on one of its downbeats, as a DJ would mix them. Mixing at read time (rather than when a
piece arrives) keeps queued pieces separate, so a mood change can drop the ones that have not started.

`read()` never blocks and never returns an empty frame while the radio runs: with nothing to play it returns
silence and counts an underrun (an empty frame would make discord.py stop the player for good).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord
import numpy as np

if TYPE_CHECKING:
    from bot.services import TrackInfo

log = logging.getLogger(__name__)

SAMPLE_RATE = 48_000
CHANNELS = 2
FRAME_SAMPLES = SAMPLE_RATE // 50  # 20 ms
FRAME_BYTES = FRAME_SAMPLES * CHANNELS * 2  # 3,840
SILENCE = bytes(FRAME_BYTES)


@dataclass
class Piece:
    """One rendered piece: int16 PCM of shape (samples, 2) at 48 kHz, its mood and seed, the recorded
    track it was decoded from (what the now-playing message shows) and, for a piece that ends on a bar line,
    its bar length in seconds (the crossfade out of it then spans whole bars)."""

    pcm: np.ndarray
    mood: str = ""
    seed: int | None = None
    track: TrackInfo | None = None
    bar_s: float | None = None

    def __post_init__(self) -> None:
        pcm = np.asarray(self.pcm)
        if pcm.ndim != 2 or pcm.shape[1] != CHANNELS or pcm.dtype != np.int16:
            raise ValueError(f"a piece is int16 PCM of shape (n, 2), not {pcm.dtype} {pcm.shape}")
        self.pcm = np.ascontiguousarray(pcm)

    @property
    def seconds(self) -> float:
        """Its length in seconds."""
        return float(self.pcm.shape[0] / SAMPLE_RATE)


def to_pcm16(audio: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1], shape (2, n) or (n, 2) or mono (n,), as int16 of shape (n, 2)."""
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        a = np.stack([a, a], axis=1)
    elif a.shape[0] in (1, 2) and a.shape[1] > 2:
        a = a.T
    if a.shape[1] == 1:
        a = np.repeat(a, 2, axis=1)
    return (np.clip(a, -1.0, 1.0) * 32767.0).round().astype(np.int16)


class RadioStream(discord.AudioSource):
    """Thread-safe playlist read as 20 ms frames (see the module docstring).

    Args:
        crossfade_s: overlap between consecutive pieces.
        on_start: called (from the audio thread) with each piece when it starts sounding.
        on_drained: called once (from the audio thread) when the last queued audio has been played out.
    """

    def __init__(
        self,
        *,
        crossfade_s: float = 4.0,
        on_start: Callable[[Piece], None] | None = None,
        on_drained: Callable[[], None] | None = None,
    ):
        self.crossfade = int(crossfade_s * SAMPLE_RATE)
        self.on_start = on_start
        self.on_drained = on_drained
        self._lock = threading.Lock()
        self._queue: deque[Piece] = deque()
        self._current: Piece | None = None
        self._pos = 0
        self._incoming: Piece | None = None  # the next piece, sounding during the crossfade
        self._in_pos = 0
        self._lead = 0  # samples of the frame before the incoming piece enters (its first frame only)
        self._fade_len = self._fade_done = 0
        self.frames = 0  # frames read
        self.underruns = 0  # frames of silence read while nothing was left to play
        self.pieces_started = 0
        self._drained_reported = False
        self.closed = False

    # ------------------------------------------------------------------ producer side (the event loop)

    def enqueue(self, piece: Piece) -> None:
        """Queue a rendered piece after the ones already waiting."""
        with self._lock:
            self._queue.append(piece)
            self._drained_reported = False

    def drop_queued(self, keep: Callable[[Piece], bool] = lambda p: False) -> list[Piece]:
        """Remove queued pieces that have not started sounding (those `keep` refuses); returns them."""
        with self._lock:
            dropped = [p for p in self._queue if not keep(p)]
            self._queue = deque(p for p in self._queue if keep(p))
            return dropped

    @property
    def queued(self) -> int:
        """Pieces waiting that have not started."""
        with self._lock:
            return len(self._queue)

    @property
    def current(self) -> Piece | None:
        """The piece now sounding (the incoming one once a crossfade has begun)."""
        with self._lock:
            return self._incoming or self._current

    def remaining_s(self) -> float:
        """Seconds of audio left to play: the current piece's rest plus every queued piece, less overlaps."""
        with self._lock:
            samples = 0
            if self._incoming is not None:
                samples += self._incoming.pcm.shape[0] - self._in_pos
            elif self._current is not None:
                samples += self._current.pcm.shape[0] - self._pos
            for p in self._queue:
                samples += max(0, p.pcm.shape[0] - self.crossfade)  # near enough for bar-long overlaps
            return samples / SAMPLE_RATE

    def current_left_s(self) -> float:
        """Seconds until the sounding piece would end (so until the next transition at the latest)."""
        with self._lock:
            if self._incoming is not None:
                return float((self._incoming.pcm.shape[0] - self._in_pos) / SAMPLE_RATE)
            if self._current is not None:
                return float((self._current.pcm.shape[0] - self._pos) / SAMPLE_RATE)
            return 0.0

    # ------------------------------------------------------------------ consumer side (the audio thread)

    def is_opus(self) -> bool:
        return False

    def read(self) -> bytes:
        """One 20 ms frame of PCM (silence, counted as an underrun, when nothing is left)."""
        started: list[Piece] = []
        drained = False
        with self._lock:
            self.frames += 1
            if self.closed:
                return SILENCE
            if self._current is None and self._queue:
                self._current, self._pos = self._queue.popleft(), 0
                started.append(self._current)
            if self._current is None:
                self.underruns += 1
                if not self._drained_reported:
                    self._drained_reported = drained = True
                frame = SILENCE
            else:
                frame = self._mix(started)
        for piece in started:
            self.pieces_started += 1
            if self.on_start is not None:
                try:
                    self.on_start(piece)
                except Exception:
                    log.exception("radio on_start callback failed")
        if drained and self.on_drained is not None:
            try:
                self.on_drained()
            except Exception:
                log.exception("radio on_drained callback failed")
        return frame

    def overlap(self, piece: Piece) -> int:
        """Samples of `piece`'s end under the crossfade into the next: `crossfade_s`, or with a bar length
        the whole number of its bars nearest it (at least one; at most half the piece)."""
        if piece.bar_s is None or piece.bar_s <= 0:
            return self.crossfade
        bar = piece.bar_s * SAMPLE_RATE
        bars = max(1, round(self.crossfade / bar))
        return min(int(round(bars * bar)), int(piece.pcm.shape[0]) // 2)

    def _mix(self, started: list[Piece]) -> bytes:
        cur = self._current
        assert cur is not None
        n = FRAME_SAMPLES
        left = cur.pcm.shape[0] - self._pos
        overlap = self.overlap(cur)
        if self._incoming is None and self._queue and left - n < overlap:
            # the overlap starts within this frame: the incoming piece enters at that very sample
            self._incoming, self._in_pos = self._queue.popleft(), 0
            self._lead = max(0, left - overlap)
            self._fade_len, self._fade_done = max(left - self._lead, 1), 0
            started.append(self._incoming)
        a = cur.pcm[self._pos : self._pos + n]
        self._pos += a.shape[0]
        if self._incoming is None:
            out = a if a.shape[0] == n else np.concatenate([a, np.zeros((n - a.shape[0], 2), np.int16)])
            if self._pos >= cur.pcm.shape[0]:
                self._current = None  # the next read starts the next queued piece (or underruns)
            return out.tobytes()
        inc, lead = self._incoming, self._lead
        self._lead = 0
        b = inc.pcm[self._in_pos : self._in_pos + n - lead]
        self._in_pos += b.shape[0]
        mix = np.zeros((n, 2), np.float32)
        # equal-power gains over the overlap, sample by sample (before `lead`, the outgoing piece alone)
        t = (self._fade_done + np.arange(n, dtype=np.float32) - lead) / self._fade_len
        t = np.clip(t, 0.0, 1.0)[:, None]
        self._fade_done += n - lead
        mix[: a.shape[0]] += a.astype(np.float32) * np.cos(t[: a.shape[0]] * np.pi / 2)
        mix[lead : lead + b.shape[0]] += b.astype(np.float32) * np.sin(
            t[lead : lead + b.shape[0]] * np.pi / 2
        )
        if self._pos >= cur.pcm.shape[0]:
            # the overlap is over: the incoming piece plays on alone
            self._current, self._pos = inc, self._in_pos
            self._incoming = None
        return np.clip(mix, -32768, 32767).astype(np.int16).tobytes()

    def cleanup(self) -> None:
        """Called by discord.py when the player stops; the stream keeps its state for a restart."""

    def close(self) -> None:
        """Stop producing audio (reads return silence)."""
        with self._lock:
            self.closed = True
            self._queue.clear()
            self._current = self._incoming = None
