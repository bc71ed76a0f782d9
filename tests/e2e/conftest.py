"""Shared e2e fixtures: a strict fake Discord on loopback and discord.py pointed at it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import discord
import pytest
import yarl

from compose.pipeline import TrackResult
from music.progress import Progress, Stage
from music.request import TrackRequest, plan_track
from music.track import TrackFiles
from tests.e2e.fake_discord import FakeDiscord
from tests.support.fake_engine import ExtendsByMaking


@pytest.fixture
async def fake_discord(monkeypatch) -> AsyncIterator[FakeDiscord]:
    """A started FakeDiscord; discord.py's API base and gateway point at it for this test only."""
    fake = FakeDiscord()
    await fake.start()
    # monkeypatch restores the real endpoints afterwards, even if the bot under test re-sets them itself.
    monkeypatch.setattr(discord.http.Route, "BASE", fake.api_base)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(fake.gateway_url))
    try:
        yield fake
    finally:
        await fake.close()
    assert not fake.self_check_problems, fake.self_check_problems
    assert not fake.gateway_problems, fake.gateway_problems  # e.g. a guild's voice on another shard


async def start_client(client: discord.Client, fake: FakeDiscord, timeout: float = 15.0) -> asyncio.Task:
    """Start ``client`` against ``fake`` in a task and wait until the gateway has identified it.

    discord.py waits ``guild_ready_timeout`` (2 s) after the last GUILD_CREATE before ``on_ready``; tests
    shorten it, since the fake sends every guild at once.
    """
    client._connection.guild_ready_timeout = 0.05
    task = asyncio.create_task(client.start(fake.token), name="discord-client")
    waiter = asyncio.create_task(fake.wait_until_connected(timeout))
    try:
        done, _ = await asyncio.wait({task, waiter}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if task in done:  # the client died while logging in (setup_hook, a refused sync...): show why
            task.result()
            raise RuntimeError("client stopped before connecting")
        if waiter not in done:
            seen = [(r.method, r.path, r.status) for r in fake.records]
            raise TimeoutError(f"client did not identify within {timeout}s; requests: {seen}")
        waiter.result()
        await asyncio.wait_for(client.wait_until_ready(), timeout)
    except BaseException:
        waiter.cancel()
        await stop_client(client, task)
        raise
    return task


async def stop_client(client: discord.Client, task: asyncio.Task) -> None:
    """Close the client and reap its task."""
    await client.close()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(task, 10)


# ---------------------------------------------------------------------------------------------- the real bot


@dataclass(frozen=True)
class Media:
    """A real tiny MP3 (1 s sine, made by ffmpeg), a real MIDI file and a real PNG."""

    mp3: Path
    midi: Path
    png: Path


def _write_midi(path: Path) -> None:
    import mido

    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(80)))
    for note in (60, 64, 67, 71):
        track.append(mido.Message("note_on", note=note, velocity=64, time=0))
        track.append(mido.Message("note_off", note=note, velocity=0, time=480))
    mid.save(path)


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> Media:
    """Made once per session: ffmpeg writes the MP3, mido the MIDI, Pillow the PNG."""
    from PIL import Image

    root = tmp_path_factory.mktemp("media")
    mp3 = root / "tiny.mp3"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=1",
            "-ac",
            "1",
            "-b:a",
            "64k",
            str(mp3),
        ],
        check=True,
        timeout=60,
    )
    midi = root / "tiny.mid"
    _write_midi(midi)
    png = root / "cover.png"
    Image.new("RGB", (64, 64), (120, 100, 180)).save(png)
    return Media(mp3, midi, png)


def is_mp3(data: bytes) -> bool:
    """An ID3 tag or an MPEG audio frame sync (11 set bits) at the start."""
    if data[:3] == b"ID3":
        size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]
        data = data[10 + size :]
    return len(data) > 2 and data[0] == 0xFF and (data[1] & 0xE0) == 0xE0


def ffprobe_format(data: bytes, tmp_path: Path) -> str:
    """What ffprobe says the bytes are (``mp3`` for an MP3)."""
    path = tmp_path / "probe.bin"
    path.write_bytes(data)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=format_name", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        timeout=60,
        text=True,
    )
    return json.loads(out.stdout)["format"]["format_name"]


