"""What every render needs: the sample rate, the soundfont (checked), and the deployment's choices as one frozen
value made at the entry from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from music.errors import RenderError
from music.export import UPLOAD_LIMIT_BYTES

SAMPLE_RATE = (
    44100  # every render and the mix run at this rate (the music bus at half of it, see music.buses)
)
SILENCE_PEAK = 1e-4  # below -80 dBFS everywhere counts as silent
DEFAULT_SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")  # Debian's fluid-soundfont-gm


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


def check_soundfont(soundfont: Path) -> Path:
    """`soundfont` if it exists and starts like a SoundFont 2 file; RenderError saying what is wrong otherwise."""
    path = Path(soundfont)
    if not path.is_file():
        raise RenderError(f"soundfont not found: {path} (install fluid-soundfont-gm or set SOUNDFONT)")
    try:
        with path.open("rb") as fh:
            head = fh.read(12)
    except OSError as exc:
        raise RenderError(f"soundfont {path} cannot be read: {exc}") from exc
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise RenderError(
            f"soundfont {path} is not a SoundFont 2 file (no RIFF/sfbk header): broken or wrong file"
        )
    return path
