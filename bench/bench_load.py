"""Load benchmark: simultaneous `/lofi` requests through the bot's own service layer; prints JSON.

Drives what the `/lofi` cog does for each request, without Discord: `JobQueue.check` -> `TrackService.create`
-> `JobQueue.submit` -> `TrackService.run` (the real `compose.pipeline.Composer`: shared generation on the
embedded model server's store called directly, as the bot does, or over gRPC with --grpc or --serving;
rendering in a pool sized to the cores) -> `set_message` (a stand-in message id),
on a real SQLite database. A refused request gets the queue's own message. Afterwards the database is audited:
every accepted request must be posted (done, with a message) or marked failed.

    .venv/bin/python bench/bench_load.py --models /tmp/q1 [--users 8 32] [--length 120]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import add_backend_arguments, load_average  # noqa: E402
from lofi.malloc import keep_freed_memory  # noqa: E402  (as the lofi command does)

keep_freed_memory()


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


async def scenario(users: int, length: float, client, settings, tmp: Path, queue_size: int, workers: int):
    from bot.app import render_pool_size
    from bot.errors import BotError
    from bot.queue import JobQueue
    from bot.services import Requester, TrackService
    from compose.pipeline import Composer
    from db import repository as repo
    from db.engine import make_engine, make_sessionmaker, upgrade_engine
    from db.models import Track, TrackStatus
    from music.request import TrackRequest

    engine = make_engine(f"sqlite+aiosqlite:///{tmp / f'load-{users}.sqlite3'}")
    await upgrade_engine(engine)
    sm = make_sessionmaker(engine)
    pool = ThreadPoolExecutor(render_pool_size(settings.render_workers), thread_name_prefix="lofi-render")
    composer = Composer(client, settings.render_config(), executor=pool)
    svc = TrackService(sm, composer, tmp / f"out-{users}")
    queue = JobQueue(maxsize=queue_size, workers=workers, cooldown_s=settings.cooldown_s)
    queue.start()
    moods = ["rainy", "sunny", "chill", "night", "study", "nostalgic"]
    batches_before = len(composer.loop.batch_sizes)

    async def one(i: int) -> dict:
        request = TrackRequest(length, moods[i % len(moods)], 1000 + i)
        t0 = time.perf_counter()
        stages: list[str] = []

        def progress(stage, *rest, **_):
            if not stages or stages[-1] != str(stage):
                stages.append(str(stage))

        try:
            queue.check(user_id=i)
        except BotError as exc:
            return {"user": i, "accepted": False, "refusal": str(exc)}
        track_id = await svc.create(request, Requester(i, f"user{i}", 1, 2))
        try:
            job = queue.submit(
                i,
                lambda: svc.run(track_id, request, size_limit=settings.upload_limit_bytes, progress=progress),
            )
        except BotError as exc:
            await svc.fail(track_id, "refused by the queue")
            return {"user": i, "accepted": False, "refusal": str(exc), "track_id": track_id}
        try:
            info = await job
        except Exception as exc:
            return {"user": i, "accepted": True, "ok": False, "error": repr(exc), "track_id": track_id}
        await svc.set_message(track_id, message_id=10_000 + track_id, channel_id=2, guild_id=1)
        return {
            "user": i,
            "accepted": True,
            "ok": True,
            "track_id": track_id,
            "latency_s": round(time.perf_counter() - t0, 2),
            "duration_s": round(info.length_s, 3),
            "mp3_bytes": info.mp3.stat().st_size,
            "stages": stages,
        }

    load_before = load_average()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    rows = await asyncio.gather(*(one(i) for i in range(users)))
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    await queue.stop()
    await composer.close()
    pool.shutdown(wait=True)

    async with sm() as s:
        audit = []
        for r in rows:
            if "track_id" not in r:
                continue
            t = await repo.get_track(s, r["track_id"])
            audit.append(
                {
                    "track_id": t.id,
                    "status": t.status.value,
                    "posted": t.message_id is not None,
                    "accepted": r["accepted"],
                }
            )
        from sqlalchemy import func, select

        total = (await s.execute(select(func.count()).select_from(Track))).scalar_one()
    await engine.dispose()
    accepted = [r for r in rows if r["accepted"]]
    done = [r for r in accepted if r.get("ok")]
    lat = [r["latency_s"] for r in done]
    lost = [
        a
        for a in audit
        if a["accepted"]
        and not ((a["status"] == TrackStatus.done.value and a["posted"]) or a["status"] == "failed")
    ]
    sizes = composer.loop.batch_sizes[batches_before:]
    return {
        "users": users,
        "length_s": length,
        "queue_size": queue_size,
        "workers": workers,
        "render_pool": render_pool_size(settings.render_workers),
        "accepted": len(accepted),
        "refused": users - len(accepted),
        "refusal_messages": sorted({r["refusal"] for r in rows if not r["accepted"]}),
        "finished": len(done),
        "failed": len(accepted) - len(done),
        "all_finished_s": round(wall, 2),
        "latency_p50_s": round(percentile(lat, 0.5), 2) if lat else None,
        "latency_p95_s": round(percentile(lat, 0.95), 2) if lat else None,
        "latency_max_s": max(lat) if lat else None,
        "median_mp3_bytes": int(statistics.median(r["mp3_bytes"] for r in done)) if done else None,
        "durations_s": sorted({r["duration_s"] for r in done}),
        "stages_seen": sorted({" > ".join(r["stages"]) for r in done}),
        "generation_batch_rows_max": max(sizes) if sizes else 0,
        "generation_steps": len(sizes),
        "db_tracks": total,
        "db_lost": len(lost),
        "main_process_cpu_s": round(cpu, 2),
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }


async def run(args) -> dict:
    from lofi.model_server import one_shot_backend
    from lofi.settings import get_settings

    settings = get_settings()
    out = {"benchmark": "load", "cpus": os.cpu_count(), "scenarios": []}
    # every batch size compiled before the first request, as the bot's own server does
    async with one_shot_backend(
        args.serving, Path(args.models), 60.0, local=not args.grpc, warmup_batch_sizes=None
    ) as client:
        out["backend"] = type(client).__name__  # LocalBackend (the bot's embedded path) or ServingClient
        with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
            for users in args.users:
                out["scenarios"].append(
                    await scenario(
                        users,
                        args.length,
                        client,
                        settings,
                        Path(tmp),
                        args.queue_size or settings.queue_size,
                        args.workers or settings.workers,
                    )
                )
    return out


def main() -> None:
    """Run the benchmark and print the JSON report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_backend_arguments(ap)
    ap.add_argument("--users", nargs="+", type=int, default=[8, 32])
    ap.add_argument("--length", type=float, default=120.0)
    ap.add_argument("--queue-size", type=int, default=0, help="default: the settings' QUEUE_SIZE")
    ap.add_argument("--workers", type=int, default=0, help="default: the settings' WORKERS")
    print(json.dumps(asyncio.run(run(ap.parse_args())), indent=2))


if __name__ == "__main__":
    main()
