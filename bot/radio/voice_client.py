"""The radio's voice client: discord.py's own, with its reconnect made prompt.

When the voice websocket drops, discord.py reconnects by itself: it closes the UDP socket and opens a new one.
Its socket reader thread, though, is blocked in ``select([old socket], timeout=30)``, and closing a socket does
not wake a ``select`` waiting on it in another thread (Linux), so the new socket's IP discovery reply is not read
until that ``select`` times out: 30 s of silence after every reconnect (measured in the fake voice server: 29 s,
where the rest of the reconnect took 5 ms).

Shutting the old socket's reading side down makes it readable for good, which wakes the reader, but only once the
reader thread is scheduled. If the socket were closed before that, the new socket would usually get the same
descriptor number, and the woken ``select`` would poll that number again, find the new socket with nothing to
read, and sleep out its 30 s (1 run in 9 on a loaded machine, and once in CI). So the old socket is closed only
after the reader has been seen looking up its socket again: a fresh turn of its loop, whose ``select`` on the shut
socket returns at once.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from typing import Any

import discord
from discord.voice_state import VoiceConnectionState

log = logging.getLogger(__name__)
Socket = socket.socket  # the class's `socket` property hides the module in its annotations

# How long a disconnect waits for the reader's next turn. Once scheduled it takes microseconds; a reader that
# never comes (stopped already) costs this once, and the reconnect then goes on as discord.py's own would.
READER_TURN_TIMEOUT_S = 2.0


class PromptReconnectState(VoiceConnectionState):
    """discord.py's connection state, waking its socket reader before the socket it waits on is closed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._reader_turned = threading.Event()  # set by the reader thread each time it looks up the socket
        super().__init__(*args, **kwargs)

    @property
    def socket(self) -> Socket:
        if threading.current_thread() is getattr(self, "_socket_reader", None):
            self._reader_turned.set()
        return self._socket

    @socket.setter
    def socket(self, value: Socket) -> None:
        self._socket = value

    async def disconnect(self, *, force: bool = True, cleanup: bool = True, wait: bool = False) -> None:
        sock = self._socket
        if isinstance(sock, Socket) and sock.fileno() >= 0:
            await self._move_reader_off(sock)
        await super().disconnect(force=force, cleanup=cleanup, wait=wait)

    async def _move_reader_off(self, sock: Socket) -> None:
        """Return with the reader paused and no longer blocked in a `select` on `sock`."""
        try:
            sock.shutdown(socket.SHUT_RD)  # readable from now on: no select on it blocks again
        except OSError:
            return  # not connected: discord.py never handed it to the reader
        self._reader_turned.clear()
        reader = self._socket_reader
        # a reader waiting to be resumed is not in select, but is made to take a turn all the same
        reader.resume(force=True)
        deadline = time.monotonic() + READER_TURN_TIMEOUT_S
        while not self._reader_turned.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.002)
        reader.pause()  # what disconnect does next anyway
        if not self._reader_turned.is_set():
            log.warning(
                "voice socket reader did not turn in %.0f s; the reconnect may be slow", READER_TURN_TIMEOUT_S
            )


class RadioVoiceClient(discord.VoiceClient):
    """`discord.VoiceClient` whose reconnects after a dropped voice websocket take milliseconds, not 30 s."""

    def create_connection_state(self) -> VoiceConnectionState:
        return PromptReconnectState(self)
