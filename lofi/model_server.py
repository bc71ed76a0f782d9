"""Which model server a command talks to: the one at SERVING_ADDRESS, or an embedded one (the only owner).

Two kinds of embedded server: `long_lived` (the bot: the settings' port, new versions picked up as they are
exported) and one-shot (a single track: a free loopback port, raw tensors, no polling). `one_shot_backend` is
what one command generates with: a gRPC client of a given address, else the models loaded by the embedded
server's store in this process and called directly (no port at all).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


def reachable(address: str, timeout_s: float) -> bool:
    """Whether a model server answers GetModelStatus at `address`."""
    from serving.client import ServingClient

    async def probe() -> bool:
        async with ServingClient(address, timeout_s=min(timeout_s, 3.0), retries=1) as client:
            await client.model_status()
            return True

    try:
        return asyncio.run(probe())
    except Exception as exc:  # any failure means "not usable": the caller falls back to the embedded server
        log.debug("probe of %s failed: %s", address, exc)
        return False


def live_address(address: str | None, timeout_s: float) -> str | None:
    """`address` when a model server answers there; None (with a warning when one was configured) otherwise."""
    if address and reachable(address, timeout_s):
        log.info("using the model server at %s", address)
        return address
    if address:
        log.warning("SERVING_ADDRESS=%s does not answer; using the embedded server instead", address)
    return None


def port_taken(host: str, port: int) -> bool:
    """Whether binding `host`:`port` fails because another process holds it (gRPC binds with SO_REUSEADDR
    too). Asked before TensorFlow and gRPC load, so the refusal is one line, not their start-up noise."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def start_embedded(
    models_dir: Path, *, long_lived: bool, port: int = 0, warmup_batch_sizes: set[int] | None = frozenset({1})
):
    """An embedded server over `models_dir`, started; None when it cannot serve.

    long_lived: bind `port` on all interfaces and poll for new versions (PortUnavailable when another
    process holds the port; other failures are logged, not raised);
    otherwise a free loopback port with no polling, and None when `models_dir` holds no members.
    """
    from serving.errors import PortUnavailable

    if long_lived and port and port_taken("0.0.0.0", port):
        raise PortUnavailable(f"port {port} is held by another process")
    from serving.server import EmbeddedServer, config_for_models_dir

    if long_lived:
        try:
            server = EmbeddedServer(
                config_for_models_dir(models_dir), port=port, poll_s=1.0, models_dir=models_dir
            ).start()
        except PortUnavailable:
            raise  # the owner refuses to start: whatever holds the port is not ours to compose through
        except Exception:
            log.exception("could not start the embedded model server; tracks will fail until serving is up")
            return None
        log.info("embedded model server for %s on %s", models_dir, server.address)
        return server
    config = config_for_models_dir(models_dir)
    if not config.model_config_list.config:
        return None
    # by default one track, one row at a time: only that batch size is compiled before serving
    server = EmbeddedServer(
        config,
        port=0,
        host="127.0.0.1",
        poll_s=0,
        tensor_content=True,
        warmup_batch_sizes=warmup_batch_sizes,
    )
    server.start()
    if not any(server.store.models.values()):
        server.stop(grace=0)
        return None
    return server


@contextmanager
def embedded_model_server(
    address: str | None,
    models_dir: Path,
    *,
    long_lived: bool,
    port: int = 0,
    embedded: bool = True,
    warmup_batch_sizes: set[int] | None = frozenset({1}),
) -> Iterator[tuple[str | None, object | None]]:
    """(address to use, the embedded server or None): `address` if given, else an embedded server's (stopped
    on exit); (None, None) if neither."""
    server = None
    if address is None and embedded:
        server = start_embedded(
            Path(models_dir), long_lived=long_lived, port=port, warmup_batch_sizes=warmup_batch_sizes
        )
    try:
        yield address or (server.address if server is not None else None), server
    finally:
        if server is not None:
            server.stop() if long_lived else server.stop(grace=0)


@asynccontextmanager
async def one_shot_backend(
    address: str | None,
    models_dir: Path,
    timeout_s: float,
    *,
    local: bool = True,
    warmup_batch_sizes: set[int] | None = frozenset({1}),
) -> AsyncIterator[object | None]:
    """The backend one command generates with; None when there are no models that load.

    A gRPC client of the server at `address`; else the models under `models_dir` loaded in this process by
    the embedded server's store and called directly (`serving.local`: no loopback gRPC), or, with
    `local=False`, an embedded server over gRPC (for benchmarks). `warmup_batch_sizes`: what is compiled
    before the first track (default batch 1: one track sends one row at a time; None: every size).
    """
    if address or not local:
        from serving.client import ServingClient

        with embedded_model_server(
            address, models_dir, long_lived=False, warmup_batch_sizes=warmup_batch_sizes
        ) as (live, _):
            if live is None:
                yield None
                return
            async with ServingClient(live, timeout_s=timeout_s) as client:
                yield client
        return
    from serving.local import open_local_backend

    async with open_local_backend(Path(models_dir), warmup_batch_sizes=warmup_batch_sizes) as backend:
        if not any(backend.store.models.values()):
            yield None
            return
        from lofi.collector import freeze_startup_objects

        freeze_startup_objects(collect=False)  # one command: a full pass would only add 0.22 s to its start
        yield backend
