"""The Celery application both sides share: the broker, the one track task's name and queue, and the settings
that make delivery at least once.

Why Celery on Redis: Celery is the most used and best kept job engine in Python (arq, the asyncio one, has been
in maintenance-only mode since 2025), Redis is one small server that is both the broker and the result store,
and Debian packages it, so the tests start a real one as they start PostgreSQL.

At least once: a worker acknowledges a job only after it has run it (`task_acks_late`), a job whose worker
process died is given back (`task_reject_on_worker_lost`), and a job taken by a worker that vanished with
its host (SIGKILL, power) stays in the broker's unacknowledged set until `redeliver_s` has passed, when
another worker takes it again. Redis must persist what it accepted (append-only file, as the deploy files and
tests run it) for a broker restart to lose nothing.
"""

from __future__ import annotations

from celery import Celery

TRACK_TASK = "lofi.make_track"
TRACK_QUEUE = "lofi.tracks"


def make_celery_app(broker_url: str, *, redeliver_s: float) -> Celery:
    """The application over the Redis at `broker_url` (broker and result store).

    redeliver_s: how long a taken job may go unacknowledged before another worker takes it again; longer than
        the slowest job (else a slow job runs twice: still posted once, but the work is doubled).
    """
    app = Celery("lofi", broker=broker_url, backend=broker_url, set_as_current=False)
    restore_every = max(1.0, min(10.0, redeliver_s / 4))
    app.conf.update(
        # JSON only: whoever can write to the broker must not run code on a worker (pickle would let them)
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # a worker holds only the jobs it runs: the rest stay for the others
        task_track_started=True,
        task_default_queue=TRACK_QUEUE,
        result_expires=3600,  # a result nobody collected (its bot died) goes after an hour
        broker_transport_options={
            "visibility_timeout": redeliver_s,
            "unacked_restore_interval": restore_every,
            "unacked_restore_throttle": 1,
            # Every worker scans for vanished workers' jobs under a Redis lock that expires after this many
            # seconds (kombu's default: 300). A worker killed while holding it would stop every redelivery
            # for five minutes; a scan takes milliseconds.
            "unacked_mutex_expire": int(max(5.0, min(60.0, redeliver_s / 2))),
        },
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,  # `lofi` configures logging (with its secret redaction)
        worker_send_task_events=False,
    )
    return app


def broker_problem(broker_url: str, timeout_s: float = 3.0) -> str | None:
    """Why the broker at `broker_url` cannot be used (one line that never echoes a password), or None."""
    from urllib.parse import urlsplit

    import redis

    try:
        parts = urlsplit(broker_url)
        where = f"{parts.hostname}:{parts.port or 6379}"
    except ValueError:
        return "BROKER_URL is not a URL; expected redis://host:port/db"
    if parts.scheme not in ("redis", "rediss"):
        return f"BROKER_URL must be a redis:// URL, not {parts.scheme or 'one without a scheme'}://"
    try:
        client = redis.Redis.from_url(broker_url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
        try:
            client.ping()
        finally:
            client.close()
    except redis.AuthenticationError:
        return f"the broker at {where} refused the password in BROKER_URL"
    except (redis.RedisError, OSError, ValueError) as exc:
        return f"the broker at {where} is not reachable ({type(exc).__name__})"
    return None
