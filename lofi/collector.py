"""Take what start-up made out of the cyclic garbage collector's full passes (`gc.freeze`).

Loading TensorFlow and three members leaves ~410,000 tracked objects that live as long as the process. Every
full (generation 2) collection walked all of them: 0.20 s, once every few tracks, wherever it fell (measured
2026-12-01 with gc callbacks, 2-minute tracks). Frozen, the same collection takes 0.002 s. Objects made
later (a retrained version loaded by the bot, say) are collected as usual.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)


def freeze_startup_objects(*, collect: bool = True) -> int:
    """Move every object tracked now into the permanent generation; returns how many there are.

    collect: free start-up's garbage first (a full pass, 0.22 s after the models load), so a long-lived
    process does not keep it for ever; a one-command process skips it, its garbage dies with it.
    """
    if collect:
        gc.collect()
    gc.freeze()
    count = gc.get_freeze_count()
    log.debug("froze %d start-up objects out of the garbage collector's passes", count)
    return count
