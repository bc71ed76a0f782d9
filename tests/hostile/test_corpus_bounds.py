"""Memory and time bounds on corpus ingestion: members are streamed to the parser workers with the bytes in
flight bounded, each file has a wall-time and a memory limit in its worker, and a member that fails to
decompress is skipped with its reason like every other bad file."""

from __future__ import annotations

import os
import struct
import tracemalloc
import zipfile
from pathlib import Path

import pytest

import training.corpus as corpus
from tests.training.test_corpus import tune
from training.corpus import load_corpus


def dense_midi(notes: int) -> bytes:
    """A MIDI file with one very dense melody track: a note every tick (a few KB per thousand notes)."""
    events = b"\x00\x90\x3c\x40\x01\x80\x3c\x00" * notes
    track = b"\x00\xff\x03\x06Melody" + events + b"\x00\xff\x2f\x00"
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + b"MTrk" + struct.pack(">I", len(track)) + track


def _patch_method(raw: bytearray, method: int) -> None:
    """Set the compression method of every member, in its local header and in the central directory."""
    for sig, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        i = raw.find(sig)
        while i >= 0:
            raw[i + offset : i + offset + 2] = struct.pack("<H", method)
            i = raw.find(sig, i + 4)


def test_members_that_fail_to_decompress_are_skipped_with_their_reason(tmp_path):
    good = tune(1)
    # A corrupt deflate stream (zlib.error): the compressed bytes of one member overwritten in the middle.
    deflate = tmp_path / "deflate.zip"
    with zipfile.ZipFile(deflate, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bad.mid", tune(2) * 4)
        zf.writestr("good.mid", good)
    raw = bytearray(deflate.read_bytes())
    start = raw.find(b"bad.mid") + len("bad.mid")
    raw[start + 20 : start + 60] = b"\xff" * 40
    deflate.write_bytes(bytes(raw))
    # A bad CRC: a stored member's bytes changed after the fact.
    crc = tmp_path / "crc.zip"
    with zipfile.ZipFile(crc, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("crc.mid", tune(3))
    raw = bytearray(crc.read_bytes())
    at = raw.find(b"MTrk") + 20
    raw[at] ^= 0x7F
    crc.write_bytes(bytes(raw))
    # An unknown compression method.
    method = tmp_path / "method.zip"
    with zipfile.ZipFile(method, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("method.mid", tune(4))
    raw = bytearray(method.read_bytes())
    _patch_method(raw, 77)
    method.write_bytes(bytes(raw))

    result = load_corpus([deflate, crc, method], cache_dir=tmp_path / "cache", workers=1, progress=False)
    reasons = dict(result.skipped)
    assert [p.name for p in result.pieces] == ["deflate.zip/good.mid"]
    assert "corrupt archive member" in reasons["deflate.zip:bad.mid"]
    assert "CRC" in reasons["crc.zip:crc.mid"]
    assert "compression method" in reasons["method.zip:method.mid"]


def test_a_file_that_parses_too_long_is_skipped_and_the_rest_goes_on(tmp_path):
    root = tmp_path / "songs"
    root.mkdir()
    (root / "dense.mid").write_bytes(dense_midi(20_000))  # 160 KB; music21 needs minutes for it
    (root / "fine.mid").write_bytes(tune(5))
    result = load_corpus([root], cache_dir=tmp_path / "cache", workers=1, progress=False, parse_timeout_s=8.0)
    assert [p.name for p in result.pieces] == ["fine.mid"], result.skipped
    assert dict(result.skipped)["dense.mid"] == "parsing took longer than 8 s"
    assert result.seconds < 60
    # Not cached as a failure: on a quieter machine, or with a longer limit, it is tried again.
    cache = corpus.TokenCache(tmp_path / "cache")
    assert cache.get(corpus.SourceFile("dense.mid", "user", dense_midi(20_000)).key) is None
    assert cache.get(corpus.SourceFile("fine.mid", "user", tune(5)).key)["ok"]


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc to size the address space")
def test_a_file_that_needs_too_much_memory_is_skipped(tmp_path, monkeypatch):
    real = corpus.encode_file

    def hungry(name, data, sidecars):
        if "hungry" in name:
            blob = bytearray(1024**3)  # 1 GiB: over the 256 MiB this test allows
            return {"ok": False, "reason": str(len(blob))}
        return real(name, data, sidecars)

    monkeypatch.setattr(corpus, "encode_file", hungry)  # the forked workers inherit it
    root = tmp_path / "songs"
    root.mkdir()
    (root / "hungry.mid").write_bytes(tune(6))
    (root / "fine.mid").write_bytes(tune(7))
    result = load_corpus(
        [root], cache_dir=tmp_path / "cache", workers=2, progress=False, parse_memory_bytes=256 * 1024**2
    )
    assert [p.name for p in result.pieces] == ["fine.mid"]
    assert dict(result.skipped)["hungry.mid"] == "parsing needed more memory than allowed"


def test_zip_members_are_streamed_with_the_bytes_in_flight_bounded(tmp_path):
    archive = tmp_path / "many.zip"
    members, size = 40, 1024**2  # 40 MiB, each member under every cap
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for i in range(members):
            zf.writestr(f"m{i:03d}.mid", b"MThd" + os.urandom(size - 4))
    tracemalloc.start()
    try:
        result = load_corpus(
            [archive],
            cache_dir=tmp_path / "cache",
            workers=2,
            progress=False,
            max_in_flight_bytes=3 * size,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.files_read == members and len(result.skipped) == members  # none is a real MIDI file
    assert result.peak_in_flight_bytes <= 3 * size
    assert peak < 12 * size, f"the parent held {peak / size:.0f} MiB of a {members} MiB archive"
