"""A server's own music for a retrain: one attachment (a zip, or a single MIDI/MusicXML file) read by the rules
`lofi train` reads a corpus by (`training.corpus`: the member cap, unsafe paths, zip bombs, per-file size and
parse limits in parser processes).

A local corpus skips what it cannot read and goes on. An attachment comes from a chat instead, so it is
refused as a whole when the archive itself is hostile (too many members, a path escaping the folder, a link,
a likely zip bomb, a member inflating past its header) or when nothing in it can be used; pieces that merely
fail to parse are skipped and reported.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from music.parse import MUSIC_SUFFIXES, SIDECARS
from training.corpus import ZIP_SUFFIXES, EncodedPiece, load_corpus
from training.errors import TrainingError

REPORTED_REASONS = 5  # the first few skip reasons travel to the chat; the counts cover the rest
# What `training.corpus` says of a hostile archive or member (its skip reasons contain these).
HOSTILE = (
    "archive has ",  # more entries than MAX_ENTRIES (read from the end record)
    "unsafe path in archive",
    "symbolic link",
    "encrypted archive member",
    "compression ratio above",  # a likely zip bomb
    "member larger than",  # uncompressed size over the per-member limit, or past what its header said
    "archive holds more than",  # over MAX_TOTAL_BYTES uncompressed
)
NESTED = (".zip", ".rar", ".7z", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".zst")


class UploadRefused(TrainingError):
    """The attached music is hostile or holds nothing to train on; `str()` says why, for the chat."""


@dataclass
class UploadReport:
    """What was read of an attachment: its pieces (training only) and what was skipped, with reasons."""

    name: str
    kind: str  # "zip" or "file"
    pieces: list[EncodedPiece]
    skipped: list[tuple[str, str]]

    def event(self) -> dict[str, Any]:
        """The report as the runner's `upload` event (counts and the first few reasons)."""
        return {
            "event": "upload",
            "name": self.name,
            "kind": self.kind,
            "read": len(self.pieces),
            "skipped": len(self.skipped),
            "reasons": [list(r) for r in self.skipped[:REPORTED_REASONS]],
        }


def load_upload(path: Path, name: str, cache_dir: Path | None = None) -> UploadReport:
    """Read the attachment at `path` (called `name` by its sender) as training pieces.

    Raises:
        UploadRefused: not a zip or music file, a hostile archive (with the first hostile reason), or
            nothing usable in it (with the first reasons its files were skipped for).
    """
    path = Path(path)
    lower = path.name.lower()
    if not lower.endswith(ZIP_SUFFIXES + MUSIC_SUFFIXES):
        raise UploadRefused(f"{name} is neither a zip nor a MIDI/MusicXML file")
    kind = "zip" if lower.endswith(ZIP_SUFFIXES) else "file"
    result = load_corpus([path], cache_dir=cache_dir, progress=False)
    skipped = [(_shown(where, path, name), reason) for where, reason in result.skipped]
    hostile = [(where, reason) for where, reason in skipped if any(h in reason for h in HOSTILE)]
    if hostile:
        where, reason = hostile[0]
        raise UploadRefused(f"{name} was refused: {where}: {reason}")
    if kind == "zip":
        skipped += _not_read(path)
    if not result.pieces:
        why = (
            "; ".join(f"{w}: {r}" for w, r in skipped[:REPORTED_REASONS]) or "no MIDI or MusicXML files in it"
        )
        raise UploadRefused(f"nothing usable in {name} ({why})")
    return UploadReport(name, kind, result.pieces, skipped)


def _shown(where: str, path: Path, name: str) -> str:
    """A skip's place as its sender knows it: the member's path in their zip, or their file's name."""
    for prefix in (f"{path.name}:", f"{path.name}/"):
        if where.startswith(prefix):
            return where[len(prefix) :]
    return name if where in (str(path), path.name) else where


def _not_read(path: Path) -> list[tuple[str, str]]:
    """The members `training.corpus` passes over without a word (not music), so the sender learns of them.

    Called only once the archive passed the corpus's checks, so its directory has at most MAX_ENTRIES names.
    """
    out: list[tuple[str, str]] = []
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):  # the corpus already said why it is unreadable
        return out
    with zf:
        for info in zf.infolist():
            base = info.filename.rsplit("/", 1)[-1]
            lower = base.lower()
            if info.is_dir() or lower.endswith(MUSIC_SUFFIXES) or base in SIDECARS or base.startswith("."):
                continue
            out.append(
                (info.filename, "nested archive (not opened)" if lower.endswith(NESTED) else "not music")
            )
    return out
