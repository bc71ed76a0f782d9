"""A broadcast station: composes pieces of one mood ahead of playback into a `RadioStream` (the crossfading
mixer), whose audio its `Broadcast` encodes once into Opus for every guild tuned in; keeps playing its buffer out
when the model server is down (then resumes by itself).

The station knows nothing of Discord nor of guilds: it is given a `make_piece(mood, seed)` coroutine (the
`/lofi` pipeline plus decoding to 48 kHz PCM) and reports what happens through `on_event(kind, data)` on the
event loop. A guild changes mood by tuning to another station (`bot.radio.stations`), so a station's mood (and
a custom station's tempo and key, which its `make_piece` asks for) is fixed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.config import BotSettings
from bot.radio.broadcast import Broadcast
from bot.radio.stream import Piece, RadioStream
from music.limits import SEED_MAX

log = logging.getLogger(__name__)

PieceMaker = Callable[[str, int], Awaitable[Piece]]
EventSink = Callable[[str, dict[str, Any]], Awaitable[None] | None]


@dataclass(frozen=True)
class RadioConfig:
    """How the radio composes and plays (plain values; the bot fills them from its settings).

    Args:
        piece_length_s: length asked of each piece (the same pipeline as `/lofi`, so within its limits).
        crossfade_s: overlap between consecutive pieces.
        ahead_s: composition keeps at least this much audio (beyond the playhead) ready.
        retry_s: first wait before trying again after a failed piece (doubles up to `retry_max_s`).
        retry_max_s: longest wait between tries while the model server is down.
        first_piece_timeout_s: how long `start` waits for the first piece.
        empty_grace_s: without 24/7, how long the radio stays in an empty channel.
        connect_timeout_s: voice connection timeout.
    """

    piece_length_s: float
    crossfade_s: float
    ahead_s: float
    retry_s: float = 2.0
    retry_max_s: float = 30.0
    first_piece_timeout_s: float = 120.0
    empty_grace_s: float = 60.0
    connect_timeout_s: float = 30.0

    @classmethod
    def of_settings(cls, settings: BotSettings) -> RadioConfig:
        """The piece length, crossfade and look-ahead from the settings; the rest as above."""
        return cls(
            piece_length_s=settings.radio_piece_length_s,
            crossfade_s=settings.radio_crossfade_s,
            ahead_s=settings.radio_ahead_s,
        )


def _is_serving_down(exc: BaseException) -> bool:
    from serving.errors import ServingTimeout, ServingUnavailable

    return isinstance(exc, ServingUnavailable | ServingTimeout)


class RadioStation:
    """Compose-ahead loop over a stream, broadcast as Opus. `start()`, then `stop()` when nobody listens."""

    def __init__(
        self,
        make_piece: PieceMaker,
        mood: str,
        config: RadioConfig,
        *,
        on_event: EventSink | None = None,
        seed: int | None = None,
        key: str | None = None,
    ):
        self.make_piece = make_piece
        self.mood = mood
        self.key = (
            key or mood
        )  # its key in the hub: its recipe's (`bot.radio.recipes`), the mood for a plain one
        self.config = config
        self.on_event = on_event
        self._rng = random.Random(seed)
        self.loop = asyncio.get_running_loop()
        self.stream = RadioStream(
            crossfade_s=config.crossfade_s,
            on_start=self._started_threadsafe,
            on_drained=self._drained_threadsafe,
        )
        # on air once the first piece is ready (before, it would only encode silence and report a drain)
        self.broadcast = Broadcast(self.stream.read, name=f"radio-{self.key}")
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._first = asyncio.Event()
        self.down: BaseException | None = None  # the error while the model server is unreachable
        self.composed = 0
        self.failures = 0
        self.compose_seconds: list[float] = []
        self.audio_seconds = 0.0
        self.now_playing: Piece | None = None

    # ------------------------------------------------------------------ control

    async def start(self, wait_first: bool = True) -> None:
        """Start composing; with `wait_first`, return once the first piece is ready to play."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="radio-composer")
        if wait_first:
            waiter = asyncio.create_task(self._first.wait())
            done, _ = await asyncio.wait(
                {waiter, self._task},
                timeout=self.config.first_piece_timeout_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
            waiter.cancel()
            if self._task in done:
                self._task.result()  # the composer died: raise why
            if not self._first.is_set():
                raise TimeoutError(f"no piece composed within {self.config.first_piece_timeout_s:.0f} s")

    async def stop(self) -> None:
        """Stop composing and broadcasting (listeners still tuned here hear silence)."""
        await asyncio.to_thread(self.broadcast.stop)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        self.stream.close()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def generation_speed(self) -> float:
        """Audio seconds composed per second of composing (the headroom; > 1 keeps up)."""
        spent = sum(self.compose_seconds)
        return self.audio_seconds / spent if spent > 0 else float("inf")

    # ------------------------------------------------------------------ the compose-ahead loop

    def _needs_more(self) -> bool:
        return self.stream.queued == 0 or self.stream.remaining_s() < self.config.ahead_s

    def _retry_wait(self, backoff: float) -> float:
        """How long to wait before the next try: the backoff, but never past the audio still queued, and once
        the listeners hear silence, `retry_s` (waiting out a 30 s backoff while the channel was already silent
        and the server back cost 7.6-18 s of extra silence)."""
        return min(backoff, max(self.stream.remaining_s(), self.config.retry_s))

    async def _run(self) -> None:
        delay = self.config.retry_s
        while True:
            while not self._needs_more():
                self._wake.clear()
                # asyncio.wait, not wait_for: Python 3.11's wait_for can swallow a cancellation
                waiter = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait({waiter}, timeout=0.5)
                finally:
                    waiter.cancel()
            mood = self.mood
            seed = self._rng.randint(0, SEED_MAX)
            t0 = time.perf_counter()
            try:
                piece = await self.make_piece(mood, seed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                if self.down is None:
                    self.down = exc
                    await self._emit(
                        "down",
                        {
                            "error": exc,
                            "serving": _is_serving_down(exc),
                            "buffered_s": self.stream.remaining_s(),
                        },
                    )
                wait = self._retry_wait(delay)
                log.warning("radio: piece failed (%s: %s); retrying in %.0f s", type(exc).__name__, exc, wait)
                await asyncio.sleep(wait)
                delay = min(delay * 2, self.config.retry_max_s)
                continue
            elapsed = time.perf_counter() - t0
            delay = self.config.retry_s
            self.composed += 1
            self.compose_seconds.append(elapsed)
            self.audio_seconds += piece.seconds
            piece.mood = piece.mood or mood
            piece.seed = seed if piece.seed is None else piece.seed
            if self.down is not None:
                self.down = None
                await self._emit("up", {"buffered_s": self.stream.remaining_s()})
            self.stream.enqueue(piece)
            self._first.set()
            self.broadcast.start()

    # ------------------------------------------------------------------ events

    async def _emit(self, kind: str, data: dict[str, Any]) -> None:
        if self.on_event is None:
            return
        try:
            result = self.on_event(kind, data)
            if asyncio.iscoroutine(result):
                await result
        except Exception:
            log.exception("radio event handler failed for %s", kind)

    def _started_threadsafe(self, piece: Piece) -> None:
        def fire() -> None:
            self.now_playing = piece
            self._wake.set()
            self.loop.create_task(self._emit("now_playing", {"piece": piece}))

        with contextlib.suppress(RuntimeError):  # the loop is closing
            self.loop.call_soon_threadsafe(fire)

    def _drained_threadsafe(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(lambda: self.loop.create_task(self._emit("drained", {})))
