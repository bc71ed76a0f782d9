"""What parsing a music file found and had to change, counted for `lofi corpus stats/check`.

A module of its own because every reader fills it and the entry (`music.parse`) creates it: kept apart, the
readers need not import the entry that imports them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class ParseInfo:
    """What parsing found and had to change, for `lofi corpus stats/check` (counts)."""

    kind: str = ""  # 'pop909', 'midi', 'leadsheet'
    melody_from: str = ""  # 'track:<name>', 'skyline', 'part:<name>'
    key_from: str = ""  # 'key_audio.txt', 'key signature', 'analysis'
    chords_from: str = ""  # 'chord_midi.txt', 'chord symbols', 'inferred', 'none'
    metre: str = ""  # how an unusable metre was replaced, if it was
    tempo_from: str = ""  # 'mark' or 'default'
    beat_offset: float = 0.0  # beats a MIDI file was delayed by to put its beats on the grid
    downbeat_shift: float = 0.0  # beats a file without trusted bar lines was delayed by (inferred chords)
    notes_source: int = 0  # melody notes in the file
    notes_dropped: Counter = field(default_factory=Counter)  # reason -> count
    durations_snapped: int = 0  # durations moved to the duration grid
    chord_symbols: int = 0
    chord_symbols_exact: int = 0  # symbols whose quality has an exact QUALITIES match
    chord_approx: Counter = field(default_factory=Counter)  # source label -> count, when approximated

    def to_dict(self) -> dict:
        """A JSON-ready copy."""
        return {
            "kind": self.kind,
            "melody_from": self.melody_from,
            "key_from": self.key_from,
            "chords_from": self.chords_from,
            "metre": self.metre,
            "tempo_from": self.tempo_from,
            "beat_offset": self.beat_offset,
            "downbeat_shift": self.downbeat_shift,
            "notes_source": self.notes_source,
            "notes_dropped": dict(self.notes_dropped),
            "durations_snapped": self.durations_snapped,
            "chord_symbols": self.chord_symbols,
            "chord_symbols_exact": self.chord_symbols_exact,
            "chord_approx": dict(self.chord_approx),
        }
