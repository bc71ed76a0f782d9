"""A fake Discord voice server on loopback: the voice gateway (v8) over wss, and UDP, as Discord documents them.

The real discord.py voice client connects to it after the fake main gateway (``FakeDiscord``) answers the
bot's Voice State Update (op 4) with VOICE_STATE_UPDATE and VOICE_SERVER_UPDATE naming this endpoint.

- websocket ``wss://127.0.0.1:PORT/?v=8`` (discord.py always uses wss: a self-signed certificate that only
  the test trusts, through ``client_ssl_context()``): Hello (op 8), Identify (op 0) -> Ready (op 2: ssrc, ip,
  port, modes), Heartbeat (op 3, with ``seq_ack``) -> Heartbeat ACK (op 6), Select Protocol (op 1) ->
  Session Description (op 4: mode ``aead_xchacha20_poly1305_rtpsize``, a 32-byte secret key and
  ``dave_protocol_version`` 0: no DAVE group, transport encryption alone), Speaking (op 5), Resume (op 7)
  -> Resumed (op 9). Server messages carry ``seq`` (v8's buffered resume). Anything else closes with 4001.
- UDP: IP discovery (type 1 request, 74 bytes -> type 2 response with the address and port the packet came
  from), then RTP: every packet is checked (version 2, payload type 120, the session's ssrc, the 4-byte
  incrementing nonce), decrypted with XChaCha20-Poly1305 (the 12-byte header as associated data) and its
  Opus frame decoded with libopus (discord.py's ``opus.Decoder``), so a test can inspect what a listener
  would hear: ``frames`` holds each packet's arrival time, sequence, timestamp, Opus payload and decoded PCM.

Whatever the client does wrong is recorded in ``problems`` (the test asserts it stays empty).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web

MODE = "aead_xchacha20_poly1305_rtpsize"
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux
# What Discord's voice servers offer today (the AES-GCM mode first: discord.py must pick the one it has).
OFFERED_MODES = ["aead_aes256_gcm_rtpsize", MODE]

V_IDENTIFY, V_SELECT, V_READY, V_HEARTBEAT, V_SESSION, V_SPEAKING, V_ACK, V_RESUME, V_HELLO, V_RESUMED = (
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
)


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl), valid one day: (cert, key)."""
    cert, key = folder / "voice-cert.pem", folder / "voice-key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@dataclass
class Frame:
    """One RTP packet as received: when, its header fields and the decoded 20 ms of PCM (960 x 2 int16)."""

    t: float  # time.monotonic() when this thread read it
    seq: int
    timestamp: int
    ssrc: int
    nonce: int
    pcm: np.ndarray
    arrived: float = 0.0  # when the kernel received it (SO_TIMESTAMPNS, wall clock): what a listener sees
    opus: bytes = (
        b""  # the decrypted Opus frame as sent (equal bytes: the same encoding, not just similar audio)
    )


@dataclass
class VoiceSession:
    """One voice websocket connection."""

    index: int
    identify: dict[str, Any] | None = None
    resumed: bool = False
    ssrc: int = 0
    secret_key: bytes = b""
    selected: dict[str, Any] | None = None
    speaking: list[dict[str, Any]] = field(default_factory=list)
    first_speaking: float | None = None  # when the first Speaking (op 5) arrived
    first_audio: float | None = None  # when the first RTP packet arrived
    heartbeats: int = 0
    close_code: int | None = None
    ws: web.WebSocketResponse | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)


