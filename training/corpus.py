"""The training corpus: find music files in folders and zips, parse them in parallel, cache the tokens.

Input may be hostile (a user's zip): zip members are validated and read in memory, never extracted,
so nothing is written anywhere but the cache folder. A member whose name escapes the archive (`../`,
an absolute path, a drive letter), a symbolic link, an encrypted member, or one whose size or
compression ratio is absurd (a zip bomb) is skipped and reported, as is any file that does not parse.

The cache holds one small JSON file per source file, keyed by the sha256 of its bytes (and of its
POP909 side-cars) under a folder named for the token representation and parser versions, so a
second run parses nothing and a new tokenizer never reads stale tokens. Failures are cached too.

Groove (`data/corpus/groove`) holds drum performances only: its files are read like any other and
skipped with the reason "drum track only" (cached, so this costs nothing after the first run).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import lzma
import multiprocessing
import os
import resource
import stat
import sys
import time
import zipfile
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import wait as wait_for_connections
from pathlib import Path, PurePosixPath

from music.chords import NO_CHORD
from music.errors import CorpusFileError
from music.parse import MAX_FILE_BYTES, MUSIC_SUFFIXES, PARSER_VERSION, SIDECARS, ParseInfo, parse_file
from music.score import Score
from music.tokens import REPR_VERSION, EncodeReport, Representation

log = logging.getLogger(__name__)

CACHE_VERSION = f"{REPR_VERSION}+{PARSER_VERSION}"
KNOWN_SETS = ("openewld", "pop909", "groove")
ZIP_SUFFIXES = (".zip",)
MAX_ENTRY_BYTES = MAX_FILE_BYTES  # one member, uncompressed
MAX_TOTAL_BYTES = 2 * 1024**3  # all members of one archive, uncompressed
MAX_RATIO = 100  # uncompressed / compressed, for members above RATIO_MIN_BYTES
RATIO_MIN_BYTES = 64 * 1024
# Python's zipfile holds a ZipInfo per central-directory entry, and the run keeps a name, key and entry per
# file: ~8 KB a member (199,999 tiny members peaked at 1.58 GB). Archives are refused above this count, read
# from the end record before the directory is, so memory no longer follows a hostile archive's member count.
MAX_ENTRIES = 20_000
MAX_IN_FLIGHT_BYTES = 64 * 1024**2  # file bytes read but not yet parsed, all workers together
PARSE_TIMEOUT_S = 60.0  # wall time one file may take to parse in a worker before it is skipped
PARSE_MEMORY_BYTES = 2 * 1024**3  # address space one worker may add while parsing one file


class CorpusError(Exception):
    """A corpus path that cannot be used at all (missing, not a folder or zip, an unreadable archive)."""


@dataclass
class EncodedPiece:
    """One tokenized piece of the corpus."""

    name: str  # relative path of the source file inside the corpus (stable id, used for splits)
    source: str  # 'openewld' | 'pop909' | 'user' ... (top folder or 'user')
    ids: list[int]  # full token ids incl. header (BOS MODE TS TEMPO DENS) ... EOS
    tonic: int
    bpm: float
    mode: str
    n_bars: int = 0
    stats: dict = field(default_factory=dict)  # parse and round-trip counts (see `_work`)


@dataclass
class CorpusResult:
    """What `load_corpus` read: the pieces, and every file it skipped with the reason."""

    pieces: list[EncodedPiece]
    skipped: list[tuple[str, str]]  # (file, reason)
    files_read: int
    seconds: float
    from_cache: int  # pieces served from cache
    parsed: int = 0  # files parsed this run (not from cache)
    peak_in_flight_bytes: int = 0  # most file bytes handed to parser workers and not yet parsed


@dataclass
class SourceFile:
    """A music file found in a corpus path, with its bytes and POP909 side-cars."""

    name: str
    source: str
    data: bytes
    sidecars: dict[str, bytes] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """sha256 of the file's bytes and its side-cars: the cache key."""
        h = hashlib.sha256(self.data)
        for name in sorted(self.sidecars):
            h.update(b"\0" + name.encode() + b"\0" + self.sidecars[name])
        return h.hexdigest()


# ------------------------------------------------------------------------------------------ discovery
def _source_of(rel: PurePosixPath, root_name: str) -> str:
    if root_name in KNOWN_SETS:
        return root_name
    if len(rel.parts) > 1 and rel.parts[0] in KNOWN_SETS:
        return rel.parts[0]
    return "user"


