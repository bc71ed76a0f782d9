"""What every render needs from the deployment, as one frozen value made at the entry from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from music.export import UPLOAD_LIMIT_BYTES
from music.render import DEFAULT_SOUNDFONT


@dataclass(frozen=True)
class RenderConfig:
    """The soundfont, the groove library (and its cache) and the largest MP3 a track may be.

    One value instead of four keyword arguments threaded through seven signatures: the entry point builds it
    once from its settings, the composing engine holds it, and `music.track.render_track` reads it.
    """

    soundfont: Path = DEFAULT_SOUNDFONT
    groove_dir: Path | None = None  # None: the library bundled with the package
    cache_dir: Path | None = None  # None: no cache of the parsed grooves
    size_limit: int = UPLOAD_LIMIT_BYTES  # bytes; Discord's default upload limit
