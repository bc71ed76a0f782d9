"""Radio soak benchmark; prints JSON.

Plays `--minutes` of the radio (default 10) faster than real time: a consumer reads the stream's 20 ms frames
at `--speed` x real time (default 4x, so 10 minutes take 2.5) while the station composes ahead with the real
`/lofi` pipeline (generation in this process, render + decoding in the radio's low-priority worker process,
as in the bot). With `--lofi` (default on), `/lofi` requests (2-minute tracks) run back to back meanwhile,
through the same pipeline in the bot's render thread, as when users ask for tracks while the radio plays.

Reports underruns (silent frames substituted because nothing was composed in time; goal 0) and the
generation headroom: audio seconds composed per second of composing (goal >= 5x with `/lofi` running) and per
second of wall clock. A consumer at `--speed` x needs a headroom above `--speed` to stay ahead.

Members: `--models DIR` (a trained ensemble, TF Serving layout) when given, else tiny stand-ins (the JSON
says which; tiny members sample near-random tokens, so their bars hit the token cap: slower than trained).

    .venv/bin/python bench/bench_radio.py [--models models] [--minutes 10] [--speed 4] [--piece 120] [--no-lofi]

With `--broadcast`: the CPU of one broadcast station heard by 1 and then 3 guilds, each through the real bot and
discord.py voice client to the fake voice server (tests/e2e), `--seconds` of real-time audio each (pieces from
the tests' tone composer, so the figures are the audio path's: mixing, Opus encoding, sending).

    .venv/bin/python bench/bench_radio.py --broadcast [--seconds 60]

With `--transitions N`: the level at each radio transition. N+1 pieces (`--piece` s each, of each `--mood`:
a comma-separated list) made by the real pipeline (`--models`), once as `/lofi` tracks (intro, outro, fades,
the last chord ringing: the radio before seamless pieces) and once as radio pieces (`TrackRequest(radio=True)`), each set played through
`RadioStream` with its 4 s crossfade; per transition, the quietest 400 ms window over the crossfade (and a
second either side) against the median of the 10 s of music around it (`tests/support/radio_levels.py`), and
the same in 1 s and 3 s windows (EBU R 128's short-term); beside each, the same measure at the middle of each
piece, where no transition is: the music's own dips (400 ms windows catch the gaps between chords).

    .venv/bin/python bench/bench_radio.py --transitions 5 --models models --piece 60 --mood chill,rainy
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.radio.audio import load_pcm  # noqa: E402
from bot.radio.station import RadioConfig, RadioStation  # noqa: E402
from bot.radio.stream import FRAME_SAMPLES, SAMPLE_RATE, Piece  # noqa: E402
from bot.radio.worker import RenderWorker  # noqa: E402


async def soak(args: argparse.Namespace) -> dict:
    from serving.local import open_local_backend

    tmp = Path(tempfile.mkdtemp(prefix="bench-radio-"))
    models, which = args.models, "given"
    if models is None:
        from tests.support.tiny_models import make_tiny_models

        models, which = tmp / "models", "tiny stand-ins"
        make_tiny_models(models, members=2, seed=0, version=1)
    async with open_local_backend(Path(models)) as backend:  # as `lofi generate` and the bot compose
        return await play(args, backend, tmp, which)


async def play(args: argparse.Namespace, backend, tmp: Path, which: str) -> dict:
    """The soak itself, over `backend`."""
    from compose.pipeline import Composer
    from music.request import TrackRequest

    worker = RenderWorker()
    composer = Composer(backend, executor=worker)
    loop = asyncio.get_running_loop()
    n = 0

    async def make_piece(mood: str, seed: int) -> Piece:
        nonlocal n
        n += 1
        request = TrackRequest(length_s=args.piece, mood=mood, seed=seed)
        result = await composer.make_track(request, tmp / f"radio-{n}")
        pcm = await loop.run_in_executor(worker, load_pcm, Path(result.files.mp3))
        return Piece(pcm, {"mood": mood, "seed": seed})

    config = RadioConfig(piece_length_s=args.piece, crossfade_s=4.0, ahead_s=args.ahead)
    station = RadioStation(make_piece, args.mood, config, seed=1)
    lofi_done, lofi_seconds = 0, 0.0
    stop = asyncio.Event()

    async def lofi_requests() -> None:
        nonlocal lofi_done, lofi_seconds
        render = ThreadPoolExecutor(1, thread_name_prefix="lofi-render")
        lofi = Composer(backend, executor=render)  # the bot's /lofi engine renders on its own pool
        i = 0
        while not stop.is_set():
            i += 1
            t = time.perf_counter()
            await lofi.make_track(TrackRequest(120.0, "chill", 1000 + i), tmp / f"lofi-{i}")
            lofi_done += 1
            lofi_seconds += time.perf_counter() - t
        await lofi.close()
        render.shutdown(wait=False)

    t0 = time.perf_counter()
    await station.start(wait_first=True)
    # the soak reads the mix itself, faster than real time: the station's real-time broadcast stays off
    station.broadcast.stop()
    first_piece_s = time.perf_counter() - t0
    lofi_task = asyncio.create_task(lofi_requests()) if args.lofi else None
    frames_total = int(args.minutes * 60 * SAMPLE_RATE / FRAME_SAMPLES)
    tick = FRAME_SAMPLES / SAMPLE_RATE / args.speed
    t_play = time.perf_counter()
    for i in range(frames_total):
        station.stream.read()
        lag = t_play + (i + 1) * tick - time.perf_counter()
        await asyncio.sleep(max(0.0, lag))  # also lets the composer run
    wall = time.perf_counter() - t_play
    stop.set()
    await station.stop()
    if lofi_task is not None:
        lofi_task.cancel()
        await asyncio.gather(lofi_task, return_exceptions=True)
    worker.shutdown(wait=False, cancel_futures=True)
    return {
        "members": which,
        "minutes_played": args.minutes,
        "speed": args.speed,
        "piece_s": args.piece,
        "wall_s": round(wall, 1),
        "first_piece_s": round(first_piece_s, 2),
        "underrun_frames": station.stream.underruns,
        "underrun_s": round(station.stream.underruns * FRAME_SAMPLES / SAMPLE_RATE, 2),
        "pieces_composed": station.composed,
        "pieces_played": station.stream.pieces_started,
        "failures": station.failures,
        "compose_s_median": round(sorted(station.compose_seconds)[len(station.compose_seconds) // 2], 2)
        if station.compose_seconds
        else None,
        "headroom_composing": round(station.generation_speed(), 2),
        "audio_s_per_wall_s": round(station.audio_seconds / (time.perf_counter() - t0), 2),
        "lofi_tracks_meanwhile": lofi_done,
        "lofi_track_s_mean": round(lofi_seconds / lofi_done, 2) if lofi_done else None,
        "goal": {"underrun_frames": 0, "headroom_composing_min": 5.0},
    }


# ---------------------------------------------------------------------------------------------- broadcast cost


def thread_cpu(match) -> float:
    """CPU seconds so far of the live threads `match(thread)` accepts (their own clocks: exact per thread)."""
    import threading

    total = 0.0
    for t in threading.enumerate():
        if t.ident is not None and match(t):
            with contextlib.suppress(OSError):  # ended meanwhile
                total += time.clock_gettime(time.pthread_getcpuclockid(t.ident))
    return total


async def broadcast_cost(args: argparse.Namespace) -> dict:
    """CPU of 1 and then 3 guilds listening to one station, each through the real discord.py voice client to
    the fake voice server (as in tests/e2e/test_radio_broadcast_e2e.py), `--seconds` of audio each."""
    runs = {str(n): await listen(n, args.seconds) for n in (1, 3)}
    one, three = runs["1"], runs["3"]
    per_added = (three["audio_path_cpu_s_per_audio_min"] - one["audio_path_cpu_s_per_audio_min"]) / 2
    return {
        "what": "CPU-seconds per minute of audio streamed: one station, 1 vs 3 guilds, fake voice server",
        "runs": runs,
        "audio_path_cpu_s_per_audio_min_per_added_guild": round(per_added, 3),
        "ratio_3_to_1": round(
            three["audio_path_cpu_s_per_audio_min"] / one["audio_path_cpu_s_per_audio_min"], 2
        ),
    }


async def listen(n: int, seconds: float) -> dict:
    """One run: the real bot in `n` guilds of the fake Discord, every guild tuned to the same station."""
    import aiohttp
    import discord
    import yarl
    from discord.player import AudioPlayer

    from bot.app import LofiBot
    from lofi.settings import Settings
    from tests.e2e.conftest import Media, _write_midi, bot_resources, serving_stub, start_client, stop_client
    from tests.e2e.fake_discord import FakeDiscord
    from tests.e2e.fake_voice import FakeVoice
    from tests.e2e.radio_helpers import ToneComposer

    tmp = Path(tempfile.mkdtemp(prefix="bench-broadcast-"))
    _write_midi(tmp / "m.mid")
    from PIL import Image

    Image.new("RGB", (64, 64)).save(tmp / "c.png")
    fake = await FakeDiscord().start()
    voice = await FakeVoice().start()
    fake.voice = voice
    discord.http.Route.BASE = fake.api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    guilds = [fake.guild()] + [fake.add_guild(int(fake.guild_id) + (i << 22)) for i in range(1, n)]
    for i, g in enumerate(guilds):
        user = fake.make_user(1_100_000_000_000_004_000 + i, f"listener{i}")
        g.voice_states[user["id"]] = {
            "channel_id": g.voice_channel_id,
            "user_id": user["id"],
            "session_id": f"l{i}",
        }
    settings = Settings(
        _env_file=None,
        discord_token=fake.token,
        discord_guild_id=int(fake.guild_id),
        discord_api_base=fake.api_base,
        discord_gateway_url=fake.gateway_url,
        database_url=f"sqlite+aiosqlite:///{tmp / 'lofi.sqlite3'}",
        out_dir=tmp / "out",
    )
    stack = contextlib.AsyncExitStack()
    worker = RenderWorker()
    stack.callback(worker.shutdown, wait=False, cancel_futures=True)
    composer = ToneComposer(Media(tmp / "none.mp3", tmp / "m.mid", tmp / "c.png"), executor=worker)
    resources = await bot_resources(stack, settings, composer, serving_stub, radio_worker=worker)
    config = RadioConfig(piece_length_s=30.0, crossfade_s=4.0, ahead_s=40.0, empty_grace_s=3600.0)
    connector = aiohttp.TCPConnector(limit=0, ssl=voice.client_ssl_context())
    bot = LofiBot(settings, resources, radio_config=config, connector=connector)
    task = await start_client(bot, fake)
    try:
        for g in guilds:
            guild = bot.get_guild(int(g.id))
            await bot.radio.start(
                guild, guild.get_channel(int(g.voice_channel_id)), int(g.channel_id), "rainy"
            )
        await voice.wait_session(n)
        await voice.wait_frames(50 * n, since=time.monotonic())  # every player is streaming
        return await measure(bot, voice, n, seconds, AudioPlayer, composer)
    finally:
        await stop_client(bot, task)
        await stack.aclose()
        await voice.close()
        await fake.close()


async def measure(bot, voice, n: int, seconds: float, player_class, composer) -> dict:
    """CPU of the station's broadcast thread and of the guilds' voice players over `seconds` of audio."""
    import threading

    def is_station(t: threading.Thread) -> bool:
        return t.name.startswith("radio-")

    def is_player(t: threading.Thread) -> bool:
        return isinstance(t, player_class)

    not_fakes = lambda t: t.name != "fake-voice-udp"  # noqa: E731 (the fake server's decoding is not the bot's)
    before = (
        thread_cpu(is_station),
        thread_cpu(is_player),
        time.process_time() - thread_cpu(lambda t: not not_fakes(t)),
    )
    calls0, t0 = len(composer.calls), time.monotonic()
    await asyncio.sleep(seconds)
    after = (
        thread_cpu(is_station),
        thread_cpu(is_player),
        time.process_time() - thread_cpu(lambda t: not not_fakes(t)),
    )
    minutes = (time.monotonic() - t0) / 60
    station, players, process = (round((b - a) / minutes, 3) for a, b in zip(before, after, strict=True))
    frames = voice.frames_since(t0)
    return {
        "guilds": n,
        "stations_on_air": len(bot.radio.hub.stations),
        "audio_min": round(minutes, 2),
        "frames_received": len(frames),
        "station_thread_cpu_s_per_audio_min": station,  # mixing + the one Opus encoding
        "voice_players_cpu_s_per_audio_min": players,  # every guild: read the ring, encrypt, send
        "audio_path_cpu_s_per_audio_min": round(station + players, 3),
        "process_cpu_s_per_audio_min_less_fake_voice": process,
        "pieces_composed_meanwhile": len(composer.calls) - calls0,
    }


def dip_summary(audio, regions: list[tuple[int, int]], window_s: float) -> dict:
    """The dips at each transition in `window_s` windows, and the same measure at the middle of each piece
    (`mid_piece_regions`: how far the music dips by itself, the gaps between its chords and phrases)."""
    from tests.support.radio_levels import mid_piece_regions, transition_dips

    dips = transition_dips(audio, regions, window_s)
    control = [d["dip_db"] for d in transition_dips(audio, mid_piece_regions(regions), window_s)]
    return {
        "transitions": dips,
        "worst_dip_db": max(d["dip_db"] for d in dips),
        "mean_dip_db": round(sum(d["dip_db"] for d in dips) / len(dips), 2),
        "within_3_db": f"{sum(d['dip_db'] <= 3.0 for d in dips)} of {len(dips)}",
        "mid_piece_dips_db": control,
        "mid_piece_mean_dip_db": round(sum(control) / len(control), 2),
    }


async def transitions(args: argparse.Namespace) -> dict:
    """The dips at `args.transitions` transitions, pieces made as `/lofi` tracks and as radio pieces."""
    from compose.pipeline import Composer
    from music.request import TrackRequest, plan_track
    from serving.local import open_local_backend
    from tests.support.radio_levels import SHORT_TERM_S, WINDOW_S, play_through

    tmp = Path(tempfile.mkdtemp(prefix="bench-radio-dips-"))
    out: dict = {"piece_s": args.piece, "models": str(args.models), "crossfade_s": 4.0, "moods": {}}
    async with open_local_backend(Path(args.models)) as backend:
        composer = Composer(backend)
        for mood in args.mood.split(","):
            for name, radio in (("before", False), ("after", True)):
                t0 = time.perf_counter()

                async def piece(seed: int, mood: str = mood, radio: bool = radio, name: str = name) -> Piece:
                    request = TrackRequest(length_s=args.piece, mood=mood, seed=seed, radio=radio)
                    made = await composer.make_track(request, tmp / f"{mood}-{name}-{seed}")
                    pcm = load_pcm(Path(made.files.mp3))
                    bar_s = pcm.shape[0] / SAMPLE_RATE / plan_track(request).n_bars if radio else None
                    return Piece(pcm, mood=mood, seed=seed, bar_s=bar_s)

                # composed together, as the station's look-ahead and the shared batch would
                pieces = list(await asyncio.gather(*(piece(s) for s in range(1, args.transitions + 2))))
                audio, regions = play_through(pieces)
                out["moods"].setdefault(mood, {})[name] = {
                    "radio_pieces": radio,
                    "piece_seconds": [round(p.seconds, 2) for p in pieces],
                    "compose_s": round(time.perf_counter() - t0, 1),
                    **{
                        f"window_{w}_s": dip_summary(audio, regions, w) for w in (WINDOW_S, 1.0, SHORT_TERM_S)
                    },
                }
        await composer.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=Path, default=None)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--speed", type=float, default=4.0)
    p.add_argument("--piece", type=float, default=120.0)
    p.add_argument("--ahead", type=float, default=45.0)
    p.add_argument("--mood", default="chill")
    p.add_argument("--no-lofi", dest="lofi", action="store_false")
    p.add_argument("--broadcast", action="store_true", help="measure 1 vs 3 guilds on one station instead")
    p.add_argument("--seconds", type=float, default=60.0, help="audio streamed per run with --broadcast")
    p.add_argument(
        "--transitions", type=int, default=0, help="measure the level dip at N transitions instead"
    )
    args = p.parse_args()
    mode = soak
    if args.transitions:
        mode = transitions
    elif args.broadcast:
        mode = broadcast_cost
    print(json.dumps(asyncio.run(mode(args)), indent=2))


if __name__ == "__main__":
    main()