def _is_music(name: str) -> bool:
    return name.lower().endswith(MUSIC_SUFFIXES)


def safe_member_name(name: str) -> PurePosixPath | None:
    """The member's path if it stays inside the archive, else None (absolute, `..`, drive letter)."""
    norm = name.replace("\\", "/")
    if not norm or norm.startswith("/") or (len(norm) > 1 and norm[1] == ":") or "\0" in norm:
        return None
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        return None
    return PurePosixPath(*parts)


def iter_zip(path: Path, skipped: list[tuple[str, str]], label: str = "") -> Iterator[SourceFile]:
    """The music members of the zip at `path`, read in memory; bad members go to `skipped`."""
    label = label or path.name
    count = _entry_count(path)
    if count is not None and count > MAX_ENTRIES:
        skipped.append((label, f"archive has {count} entries, more than the {MAX_ENTRIES} allowed"))
        return
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, zipfile.LargeZipFile) as exc:
        skipped.append((label, f"not a readable zip archive ({exc})"))
        return
    with zf:
        safe = _safe_members(zf, label, skipped)
        if safe is None:
            return
        for rel, info in sorted(safe.items()):
            if not _is_music(rel.name):
                continue
            where = f"{label}:{rel}"
            try:
                data = _read_member(zf, info)
                sidecars = {}
                for side in SIDECARS:
                    sinfo = safe.get(rel.parent / side)
                    if sinfo is not None:
                        sidecars[side] = _read_member(zf, sinfo)
            except (
                zipfile.BadZipFile,
                OSError,
                EOFError,
                CorpusFileError,
                NotImplementedError,
                RuntimeError,
                ValueError,
                zlib.error,
                lzma.LZMAError,
            ) as exc:
                # zlib.error: a corrupt deflate stream; BadZipFile: a bad CRC; NotImplementedError: an
                # unknown compression method. Each costs this member only, never the run.
                reason = str(exc)[:200] or type(exc).__name__
                skipped.append((where, f"corrupt archive member ({reason})"))
                continue
            name = f"{label}/{rel}" if label else str(rel)
            yield SourceFile(name, _source_of(rel, ""), data, sidecars)


def _entry_count(path: Path) -> int | None:
    """The number of entries the archive's end record declares (None if unreadable: ZipFile says why)."""
    try:
        with open(path, "rb") as fh:
            end = zipfile._EndRecData(fh)  # type: ignore[attr-defined]  # reads the tail only, zip64 too
    except OSError:
        return None
    return int(end[zipfile._ECD_ENTRIES_TOTAL]) if end else None  # type: ignore[attr-defined]


def _safe_members(
    zf: zipfile.ZipFile, label: str, skipped: list[tuple[str, str]]
) -> dict[PurePosixPath, zipfile.ZipInfo] | None:
    """The music and side-car members that are safe to read, by path, judged from the central directory
    alone (nothing is inflated yet); None when the archive as a whole is too big to read at all."""
    infos = zf.infolist()
    if len(infos) > MAX_ENTRIES:
        skipped.append((label, f"archive has {len(infos)} entries, more than the {MAX_ENTRIES} allowed"))
        return None
    total = 0
    safe: dict[PurePosixPath, zipfile.ZipInfo] = {}
    for info in infos:
        if info.is_dir():
            continue
        where = f"{label}:{info.filename}"
        rel = safe_member_name(info.filename)
        if rel is None:
            if _is_music(info.filename) or ".." in info.filename or info.filename.startswith("/"):
                skipped.append((where, "unsafe path in archive (absolute or escapes the folder)"))
            continue
        if not (_is_music(rel.name) or rel.name in SIDECARS):
            continue
        problem = _member_problem(info)
        if problem is not None:
            skipped.append((where, problem))
            continue
        total += info.file_size
        if total > MAX_TOTAL_BYTES:
            skipped.append((label, f"archive holds more than {MAX_TOTAL_BYTES // 2**30} GiB uncompressed"))
            return None
        safe[rel] = info
    return safe


