"""Named thread pools of the audio stack: made on first use, kept for the life of the process.

numpy, scipy, pedalboard and FluidSynth release the GIL while they work, so threads use both cores; a pool is
kept rather than made per track because its threads keep what they loaded (a synthesizer each, `music.synth`).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

_POOLS: dict[str, ThreadPoolExecutor] = {}
_LOCK = threading.Lock()


def named_pool(name: str, workers: int = 1) -> ThreadPoolExecutor:
    """The process's pool called `name` (threads "lofi-<name>"), with `workers` threads when first made."""
    with _LOCK:
        if name not in _POOLS:
            _POOLS[name] = ThreadPoolExecutor(workers, thread_name_prefix=f"lofi-{name}")
        return _POOLS[name]