class FakeVoice:
    """The fake voice server (see the module docstring). ``await start()``, hand ``endpoint`` out in
    VOICE_SERVER_UPDATE (FakeDiscord does, via ``issue``), read ``frames`` and ``sessions``."""

    def __init__(self, *, heartbeat_interval_ms: float = 13_750.0, dave_protocol_version: int = 0):
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.dave_protocol_version = dave_protocol_version
        self.tokens: dict[str, dict[str, str]] = {}  # token -> guild, user and session it was issued for
        self.sessions: list[VoiceSession] = []
        self.frames: list[Frame] = []
        self.problems: list[str] = []
        self.discoveries = 0
        self._lock = threading.Lock()
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-voice-")
        self._runner: web.AppRunner | None = None
        self._udp: socket.socket | None = None
        self._udp_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._decoders: dict[int, Any] = {}
        self._last_nonce: dict[int, int] = {}
        self.port = 0
        self.udp_port = 0
        self.cert: Path | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> FakeVoice:
        """Serve the websocket (TLS) and the UDP socket on free loopback ports."""
        self.cert, key = make_certificate(Path(self._tmp.name))
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(self.cert, key)
        app = web.Application()
        app.router.add_get("/", self._ws)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=server_ctx)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._udp.bind(("127.0.0.1", 0))
        # kernel receive timestamps: gaps are measured as the network delivered the packets, not as late as
        # this (test-process) thread got to read them on a busy machine
        self._udp.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._udp.settimeout(0.1)
        self.udp_port = self._udp.getsockname()[1]
        self._udp_thread = threading.Thread(target=self._udp_loop, name="fake-voice-udp", daemon=True)
        self._udp_thread.start()
        return self

    async def close(self) -> None:
        """Close every session and stop serving."""
        for s in self.sessions:
            # Discord needs a Speaking (op 5) before audio: it ties the ssrc to the user. The websocket and
            # the UDP socket are read concurrently here, so "before" is allowed 0.5 s of arrival skew.
            if s.first_audio is not None and (
                s.first_speaking is None or s.first_speaking > s.first_audio + 0.5
            ):
                self.problems.append(f"session {s.index}: audio before any Speaking (op 5)")
        for s in self.sessions:
            if s.ws is not None and not s.ws.closed:
                with contextlib.suppress(Exception):
                    await s.ws.close(code=1000)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._stop.set()
        if self._udp_thread is not None:
            self._udp_thread.join(2)
        if self._udp is not None:
            self._udp.close()
        self._tmp.cleanup()

    def client_ssl_context(self) -> ssl.SSLContext:
        """An SSL context that trusts this server's certificate (and nothing else)."""
        ctx = ssl.create_default_context(cafile=str(self.cert))
        return ctx

    @property
    def endpoint(self) -> str:
        """The VOICE_SERVER_UPDATE ``endpoint`` (host:port; discord.py adds ``wss://`` and ``/?v=8``)."""
        return f"127.0.0.1:{self.port}"

    def issue(self, guild_id: str, user_id: str, session_id: str) -> str:
        """A voice token for this guild/user/session (what VOICE_SERVER_UPDATE carries)."""
        token = secrets.token_hex(8)
        self.tokens[token] = {"server_id": guild_id, "user_id": user_id, "session_id": session_id}
        return token

    # ------------------------------------------------------------------ test-side API

    @property
    def current(self) -> VoiceSession | None:
        """The latest session that completed its handshake."""
        for s in reversed(self.sessions):
            if s.secret_key:
                return s
        return None

    async def drop(self, code: int = 4000) -> None:
        """Close the current voice websocket with `code` (a dropped connection, a crashed voice server)."""
        s = self.current
        if s is not None and s.ws is not None:
            await s.ws.close(code=code, message=b"dropped by the test")

    def frames_since(self, t: float) -> list[Frame]:
        with self._lock:
            return [f for f in self.frames if f.t >= t]

    async def wait_frames(self, n: int, *, since: float = 0.0, timeout: float = 30.0) -> list[Frame]:
        """Wait until `n` audio frames arrived after `since` (a time.monotonic() value)."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.frames_since(since)
            if len(got) >= n:
                return got
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(got)} of {n} voice frames arrived in {timeout:.0f} s")
            await asyncio.sleep(0.05)

    async def wait_session(self, count: int, timeout: float = 30.0) -> VoiceSession:
        """Wait until `count` sessions have completed the handshake; returns the latest."""
        deadline = time.monotonic() + timeout
        while True:
            done = [s for s in self.sessions if s.secret_key]
            if len(done) >= count:
                return done[-1]
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(done)} of {count} voice sessions after {timeout:.0f} s")
            await asyncio.sleep(0.05)

    # ------------------------------------------------------------------ websocket

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("v") != "8":
            return web.json_response({"message": "voice gateway version 8 only"}, status=400)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        session = VoiceSession(len(self.sessions), ws=ws)
        self.sessions.append(session)
        seq = 0

        async def send(op: int, d: Any) -> None:
            nonlocal seq
            seq += 1
            await ws.send_str(json.dumps({"op": op, "d": d, "seq": seq}))

        await send(V_HELLO, {"heartbeat_interval": self.heartbeat_interval_ms})
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    self.problems.append(f"session {session.index}: non-text frame {msg.type}")
                    await ws.close(code=4002, message=b"Failed to decode payload.")
                    break
                frame = json.loads(msg.data)
                op, d = frame.get("op"), frame.get("d") or {}
                if op == V_HEARTBEAT:
                    session.heartbeats += 1
                    if "t" not in d or "seq_ack" not in d:
                        self.problems.append(f"v8 heartbeat without t/seq_ack: {d}")
                    await ws.send_str(json.dumps({"op": V_ACK, "d": {"t": d.get("t")}}))
                elif op == V_IDENTIFY:
                    issued = self.tokens.get(str(d.get("token")))
                    expect = {k: str(d.get(k)) for k in ("server_id", "user_id", "session_id")}
                    if issued is None or issued != expect:
                        self.problems.append(f"identify with an unknown token or ids: {d}")
                        await ws.close(code=4004, message=b"Authentication failed.")
                        break
                    if not isinstance(d.get("max_dave_protocol_version"), int):
                        self.problems.append(f"identify without max_dave_protocol_version: {d}")
                    session.identify = d
                    session.ssrc = 1000 + len(self.sessions)
                    await send(
                        V_READY,
                        {
                            "ssrc": session.ssrc,
                            "ip": "127.0.0.1",
                            "port": self.udp_port,
                            "modes": OFFERED_MODES,
                            "heartbeat_interval": 1,  # deprecated field Discord still sends; ignore it
                        },
                    )
                elif op == V_SELECT:
                    data = d.get("data") or {}
                    if d.get("protocol") != "udp" or data.get("mode") not in OFFERED_MODES:
                        self.problems.append(f"bad select protocol: {d}")
                        await ws.close(code=4016, message=b"Unknown encryption mode.")
                        break
                    if data.get("mode") != MODE:
                        self.problems.append(f"unexpected mode {data.get('mode')}")
                    if data.get("address") != "127.0.0.1" or not isinstance(data.get("port"), int):
                        self.problems.append(
                            f"select protocol with an address IP discovery did not give: {data}"
                        )
                    session.selected = data
                    key = session.secret_key = secrets.token_bytes(32)
                    await send(
                        V_SESSION,
                        {
                            "mode": data["mode"],
                            "secret_key": list(key),
                            "dave_protocol_version": self.dave_protocol_version,
                            "media_session_id": secrets.token_hex(8),
                            "audio_codec": "opus",
                        },
                    )
                elif op == V_SPEAKING:
                    if d.get("ssrc") != session.ssrc:
                        self.problems.append(f"speaking with ssrc {d.get('ssrc')} != {session.ssrc}")
                    session.speaking.append(d)
                    if session.first_speaking is None:
                        session.first_speaking = time.monotonic()
                elif op == V_RESUME:
                    issued = self.tokens.get(str(d.get("token")))
                    if issued is None or issued["session_id"] != str(d.get("session_id")):
                        await ws.close(code=4006, message=b"Session is no longer valid.")
                        break
                    prev = self.current
                    session.resumed = True
                    if prev is not None:
                        session.ssrc, session.secret_key, session.selected = (
                            prev.ssrc,
                            prev.secret_key,
                            prev.selected,
                        )
                    await send(V_RESUMED, None)
                else:
                    self.problems.append(f"unknown voice opcode {op}: {d}")
                    await ws.close(code=4001, message=b"Unknown opcode.")
                    break
        finally:
            session.close_code = ws.close_code
            session.closed.set()
        return ws

    # ------------------------------------------------------------------ UDP

    def _session_by_ssrc(self, ssrc: int) -> VoiceSession | None:
        for s in reversed(self.sessions):
            if s.ssrc == ssrc and s.secret_key:
                return s
        return None

    def _udp_loop(self) -> None:
        import discord.opus
        import nacl.bindings

        assert self._udp is not None
        while not self._stop.is_set():
            try:
                data, anc, _flags, addr = self._udp.recvmsg(4096, 1024)
            except (TimeoutError, OSError):
                continue
            now = time.monotonic()
            arrived = time.time()
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                    sec, nsec = struct.unpack("qq", value[:16])
                    arrived = sec + nsec / 1e9
            if len(data) == 74 and data[:2] == b"\x00\x01":
                length, ssrc = struct.unpack_from(">HI", data, 2)
                if length != 70:
                    self.problems.append(f"IP discovery with length {length}")
                reply = bytearray(74)
                struct.pack_into(">HHI", reply, 0, 2, 70, ssrc)
                ip = addr[0].encode()
                reply[8 : 8 + len(ip)] = ip
                struct.pack_into(">H", reply, 72, addr[1])
                self._udp.sendto(bytes(reply), addr)
                self.discoveries += 1
                continue
            if len(data) < 12 + 16 + 4:
                self.problems.append(f"short UDP packet ({len(data)} bytes)")
                continue
            header = data[:12]
            if header[0] != 0x80 or header[1] != 0x78:
                self.problems.append(f"not an RTP voice packet: {header[:2].hex()}")
                continue
            seq, ts, ssrc = struct.unpack_from(">HII", header, 2)
            session = self._session_by_ssrc(ssrc)
            if session is None:
                self.problems.append(f"RTP from unknown ssrc {ssrc}")
                continue
            if session.first_audio is None:
                session.first_audio = now
            nonce4 = data[-4:]
            nonce = nonce4 + bytes(20)
            try:
                opus = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
                    data[12:-4], header, nonce, session.secret_key
                )
            except Exception as exc:
                self.problems.append(f"RTP packet {seq} does not decrypt: {exc}")
                continue
            n = struct.unpack(">I", nonce4)[0]
            last = self._last_nonce.get(ssrc)
            if last is not None and n <= last:
                self.problems.append(f"nonce reused or going back: {n} after {last}")
            self._last_nonce[ssrc] = n
            decoder = self._decoders.get(ssrc)
            if decoder is None:
                decoder = self._decoders[ssrc] = discord.opus.Decoder()
            try:
                pcm = decoder.decode(opus, fec=False)
            except Exception as exc:
                self.problems.append(f"RTP packet {seq}: Opus does not decode: {exc}")
                continue
            samples = np.frombuffer(pcm, dtype=np.int16).reshape(-1, 2)
            with self._lock:
                self.frames.append(Frame(now, seq, ts, ssrc, n, samples, arrived, opus))


# ---------------------------------------------------------------------------------------------- listening


def max_gap_ms(frames: list[Frame]) -> float:
    """The longest time between consecutive packets as they arrived, in milliseconds."""
    if len(frames) < 2:
        return 0.0
    t = np.array([f.arrived for f in frames])
    return float(np.max(np.diff(t)) * 1000.0)


def audio_of(frames: list[Frame]) -> np.ndarray:
    """The frames' PCM joined (n, 2) int16."""
    return np.concatenate([f.pcm for f in frames]) if frames else np.zeros((0, 2), np.int16)


def rms_dbfs(pcm: np.ndarray) -> float:
    """RMS level of int16 PCM in dBFS."""
    x = pcm.astype(np.float64) / 32768.0
    r = float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0
    return 20 * np.log10(r) if r > 0 else -np.inf


def dominant_hz(pcm: np.ndarray, sample_rate: int = 48_000) -> float:
    """The strongest frequency of the (mono-mixed) PCM."""
    x = pcm.astype(np.float64).mean(axis=1)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum[1:]) + 1) * sample_rate / len(x)