def _member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why a member must not be read (a link, encrypted, too large, a likely zip bomb), or None."""
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link in archive"
    if info.flag_bits & 0x1:
        return "encrypted archive member"
    if info.file_size > MAX_ENTRY_BYTES:
        return f"member larger than {MAX_ENTRY_BYTES // 2**20} MiB uncompressed"
    if info.file_size > RATIO_MIN_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        return f"compression ratio above {MAX_RATIO} (possible zip bomb)"
    return None


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """The member's bytes; CorpusFileError if it inflates past the limit whatever its header says."""
    # Bounded read: a forged header cannot make us inflate more than the limit.
    with zf.open(info) as fh:
        data = fh.read(MAX_ENTRY_BYTES + 1)
    if len(data) > MAX_ENTRY_BYTES:
        raise CorpusFileError("member larger than its header says")
    return data


def iter_folder(root: Path, skipped: list[tuple[str, str]]) -> Iterator[SourceFile]:
    """The music files under `root` (recursively, links not followed) and the zips in it."""
    real_root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        here = Path(dirpath)
        for fname in sorted(filenames):
            path = here / fname
            rel = PurePosixPath(path.relative_to(root).as_posix())
            name = f"{root.name}/{rel}" if root.name in KNOWN_SETS else str(rel)
            lower = fname.lower()
            if not (lower.endswith(MUSIC_SUFFIXES) or lower.endswith(ZIP_SUFFIXES)):
                continue
            if path.is_symlink():
                skipped.append((name, "symbolic link (not followed)"))
                continue
            if not path.resolve().is_relative_to(real_root):
                skipped.append((name, "outside the corpus folder"))
                continue
            if lower.endswith(ZIP_SUFFIXES):
                yield from iter_zip(path, skipped, label=str(rel))
                continue
            try:
                if path.stat().st_size > MAX_FILE_BYTES:
                    skipped.append((name, f"file larger than {MAX_FILE_BYTES // 2**20} MiB"))
                    continue
                data = path.read_bytes()
                sidecars = {}
                for side in SIDECARS:
                    sp = here / side
                    if sp.is_file() and not sp.is_symlink() and sp.stat().st_size < MAX_FILE_BYTES:
                        sidecars[side] = sp.read_bytes()
            except OSError as exc:
                skipped.append((name, f"cannot read file ({exc.strerror or exc})"))
                continue
            yield SourceFile(name, _source_of(rel, root.name), data, sidecars)


def _iter_path(path: Path, skipped: list[tuple[str, str]]) -> Iterator[SourceFile]:
    if path.is_dir():
        yield from iter_folder(path, skipped)
    elif path.is_file() and path.suffix.lower() in ZIP_SUFFIXES:
        yield from iter_zip(path, skipped)
    elif path.is_file() and path.suffix.lower() in MUSIC_SUFFIXES:
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                skipped.append((str(path), f"file larger than {MAX_FILE_BYTES // 2**20} MiB"))
                return
            data = path.read_bytes()
        except OSError as exc:
            skipped.append((str(path), f"cannot read file ({exc.strerror or exc})"))
            return
        yield SourceFile(path.name, "user", data)


def iter_sources(paths: list[Path | str], skipped: list[tuple[str, str]]) -> Iterator[SourceFile]:
    """Every music file in `paths` (folders, zips or single files), one at a time, so that only the file
    being handed to a parser is held in memory; problems go to `skipped`. CorpusError for a path that is
    missing or neither a folder, a zip nor a music file (checked before anything is read)."""
    checked = [Path(p) for p in paths]
    for path in checked:
        if not path.exists():
            raise CorpusError(f"{path} does not exist")
        if not (path.is_dir() or (path.is_file() and path.suffix.lower() in ZIP_SUFFIXES + MUSIC_SUFFIXES)):
            raise CorpusError(f"{path} is neither a folder, a zip file nor a music file")
    names: set[str] = set()
    for path in checked:
        for f in _iter_path(path, skipped):
            base, i = f.name, 1  # two roots may hold the same relative path: keep names unique
            while f.name in names:
                i += 1
                f.name = f"{base}#{i}"
            names.add(f.name)
            yield f


# -------------------------------------------------------------------------------------------- parsing
_REP: Representation | None = None


def _rep() -> Representation:
    global _REP
    if _REP is None:
        _REP = Representation()
    return _REP


def _chord_key(c) -> tuple:
    if c.quality == NO_CHORD:  # 'N' has no root or bass
        return (c.start, NO_CHORD)
    return (c.start, c.root % 12, c.quality, c.bass % 12, c.voicing)


