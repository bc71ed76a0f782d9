"""Fixtures and helpers for the radio's end-to-end tests: the fake voice server, a bot that trusts its
certificate, and a tone pipeline whose pieces a listener can tell apart by pitch."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from compose.pipeline import TrackResult
from music.progress import Progress
from music.request import TrackRequest, plan_track
from music.track import TrackFiles
from tests.e2e.conftest import bot_resources, serving_stub, start_client, stop_client
from tests.e2e.fake_voice import FakeVoice
from tests.e2e.tones import write_tone
from tests.support.fake_engine import ExtendsByMaking

TONES = {"rainy": 220.0, "sunny": 440.0, "night": 330.0}


def tone_hz(request: TrackRequest) -> float:
    """The pitch of a request's tone: its mood's, or for an asked tempo 5 Hz a beat per minute (a custom
    station's pieces, e.g. 100 bpm at 500 Hz, stand apart from every mood's)."""
    if request.bpm is not None:
        return 5.0 * request.bpm
    return TONES.get(request.mood, 275.0)


class ToneComposer(ExtendsByMaking):
    """A `bot.resources.TrackMaker`: writes a real MP3 (pedalboard, 44.1 kHz like the real chain) of a sine
    whose pitch names the mood (or the asked tempo: `tone_hz`), a real MIDI and a cover, in `executor` (the engine's render executor; the
    radio's worker process in these tests). `down = True` makes it fail like an unreachable model server;
    `delay_s` is the composing time."""

    def __init__(self, media, *, delay_s: float = 0.05, executor: Executor | None = None):
        super().__init__()
        self.media = media
        self.delay_s = delay_s
        self.executor = executor
        self.down = False
        self.calls: list[TrackRequest] = []
        self.failures = 0

    async def make_track(
        self,
        request: TrackRequest,
        out_dir: Path,
        *,
        progress: Progress | None = None,
        size_limit: int | None = None,
    ) -> TrackResult:
        from serving.errors import ServingUnavailable

        self.calls.append(request)
        await asyncio.sleep(self.delay_s)
        if self.down:
            self.failures += 1
            raise ServingUnavailable("model server unreachable (test)")
        out_dir = Path(out_dir)
        stem = f"tone-{request.mood}-{request.seed}"
        mp3 = out_dir / f"{stem}.mp3"
        await asyncio.get_running_loop().run_in_executor(
            self.executor, write_tone, mp3, tone_hz(request), request.length_s
        )
        midi, cover = out_dir / f"{stem}.mid", out_dir / f"{stem}.png"
        shutil.copyfile(self.media.midi, midi)
        shutil.copyfile(self.media.png, cover)
        files = TrackFiles(
            mp3=mp3,
            midi=midi,
            cover=cover,
            duration_s=float(request.length_s),
            bpm=request.bpm or 84.0,  # the asked tempo and key, as the real pipeline keeps them
            key=request.key or "A minor",
            mood=request.mood,
            seed=request.seed,
            title=f"tone {request.mood} {request.seed}",
            loudness_lufs=-14.0,
            true_peak_dbtp=-1.0,
            timings={},
        )
        return TrackResult(files=files, tokens=[1, 2, 3], versions={"tone": 1}, plan=plan_track(request))


@pytest.fixture
async def fake_voice(fake_discord) -> AsyncIterator[FakeVoice]:
    """A started fake voice server that the fake main gateway hands out."""
    voice = await FakeVoice().start()
    fake_discord.voice = voice
    try:
        yield voice
    finally:
        await voice.close()
    assert not voice.problems, voice.problems[:10]


@pytest.fixture
def tone_pipeline(media) -> ToneComposer:
    return ToneComposer(media)


def listener_in_voice(fake_discord) -> dict[str, Any]:
    """Put the default user in the voice channel (before the bot starts: GUILD_CREATE lists it)."""
    user = fake_discord.default_user
    fake_discord.voice_states[user["id"]] = {
        "channel_id": fake_discord.voice_channel_id,
        "user_id": user["id"],
        "session_id": "listener-session",
    }
    return user


@pytest.fixture
async def radio_bot(fake_discord, fake_voice, tmp_path) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """``await radio_bot(pipeline, radio=RadioConfig(...), **settings)``: the real LofiBot whose HTTP session
    trusts the fake voice server's certificate, with the radio's real worker process (``pipeline`` a fake
    composer, None for the real one). Several calls share one database (a restart)."""
    from bot.app import LofiBot
    from bot.radio.worker import RenderWorker
    from lofi.settings import Settings

    started: list[tuple[Any, asyncio.Task, contextlib.AsyncExitStack]] = []

    async def start(pipeline, radio=None, client_factory=serving_stub, **overrides) -> Any:
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
            min_length_s=1.0,
        )
        values.update(overrides)
        settings = Settings(_env_file=None, **values)
        connector = aiohttp.TCPConnector(limit=0, ssl=fake_voice.client_ssl_context())
        stack = contextlib.AsyncExitStack()
        worker = RenderWorker()
        stack.callback(worker.shutdown, wait=False, cancel_futures=True)
        if isinstance(pipeline, ToneComposer) and pipeline.executor is None:
            pipeline.executor = worker  # the radio's engine renders in its worker, as `lofi bot` sets it up
        resources = await bot_resources(stack, settings, pipeline, client_factory, radio_worker=worker)
        bot = LofiBot(settings, resources, radio_config=radio, connector=connector)
        before = len(fake_discord.find("guild_commands"))
        try:
            task = await start_client(bot, fake_discord)
        except BaseException:
            await stack.aclose()
            raise
        started.append((bot, task, stack))
        await fake_discord.wait_for("guild_commands", count=before + 1)
        return bot

    async def stop(bot) -> None:
        for i, (b, task, stack) in enumerate(started):
            if b is bot:
                started.pop(i)
                await stop_client(b, task)
                await stack.aclose()
                return

    start.stop = stop  # type: ignore[attr-defined]
    yield start
    for bot, task, stack in reversed(started):
        await stop_client(bot, task)
        await stack.aclose()


async def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Poll `predicate` every 50 ms until true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.0f} s")
        await asyncio.sleep(0.05)
