"""The output folder's bounds: a failed track's folder is removed, and `out/` is trimmed to OUT_MAX_BYTES,
oldest track folders first (a posted track lives on Discord; a button on a trimmed one says it is gone)."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
from pathlib import Path

from music.errors import OutOfSpace

log = logging.getLogger(__name__)

TRACK_DIR_PREFIX = "track-"


def track_dir(out_dir: Path, track_id: int) -> Path:
    """The folder of track `track_id`'s files."""
    return Path(out_dir) / f"{TRACK_DIR_PREFIX}{track_id:06d}"


def disk_full(exc: BaseException | None) -> bool:
    """Whether `exc` (or what caused it) is a full disk."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, OutOfSpace) or (isinstance(exc, OSError) and exc.errno == errno.ENOSPC):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _size(folder: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):  # removed meanwhile: it holds nothing now
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def prune(out_dir: Path, max_bytes: int, keep: Path | None = None) -> int:
    """Remove the oldest track folders of `out_dir` until they hold at most `max_bytes` (never `keep`, the
    one being made); returns the bytes freed. `max_bytes` <= 0 keeps everything."""
    if max_bytes <= 0 or not Path(out_dir).is_dir():
        return 0
    folders = []
    for entry in os.scandir(out_dir):
        if entry.name.startswith(TRACK_DIR_PREFIX) and entry.is_dir(follow_symlinks=False):
            folders.append((entry.stat(follow_symlinks=False).st_mtime, Path(entry.path)))
    folders.sort()
    sizes = {path: _size(path) for _, path in folders}
    total, freed = sum(sizes.values()), 0
    for _, path in folders:
        if total <= max_bytes:
            break
        if keep is not None and path == keep:
            continue
        shutil.rmtree(path, ignore_errors=True)
        total, freed = total - sizes[path], freed + sizes[path]
    if freed:
        log.info("trimmed %s by %d bytes to OUT_MAX_BYTES=%d", out_dir, freed, max_bytes)
    return freed
