"""Large arrays come from the heap and are reused, not mapped afresh for every stage (see lofi.malloc)."""

from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")

# Bytes glibc holds in mmapped blocks (mallinfo2's hblkhd) after a 40 MB array is made, in a fresh process.
PROBE = """
import ctypes, sys
import numpy as np
if sys.argv[1] == "keep":
    from lofi.malloc import keep_freed_memory
    assert keep_freed_memory()
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks "
                                                 "fordblks keepcost").split()]
mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = Info
before = mallinfo2().hblkhd
a = np.ones(10_000_000, np.float32)
print(mallinfo2().hblkhd - before)
"""


def _mapped_bytes(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_a_40_mb_array_comes_from_the_heap_once_freed_memory_is_kept():
    if not hasattr(ctypes.CDLL(None), "mallinfo2"):
        pytest.skip("glibc older than 2.33")
    assert _mapped_bytes("default") >= 40_000_000  # glibc's default: a fresh mapping, unmapped on free
    assert _mapped_bytes("keep") == 0  # from the heap, where a freed block is reused by the next stage