def round_trip(score: Score, ids: list[int], rep: Representation) -> dict:
    """How much of `score` survives decode(encode(score)): melody notes with pitch, onset and duration
    intact, and chord symbols with onset, root, quality, bass and voicing intact."""
    decoded = rep.decode(ids, tonic=score.tonic)
    got = {(n.pitch, n.start, n.duration) for n in decoded.melody}
    notes_ok = sum((n.pitch, n.start, n.duration) in got for n in score.melody)
    total = score.total_ticks
    src_chords = [c for c in score.chords if 0 <= c.start < total]
    got_chords = {_chord_key(c) for c in decoded.chords}
    chords_ok = sum(_chord_key(c) in got_chords for c in src_chords)
    vel_same = {(n.pitch, n.start): n.velocity for n in decoded.melody}
    return {
        "notes": len(score.melody),
        "notes_ok": notes_ok,
        "chords": len(src_chords),
        "chords_ok": chords_ok,
        "velocity_changed": sum(
            vel_same.get((n.pitch, n.start), n.velocity) != n.velocity for n in score.melody
        ),
    }


def encode_file(name: str, data: bytes, sidecars: dict[str, bytes]) -> dict:
    """Parse, encode and round-trip one file: a JSON-ready cache entry (`ok` False with a `reason`)."""
    rep = _rep()
    info = ParseInfo()
    try:
        score = parse_file(Path(name), data, sidecars, info)
        report = EncodeReport()
        tokens = rep.encode(score, report)
        ids = rep.vocab.ids(tokens)
    except CorpusFileError as exc:
        return {"ok": False, "reason": str(exc)}
    except (ValueError, KeyError) as exc:
        return {"ok": False, "reason": f"cannot encode ({exc})"}
    except RecursionError:
        return {"ok": False, "reason": "score nested too deeply"}
    ts = score.time_signatures[0]
    return {
        "ok": True,
        "ids": ids,
        "tonic": score.tonic,
        "bpm": round(score.bpm, 3),
        "mode": score.mode,
        "n_bars": score.n_bars,
        "stats": {
            "time_signature": f"{ts.numerator}/{ts.denominator}",
            "parse": info.to_dict(),
            "encode": {
                "notes_in": report.notes_in,
                "notes_exact": report.notes_exact,
                "lost": dict(report.lost),
            },
            "round_trip": round_trip(score, ids, rep),
        },
    }


def _work(task: tuple[str, bytes, dict[str, bytes]]) -> dict:
    try:
        return encode_file(*task)
    except MemoryError:
        return {"ok": False, "reason": "parsing needed more memory than allowed", "transient": True}
    except Exception as exc:  # a parser bug must not take the whole corpus down
        return {"ok": False, "reason": f"unexpected parser error ({type(exc).__name__}: {exc})"[:300]}


# ------------------------------------------------------------------------------------ parser workers
def _address_space() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _worker_main(conn, memory_bytes: int) -> None:
    """A parser process: parse each task it receives, answer with the cache entry; stop on None."""
    if memory_bytes > 0:
        # The limit counts what this process already maps (a fork of its parent) plus the budget of one
        # file, so a file that needs more gets a MemoryError here instead of swapping the machine.
        limit = _address_space() + memory_bytes
        try:
            _, hard = resource.getrlimit(resource.RLIMIT_AS)
            if hard != resource.RLIM_INFINITY:
                limit = min(limit, hard)
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        except (ValueError, OSError):
            pass
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        try:
            conn.send(_work(task))
        except (OSError, ValueError):
            return


class _Worker:
    def __init__(self, ctx, memory_bytes: int):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, memory_bytes), daemon=True)
        self.proc.start()
        child.close()
        self.task: tuple[str, int] | None = None  # (file name, bytes) being parsed
        self.started = 0.0

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.proc.kill()
        else:
            try:
                self.conn.send(None)
            except OSError:
                self.proc.kill()
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        self.conn.close()