class FakeComposer(ExtendsByMaking):
    """A `bot.resources.TrackMaker` (what ``compose.pipeline.Composer`` is): copies real tiny files into
    ``out_dir``, reports progress, records its calls (``extensions``: Extend's prefix and base request).

    ``gate`` (when set) holds every call until the test opens it, to fill the queue.
    """

    def __init__(self, media: Media, *, delay_s: float = 0.2) -> None:
        super().__init__()
        self.media = media
        self.delay_s = delay_s
        self.gate: asyncio.Event | None = None
        self.calls: list[TrackRequest] = []
        self.started = asyncio.Event()

    async def make_track(
        self,
        request: TrackRequest,
        out_dir: Path,
        *,
        progress: Progress | None = None,
        size_limit: int | None = None,
    ) -> TrackResult:
        self.calls.append(request)
        self.started.set()
        if progress is not None:
            progress(Stage.COMPOSING, 0.5)
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(self.delay_s)
        if progress is not None:
            progress(Stage.RENDERING)
        out_dir = Path(out_dir)
        stem = f"lofi-{request.mood}-{request.seed}"
        mp3, midi, cover = out_dir / f"{stem}.mp3", out_dir / f"{stem}.mid", out_dir / f"{stem}.png"
        for src, dst in ((self.media.mp3, mp3), (self.media.midi, midi), (self.media.png, cover)):
            shutil.copyfile(src, dst)
        files = TrackFiles(
            mp3=mp3,
            midi=midi,
            cover=cover,
            duration_s=float(request.length_s),
            bpm=80.0,
            key="A minor",
            mood=request.mood,
            seed=request.seed,
            title=f"rainy test {request.seed}",
            loudness_lufs=-14.0,
            true_peak_dbtp=-1.0,
            timings={"render": 0.01},
        )
        return TrackResult(
            files=files,
            tokens=[1, 2, 3],
            versions={"lstm": 1},
            plan=plan_track(request),
            timings={"total": 0.2},
        )


@pytest.fixture
def fake_pipeline(media) -> FakeComposer:
    return FakeComposer(media)


async def serving_stub(settings) -> Any:
    """A model server whose status cannot be read (what most tests need: one that exists)."""
    return SimpleNamespace()


ModelsFactory = Callable[[Any], Awaitable[Any]]


async def bot_resources(
    stack: contextlib.AsyncExitStack,
    settings: Any,
    composer: Any,
    models_factory: ModelsFactory = serving_stub,
    *,
    radio_worker: Any = None,
) -> Any:
    """The resources a test bot gets, closed by ``stack``: with ``composer`` None, exactly what `lofi bot`
    opens (the real engine over a gRPC client of ``settings.serving_address``); else the migrated database,
    ``composer`` (None too when ``models_factory`` raises, as when no model-server client can be made) and
    the model server's status from ``models_factory``."""
    from bot.resources import BotResources
    from lofi.cli.bot import open_database, open_resources, serving_backend

    if composer is None:
        return await open_resources(stack, settings, lambda: serving_backend(settings))
    sessionmaker = await stack.enter_async_context(open_database(settings.database_url))
    try:
        models = await models_factory(settings)
    except Exception:
        models = None
    maker = composer if models is not None else None
    return BotResources(
        sessionmaker=sessionmaker,
        composer=maker,
        radio_composer=maker,
        models=models,
        radio_worker=radio_worker,
    )


@pytest.fixture
async def start_bot(fake_discord, tmp_path) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """``await start_bot(pipeline=..., client_factory=..., retrain_command=..., **settings)``: the real LofiBot
    over ``bot_resources`` (``pipeline`` a fake composer, None for the real one; ``client_factory`` the model
    server's status), logged in to the fake, its commands synced to the fake's guild.

    The bot gets its endpoints, guild, database and output directory from its own settings object.
    """
    from bot.app import LofiBot
    from lofi.settings import Settings

    started: list[tuple[Any, asyncio.Task, contextlib.AsyncExitStack]] = []

    async def start(pipeline=None, client_factory=serving_stub, retrain_command=None, **overrides) -> Any:
        values = dict(
            discord_token=fake_discord.token,
            discord_guild_id=int(fake_discord.guild_id),
            discord_api_base=fake_discord.api_base,
            discord_gateway_url=fake_discord.gateway_url,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'lofi.sqlite3'}",
            out_dir=tmp_path / "out",
            cooldown_s=0.0,
            queue_size=4,
            workers=1,
            min_length_s=15.0,
            max_length_s=600.0,
        )
        values.update(overrides)
        settings = Settings(_env_file=None, **values)
        stack = contextlib.AsyncExitStack()
        resources = await bot_resources(stack, settings, pipeline, client_factory)
        bot = LofiBot(settings, resources, retrain_command=retrain_command)
        try:
            task = await start_client(bot, fake_discord)
        except BaseException:
            await stack.aclose()
            raise
        started.append((bot, task, stack))
        # discord_guild_id=None: synced globally, as a user-installable app has to be
        await fake_discord.wait_for("guild_commands" if settings.discord_guild_id else "commands")
        return bot

    yield start
    for bot, task, stack in reversed(started):
        await stop_client(bot, task)
        await stack.aclose()


# The radio's fixtures (fake voice server, a bot that trusts it, a tone pipeline) live with their helpers,
# which use start_client/stop_client above: imported last.
from tests.e2e.radio_helpers import fake_voice, radio_bot, tone_pipeline  # noqa: E402, F401
