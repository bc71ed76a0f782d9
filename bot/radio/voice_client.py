"""The radio's voice client: discord.py's own, with its reconnect made prompt.

When the voice websocket drops, discord.py reconnects by itself: it closes the UDP socket and opens a new one.
Its socket reader thread, though, is blocked in ``select([old socket], timeout=30)``, and closing a socket does
not wake a ``select`` waiting on it in another thread (Linux), so the new socket's IP discovery reply is not read
until that ``select`` times out: 30 s of silence after every reconnect (measured in the fake voice server: 29 s,
where the rest of the reconnect took 5 ms). Shutting the old socket's reading side down first wakes the reader at
once (``select`` reports it readable, ``recv`` returns nothing) after it has been paused, so it then waits for the
new socket instead of spinning on the old one.
"""

from __future__ import annotations

import contextlib
import socket

import discord
from discord.voice_state import VoiceConnectionState


class PromptReconnectState(VoiceConnectionState):
    """discord.py's connection state, waking its socket reader before the socket it waits on is closed."""

    async def disconnect(self, *, force: bool = True, cleanup: bool = True, wait: bool = False) -> None:
        sock = self.socket
        if sock is not None and sock.fileno() >= 0:
            self._socket_reader.pause()  # what disconnect does anyway, before the wake-up rather than after
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RD)
        await super().disconnect(force=force, cleanup=cleanup, wait=wait)


class RadioVoiceClient(discord.VoiceClient):
    """`discord.VoiceClient` whose reconnects after a dropped voice websocket take milliseconds, not 30 s."""

    def create_connection_state(self) -> VoiceConnectionState:
        return PromptReconnectState(self)