class ParserPool:
    """Parser processes fed one file at a time, each with a wall-time and a memory limit per file.

    A file whose parse runs past `timeout_s` has its worker killed (and replaced) and is skipped with that
    reason; one that needs more than `memory_bytes` of address space gets a MemoryError in its worker and
    is skipped too. At most `workers` files are being parsed and their bytes sum to at most
    `max_bytes` (one file always fits), so memory does not grow with the size of the corpus.
    """

    def __init__(self, workers: int, timeout_s: float, memory_bytes: int, max_bytes: int):
        self.ctx = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        self.size, self.timeout_s, self.memory_bytes, self.max_bytes = (
            workers,
            timeout_s,
            memory_bytes,
            max_bytes,
        )
        self.idle: deque[_Worker] = deque()
        self.busy: list[_Worker] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self._started = 0

    def _worker(self) -> _Worker:
        if self.idle:
            return self.idle.popleft()
        self._started += 1
        return _Worker(self.ctx, self.memory_bytes)

    def can_take(self, size: int) -> bool:
        """Whether a file of `size` bytes may be sent now."""
        if len(self.busy) >= self.size:
            return False
        return not self.busy or self.in_flight + size <= self.max_bytes

    def submit(self, name: str, data: bytes, sidecars: dict[str, bytes]) -> None:
        """Send one file to an idle worker (call `can_take` first)."""
        size = len(data) + sum(len(v) for v in sidecars.values())
        w = self._worker()
        w.task, w.started = (name, size), time.monotonic()
        self.in_flight += size
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        self.busy.append(w)
        with contextlib.suppress(OSError):  # a dead worker is noticed by `results`
            w.conn.send((name, data, sidecars))

    def _finish(self, w: _Worker, *, reuse: bool) -> str:
        name, size = w.task
        self.in_flight -= size
        self.busy.remove(w)
        w.task = None
        if reuse:
            self.idle.append(w)
        else:
            w.stop(kill=True)
        return name

    def results(self) -> Iterator[tuple[str, dict]]:
        """Wait for at least one busy worker to finish (or time out): its (file name, cache entry)."""
        if not self.busy:
            return
        now = time.monotonic()
        deadline = min(w.started for w in self.busy) + self.timeout_s
        ready = wait_for_connections([w.conn for w in self.busy], timeout=max(0.0, deadline - now))
        done = [w for w in self.busy if w.conn in ready]
        for w in done:
            try:
                entry = w.conn.recv()
            except (EOFError, OSError):
                code = w.proc.exitcode
                w.proc.join(1)
                code = w.proc.exitcode if code is None else code
                reason = f"the parser process died (exit code {code})"
                yield self._finish(w, reuse=False), {"ok": False, "reason": reason, "transient": True}
                continue
            yield self._finish(w, reuse=True), entry
        now = time.monotonic()
        for w in [w for w in self.busy if now - w.started > self.timeout_s]:
            reason = f"parsing took longer than {self.timeout_s:g} s"
            yield self._finish(w, reuse=False), {"ok": False, "reason": reason, "transient": True}

    def close(self) -> None:
        for w in [*self.busy, *self.idle]:
            w.stop(kill=w in self.busy)
        self.busy.clear()
        self.idle.clear()


# ---------------------------------------------------------------------------------------------- cache
class TokenCache:
    """Cache entries as JSON files under `<root>/<CACHE_VERSION>/<sha[:2]>/<sha>.json`."""

    def __init__(self, root: Path):
        self.dir = Path(root) / CACHE_VERSION.replace("/", "_")

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        """The entry for `key`, or None (missing or unreadable)."""
        try:
            entry = json.loads(self._path(key).read_text())
        except (OSError, ValueError):
            return None
        return entry if isinstance(entry, dict) and "ok" in entry else None

    def put(self, key: str, entry: dict) -> None:
        """Store `entry` atomically (a reader never sees half a file)."""
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(entry, separators=(",", ":")))
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("cannot write corpus cache entry %s: %s", path, exc)


def default_cache_dir() -> Path:
    """`.cache/corpus` in the checkout (the settings' default; the entry layer passes CACHE_DIR's)."""
    return Path(__file__).resolve().parent.parent / ".cache" / "corpus"


