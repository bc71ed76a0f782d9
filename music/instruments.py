"""Where each part's instrument comes from: a source per MIDI channel on top of the General MIDI soundfont.

The General MIDI font (`RenderConfig.soundfont`, FluidR3_GM) plays every part unless a better source is
installed for it; a missing or broken source file leaves that part on the GM font, so rendering never depends
on one. The choice was measured (`bench/bench_instruments.py`, README "Instrument sources"): only the drums
changed. AVL Drumkits' kits have five sampled velocity layers per drum (FluidR3's hats have one), so ghost
notes and accents differ in timbre as well as level. MuseScore General was measured and not chosen: its
Rhodes, bass, vibraphone and nylon guitar are FluidR3's own samples in mono (fewer velocity zones).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from music.errors import RenderError
from music.limits import DRUM_CHANNEL
from music.render_config import check_soundfont


@dataclass(frozen=True)
class Source:
    """One part's instrument: a preset of a soundfont, and the notes it plays for General MIDI's.

    `notes` maps a GM note to the preset's (AVL's 4-piece kits put the hat swish and crash choke where GM
    has toms): (gm, font) pairs, a tuple so that the value stays hashable."""

    name: str
    soundfont: Path
    bank: int
    program: int
    notes: tuple[tuple[int, int], ...] = ()
    package: str = ""  # the Debian package that installs it (scripts/setup-system.sh)


AVL_DIR = Path("/usr/share/sounds/sf2")


def _avl_kit(name: str, file: str) -> Source:
    """One of AVL Drumkits' 4-piece kits (Glen MacArthur, CC-BY-SA-3.0): GM's toms onto its two."""
    return Source(
        f"AVL Drumkits {name}",
        AVL_DIR / file,
        bank=0,
        program=0,
        notes=((43, 41), (47, 45), (48, 45), (50, 45)),
        package="avldrums.lv2-soundfont",
    )


AVL_RED_ZEPPELIN = _avl_kit("Red Zeppelin", "Red_Zeppelin_4_LV2.sf2")  # Ludwig kit, porkpie snare
AVL_BLACK_PEARL = _avl_kit("Black Pearl", "Black_Pearl_4_LV2.sf2")

# The chosen source per MIDI channel (music.arrange.CHANNELS: keys 0, bass 1, melody 2, drums 9).
CHOSEN: dict[int, Source] = {DRUM_CHANNEL: AVL_RED_ZEPPELIN}


def usable(source: Source) -> bool:
    """True when `source`'s soundfont is installed and starts like a SoundFont file."""
    try:
        check_soundfont(source.soundfont)
    except RenderError:
        return False
    return True


@lru_cache(maxsize=8)
def _installed(chosen: tuple[tuple[int, Source], ...]) -> tuple[tuple[int, Source], ...]:
    return tuple((ch, src) for ch, src in chosen if usable(src))


def channel_sources(channels: frozenset[int] | None = None) -> tuple[tuple[int, Source], ...]:
    """(channel, source) of the chosen sources that are installed, of `channels` (None: all); the other
    channels play the GM font."""
    chosen = sorted((ch, src) for ch, src in CHOSEN.items() if channels is None or ch in channels)
    return _installed(tuple(chosen))
