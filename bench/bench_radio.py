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
"""

from __future__ import annotations

import argparse
import asyncio
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=Path, default=None)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--speed", type=float, default=4.0)
    p.add_argument("--piece", type=float, default=120.0)
    p.add_argument("--ahead", type=float, default=45.0)
    p.add_argument("--mood", default="chill")
    p.add_argument("--no-lofi", dest="lofi", action="store_false")
    args = p.parse_args()
    print(json.dumps(asyncio.run(soak(args)), indent=2))


if __name__ == "__main__":
    main()
