"""A station's broadcast: its mixed audio encoded to Opus once, kept in a bounded ring of 20 ms frames that every
tuned-in guild reads at its own cursor (`bot.radio.listener.Listener`), the way a radio transmitter works.

One thread per station pulls 20 ms of PCM from the station's mixer (`RadioStream.read`), encodes it with
discord.py's `opus.Encoder` (the libopus encoder the voice client would otherwise run once per guild) and
appends the frame. Frames are numbered from the start: frame `n` is due at `t0 + n * 20 ms`. The thread keeps
`lead_frames` beyond the frame due now, because each guild's player reads on its own 20 ms clock: the lead is
the slack that absorbs scheduling jitter between the two clocks. The ring holds `ring_frames`; older frames
fall out, so a listener that stalls cannot make memory grow (it skips to the live edge instead).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from bot.radio.stream import FRAME_SAMPLES, SAMPLE_RATE

log = logging.getLogger(__name__)

FRAME_S = FRAME_SAMPLES / SAMPLE_RATE  # 0.02


class Broadcast:
    """Encode `read_pcm()` (3,840-byte PCM frames) into a ring of Opus frames in real time; `start()`, `stop()`.

    Args:
        read_pcm: returns the next 20 ms of 48 kHz 16-bit stereo PCM; called from the broadcast thread only.
        ring_frames: frames kept (500: 10 s, ~160 kB at 128 kbps).
        lead_frames: frames encoded ahead of the wall clock (10: 200 ms of slack for the listeners' clocks).
        name: the thread's name (logs, profilers).
    """

    def __init__(
        self,
        read_pcm: Callable[[], bytes],
        *,
        ring_frames: int = 500,
        lead_frames: int = 10,
        name: str = "radio-broadcast",
    ):
        if lead_frames >= ring_frames:
            raise ValueError("the lead must be shorter than the ring")
        self.read_pcm = read_pcm
        self.lead_frames = lead_frames
        self.ring_frames = ring_frames
        self.name = name
        self._ring: deque[bytes] = deque(maxlen=ring_frames)
        self._head = 0  # the number of the next frame to encode
        self._t0 = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.encode_cpu_s = 0.0  # the broadcast thread's CPU time (mixing + encoding), for the benchmark
        self.resyncs = 0  # times the thread fell so far behind that the clock was moved on

    # ------------------------------------------------------------------ control (the event loop)

    def start(self) -> None:
        """Start encoding; frame 0 is due now."""
        if self._thread is not None:
            return
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop encoding (listeners still tuned here read silence); returns within a frame or two."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)

    @property
    def on_air(self) -> bool:
        """Whether the thread is encoding."""
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    # ------------------------------------------------------------------ the listeners' side (any thread)

    def bounds(self) -> tuple[int, int]:
        """(oldest frame in the ring, next frame to be encoded)."""
        with self._lock:
            return self._head - len(self._ring), self._head

    def live(self) -> int:
        """The frame a listener tuning in now starts at: the one due now (so `lead_frames` are already there)."""
        due = int((time.perf_counter() - self._t0) / FRAME_S)
        tail, head = self.bounds()
        return max(tail, min(head, due))

    def frame(self, n: int) -> bytes | None:
        """Opus frame `n`, or None when it has fallen out of the ring or is not encoded yet."""
        with self._lock:
            tail = self._head - len(self._ring)
            if tail <= n < self._head:
                return self._ring[n - tail]
            return None

    # ------------------------------------------------------------------ the broadcast thread

    def _run(self) -> None:
        import discord.opus

        encoder = discord.opus.Encoder()
        cpu0 = time.thread_time()
        try:
            while not self._stop.is_set():
                due = int((time.perf_counter() - self._t0) / FRAME_S) + self.lead_frames
                behind = due - self._head
                if behind > self.ring_frames:
                    # starved for seconds (a suspended host): do not burst out a ring's worth of backlog,
                    # move the clock on so the stream continues from here
                    self.resyncs += 1
                    self._t0 = time.perf_counter() - (self._head - self.lead_frames) * FRAME_S
                    behind = self.lead_frames
                for _ in range(max(0, behind)):
                    opus = encoder.encode(self.read_pcm(), FRAME_SAMPLES)
                    with self._lock:
                        self._ring.append(opus)
                        self._head += 1
                self.encode_cpu_s = time.thread_time() - cpu0
                next_due = self._t0 + (self._head - self.lead_frames + 1) * FRAME_S
                self._stop.wait(max(0.0, next_due - time.perf_counter()))
        except Exception:
            log.exception("radio broadcast %s failed", self.name)
            raise
