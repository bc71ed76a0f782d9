"""Which model server a command talks to: the one at SERVING_ADDRESS, or an embedded one (the only owner).

Two kinds of embedded server: `long_lived` (the bot: the settings' port, new versions picked up as they are
exported) and one-shot (a single track: a free loopback port, raw tensors, no polling).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
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


def start_embedded(models_dir: Path, *, long_lived: bool, port: int = 0):
    """An embedded server over `models_dir`, started; None when it cannot serve.

    long_lived: bind `port` on all interfaces and poll for new versions (failures are logged, not raised);
    otherwise a free loopback port with no polling, and None when `models_dir` holds no members.
    """
    from serving.server import EmbeddedServer, config_for_models_dir

    if long_lived:
        try:
            server = EmbeddedServer(
                config_for_models_dir(models_dir), port=port, poll_s=1.0, models_dir=models_dir
            ).start()
        except Exception:
            log.exception("could not start the embedded model server; tracks will fail until serving is up")
            return None
        log.info("embedded model server for %s on %s", models_dir, server.address)
        return server
    config = config_for_models_dir(models_dir)
    if not config.model_config_list.config:
        return None
    # one track sends one row at a time: only that batch size is compiled before serving
    server = EmbeddedServer(
        config, port=0, host="127.0.0.1", poll_s=0, tensor_content=True, warmup_batch_sizes={1}
    )
    server.start()
    if not any(server.store.models.values()):
        server.stop(grace=0)
        return None
    return server


@contextmanager
def model_server(
    address: str | None, models_dir: Path, *, long_lived: bool, port: int = 0, embedded: bool = True
) -> Iterator[str | None]:
    """The address to use: `address` if given, else an embedded server's (stopped on exit); None if neither."""
    server = None
    if address is None and embedded:
        server = start_embedded(Path(models_dir), long_lived=long_lived, port=port)
    try:
        yield address or (server.address if server is not None else None)
    finally:
        if server is not None:
            server.stop() if long_lived else server.stop(grace=0)