def load_corpus(
    paths: list[Path | str],
    cache_dir: Path | None = None,
    workers: int = 2,
    progress: bool = True,
    *,
    parse_timeout_s: float = PARSE_TIMEOUT_S,
    parse_memory_bytes: int = PARSE_MEMORY_BYTES,
    max_in_flight_bytes: int = MAX_IN_FLIGHT_BYTES,
) -> CorpusResult:
    """Tokenize every music file in `paths` (folders or zips), from the cache where possible.

    Files are read one at a time and streamed to the parser processes, so memory stays bounded by the
    bytes in flight whatever the size of the corpus or archive.

    Args:
        paths: corpus folders, zip files or single music files.
        cache_dir: where tokenized files are cached (default: `default_cache_dir()`).
        workers: parser processes for files not in the cache (0 parses in this process, without limits).
        progress: show a tqdm bar on stderr.
        parse_timeout_s: wall time one file may take to parse; past it the file is skipped with that reason.
        parse_memory_bytes: address space a worker may add to parse one file; past it the file is skipped.
        max_in_flight_bytes: file bytes handed to workers and not yet parsed, all together.
    Returns:
        The pieces in a stable order (by name), the skipped files with reasons, and timings.
    """
    from tqdm import tqdm

    t0 = time.perf_counter()
    skipped: list[tuple[str, str]] = []
    cache = TokenCache(cache_dir if cache_dir is not None else default_cache_dir())
    bar = tqdm(desc="parsing corpus", unit="file", file=sys.stderr, disable=not progress, leave=False)
    entries = _Entries(cache, bar)
    pool = (
        ParserPool(workers, parse_timeout_s, parse_memory_bytes, max_in_flight_bytes) if workers > 0 else None
    )
    try:
        _tokenize(iter_sources(paths, skipped), entries, pool)
    finally:
        if pool is not None:
            pool.close()
        bar.close()
    return CorpusResult(
        _pieces(entries, skipped),
        skipped,
        len(entries.order),
        time.perf_counter() - t0,
        entries.from_cache,
        parsed=entries.parsed,
        peak_in_flight_bytes=pool.peak_in_flight if pool is not None else 0,
    )


class _Entries:
    """The cache entry of every file found, in the order found; new entries are cached as they come."""

    def __init__(self, cache: TokenCache, bar):
        self.cache, self.bar = cache, bar
        self.order: list[str] = []
        self.sources: dict[str, str] = {}
        self.keys: dict[str, str] = {}
        self.by_name: dict[str, dict] = {}
        self.parsed = 0  # files sent to a parser this run
        self.from_cache = 0  # pieces (successful entries) served from the cache

    def cached(self, f: SourceFile) -> bool:
        """Note `f`; True if the cache already holds its entry (so it needs no parsing)."""
        self.order.append(f.name)
        self.sources[f.name] = f.source
        self.keys[f.name] = key = f.key
        hit = self.cache.get(key)
        if hit is None:
            self.parsed += 1
            return False
        self.by_name[f.name] = hit
        self.from_cache += bool(hit.get("ok"))
        return True

    def add(self, name: str, entry: dict) -> None:
        """Keep the entry a parser made for `name`, and cache it unless the failure may be the machine's."""
        self.by_name[name] = entry
        if not entry.get("transient"):  # a timeout or a dead worker may be the machine's fault: retry later
            self.cache.put(self.keys[name], entry)
        self.bar.update()


def _tokenize(sources: Iterator[SourceFile], entries: _Entries, pool: ParserPool | None) -> None:
    """Give every source not in the cache to a parser (the pool, or this process without one)."""
    for f in sources:
        if entries.cached(f):
            continue
        if pool is None:
            entries.add(f.name, _work((f.name, f.data, f.sidecars)))
            continue
        size = len(f.data) + sum(len(v) for v in f.sidecars.values())
        while not pool.can_take(size):
            _collect(pool, entries)
        pool.submit(f.name, f.data, f.sidecars)
        del f  # only the workers hold the bytes now, not this frame while the next file is read
    while pool is not None and pool.busy:
        _collect(pool, entries)


def _collect(pool: ParserPool, entries: _Entries) -> None:
    """Wait for at least one parser to finish (or time out) and keep what it made."""
    for name, entry in pool.results():
        entries.add(name, entry)


def _pieces(entries: _Entries, skipped: list[tuple[str, str]]) -> list[EncodedPiece]:
    """The successful entries as pieces sorted by name; every failed one goes to `skipped` with its reason."""
    pieces = []
    for name in entries.order:
        e = entries.by_name[name]
        if e.get("ok"):
            pieces.append(
                EncodedPiece(
                    name,
                    entries.sources[name],
                    list(e["ids"]),
                    int(e["tonic"]),
                    float(e["bpm"]),
                    e["mode"],
                    int(e.get("n_bars", 0)),
                    e.get("stats", {}),
                )
            )
        else:
            skipped.append((name, e.get("reason", "unknown")))
    pieces.sort(key=lambda p: p.name)
    return pieces
