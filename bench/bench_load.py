"""Load benchmark: simultaneous `/lofi` requests through the bot's own service layer; prints JSON.

Drives what the `/lofi` cog does for each request, without Discord: `JobQueue.check` -> `TrackService.create`
-> `JobQueue.submit` -> `TrackService.run` (the real `compose.pipeline.Composer`: shared generation on the
embedded model server's store called directly, as the bot does, or over gRPC with --grpc or --serving;
rendering in a pool sized to the cores) -> `set_message` (a stand-in message id),
on a real SQLite database. A refused request gets the queue's own message. Afterwards the database is audited:
every accepted request must be posted (done, with a message) or marked failed.

    .venv/bin/python bench/bench_load.py --models /tmp/q1 [--users 8 32] [--length 120]

With --cluster-workers 1 2 the same requests go through the broker instead: `scripts/local-cluster.sh` starts
Redis, PostgreSQL, the model server and that many `lofi worker` processes; the report adds tracks per minute
and the CPU per track of every process of the shape (this one, the workers, the model server, Redis,
PostgreSQL).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
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


async def scenario(
    users: int,
    length: float,
    maker,
    database_url: str,
    settings,
    out_dir: Path,
    queue_size: int,
    workers: int,
):
    """`users` simultaneous requests through the service layer over `maker` (the in-process `Composer` or
    `jobs.remote.BrokerTrackMaker`) and the database at `database_url`; the report of one scenario."""
    from bot.errors import BotError
    from bot.queue import JobQueue
    from bot.services import Requester, TrackService
    from db import repository as repo
    from db.engine import make_engine, make_sessionmaker, upgrade_engine
    from db.models import Track, TrackStatus
    from music.request import TrackRequest

    engine = make_engine(database_url)
    await upgrade_engine(engine)
    sm = make_sessionmaker(engine)
    svc = TrackService(sm, maker, out_dir)
    queue = JobQueue(maxsize=queue_size, workers=workers, cooldown_s=settings.cooldown_s)
    queue.start()
    loop = getattr(maker, "loop", None)  # the in-process engine's generation loop (its batch sizes)
    batches_before = len(loop.batch_sizes) if loop is not None else 0
    moods = ["rainy", "sunny", "chill", "night", "study", "nostalgic"]

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
    sizes = loop.batch_sizes[batches_before:] if loop is not None else []
    return {
        "users": users,
        "length_s": length,
        "queue_size": queue_size,
        "workers": workers,
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
        "generation_batch_rows_max": max(sizes) if sizes else None,
        "generation_steps": len(sizes) if loop is not None else None,
        "db_tracks": total,
        "db_lost": len(lost),
        "main_process_cpu_s": round(cpu, 2),
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }


async def run_in_process(args, settings) -> dict:
    """The bot's own engine in this process (no broker), on a SQLite file."""
    from bot.app import render_pool_size
    from compose.pipeline import Composer
    from lofi.model_server import one_shot_backend

    out = {"transport": "in-process", "scenarios": []}
    # every batch size compiled before the first request, as the bot's own server does
    async with one_shot_backend(
        args.serving, Path(args.models), 60.0, local=not args.grpc, warmup_batch_sizes=None
    ) as client:
        out["backend"] = type(client).__name__  # LocalBackend (the bot's embedded path) or ServingClient
        out["render_pool"] = render_pool_size(settings.render_workers)
        with (
            tempfile.TemporaryDirectory(prefix="bench-load-") as tmp,
            ThreadPoolExecutor(
                render_pool_size(settings.render_workers), thread_name_prefix="lofi-render"
            ) as pool,
        ):
            composer = Composer(client, settings.render_config(), executor=pool)
            for users in args.users:
                url = f"sqlite+aiosqlite:///{Path(tmp) / f'load-{users}.sqlite3'}"
                out["scenarios"].append(
                    await scenario(users, args.length, composer, url, settings, Path(tmp) / f"out-{users}",
                                   args.queue_size or settings.queue_size, args.workers or settings.workers)
                )  # fmt: skip
            await composer.close()
    return out


async def run_on_workers(args, settings) -> dict:
    """The scale-out shape (`scripts/local-cluster.sh`: Redis, PostgreSQL, the model server and N `lofi
    worker` processes) for each N in --cluster-workers; this process plays the bot (service layer only)."""
    from jobs.celery_app import make_celery_app
    from jobs.remote import BrokerTrackMaker

    out = {"transport": "broker", "runs": []}
    for n in args.cluster_workers:
        env = start_cluster(n)
        try:
            app = make_celery_app(env["BROKER_URL"], redeliver_s=settings.job_redeliver_s)
            maker = BrokerTrackMaker(app, deadline_s=settings.job_timeout_s)
            run = {"worker_processes": n, "worker_concurrency": settings.worker_concurrency, "scenarios": []}
            with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
                for users in args.users:
                    before = cluster_cpu_seconds()
                    row = await scenario(users, args.length, maker, env["DATABASE_URL"], settings,
                                         Path(tmp) / f"out-{users}", args.queue_size or settings.queue_size,
                                         args.workers or settings.workers)  # fmt: skip
                    after = cluster_cpu_seconds()
                    per_role = {k: round(after[k] - before.get(k, 0.0), 2) for k in sorted(after)}
                    cluster_cpu = sum(per_role.values())
                    row["cluster_cpu_s"] = round(cluster_cpu, 1)
                    row["cluster_cpu_s_by_role"] = per_role
                    row["cpu_s_per_track"] = round(
                        (cluster_cpu + row["main_process_cpu_s"]) / max(row["finished"], 1), 2
                    )
                    row["tracks_per_minute"] = round(60.0 * row["finished"] / row["all_finished_s"], 1)
                    run["scenarios"].append(row)
            app.close()
        finally:
            stop_cluster()
        out["runs"].append(run)
    return out


CLUSTER = Path(__file__).resolve().parent.parent / "scripts" / "local-cluster.sh"
CLUSTER_DIR = Path(__file__).resolve().parent.parent / "var" / "cluster"


def start_cluster(workers: int) -> dict[str, str]:
    subprocess.run([str(CLUSTER), "start", "--workers", str(workers), "--no-bot"], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    lines = (CLUSTER_DIR / "env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def stop_cluster() -> None:
    subprocess.run([str(CLUSTER), "stop"], check=False, stdout=subprocess.DEVNULL)


def cluster_cpu_seconds() -> dict[str, float]:
    """CPU seconds used so far by the cluster's processes, per role (workers, model server, Redis, PostgreSQL
    with the backends it forked), their threads and reaped children included."""
    roles: dict[int, str] = {}
    for pidfile in CLUSTER_DIR.glob("*.pid"):
        role = "workers" if pidfile.stem.startswith("worker") else pidfile.stem
        roles[int(pidfile.read_text().split()[0])] = role
    postmaster = CLUSTER_DIR / "pg" / "data" / "postmaster.pid"
    if postmaster.exists():
        roles[int(postmaster.read_text().split()[0])] = "postgres"
    ticks = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        role = roles.get(int(stat.parent.name)) or roles.get(int(fields[1]))  # itself or a forked child
        if role is not None:
            used[role] = used.get(role, 0.0) + sum(int(x) for x in fields[11:15]) / ticks
    return used


async def run(args) -> dict:
    from lofi.settings import get_settings

    settings = get_settings()
    out = {"benchmark": "load", "date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count()}
    if args.cluster_workers:
        out.update(await run_on_workers(args, settings))
    else:
        out.update(await run_in_process(args, settings))
    return out


def main() -> None:
    """Run the benchmark and print the JSON report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_backend_arguments(ap)
    ap.add_argument("--users", nargs="+", type=int, default=[8, 32])
    ap.add_argument("--length", type=float, default=120.0)
    ap.add_argument("--queue-size", type=int, default=0, help="default: the settings' QUEUE_SIZE")
    ap.add_argument("--workers", type=int, default=0, help="default: the settings' WORKERS")
    ap.add_argument(
        "--cluster-workers",
        nargs="+",
        type=int,
        default=[],
        help="through the broker: start the local cluster with each of these numbers of `lofi worker`",
    )
    print(json.dumps(asyncio.run(run(ap.parse_args())), indent=2))


if __name__ == "__main__":
    main()
