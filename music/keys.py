"""Key names a user may type ("A minor", "Eb major", "F#m", "Bbmaj", "C#") and the 24 keys offered.

A request's key fixes the track's tonic and, when it names one, its mode; a key without a mode word takes the
mood's mode (a "rainy" track "in C" is in C minor). Pure Python: the bot's autocomplete imports it.
"""

from __future__ import annotations

import re

from music.errors import KeyNameError
from music.limits import quoted

LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
ACCIDENTALS = {"": 0, "#": 1, "♯": 1, "b": -1, "♭": -1}
MODE_WORDS = {"m": "minor", "min": "minor", "minor": "minor", "maj": "major", "major": "major"}
# The letter's case is free, so "bb" is B flat; one accidental at most (no key is written with two).
_KEY = re.compile(r"([A-Ga-g])([#♯b♭]?)[\s-]*([A-Za-z]*)")
FORM = 'a note A to G, then # or b if sharp or flat, then major or minor (or m), e.g. "A minor", "Eb major", "F#m"'
# The spelling offered for each tonic: the one with the fewest sharps or flats, as most charts write it.
SPELLING = {
    "major": ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"),
    "minor": ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B"),
}


def _parts(text: str) -> tuple[str, str, str]:
    """(letter, accidental, mode word) of a key name; KeyNameError saying the form expected."""
    found = _KEY.fullmatch(text.strip()) if isinstance(text, str) else None
    if found is None or found.group(3).lower() not in ("", *MODE_WORDS):
        raise KeyNameError(f"{quoted(text)} is not a key; write {FORM}")
    letter, accidental, word = found.groups()
    return letter.upper(), {"♯": "#", "♭": "b"}.get(accidental, accidental), word.lower()


def parse_key(text: str) -> tuple[int, str | None]:
    """(tonic pitch class, 'major' | 'minor' | None when no mode is named); KeyNameError saying the form."""
    letter, accidental, word = _parts(text)
    return (LETTERS[letter] + ACCIDENTALS[accidental]) % 12, MODE_WORDS.get(word)


def key_text(text: str) -> str:
    """`text` written the one way a request keeps it: "Eb major", "F# minor", or "C#" (the mood's mode)."""
    letter, accidental, word = _parts(text)
    mode = MODE_WORDS.get(word)
    return f"{letter}{accidental}" + (f" {mode}" if mode else "")


def all_keys() -> list[str]:
    """The 24 keys by tonic, each major then minor: "C major", "C minor", "Db major", "C# minor", ..."""
    return [f"{SPELLING[mode][tonic]} {mode}" for tonic in range(12) for mode in ("major", "minor")]


def suggest_keys(typed: str, limit: int = 25) -> list[str]:
    """Keys for an autocomplete: first those that read as the same key however spelt ("Am" is A minor, "d#m"
    is Eb minor; a bare tonic gives both modes), then those whose name starts like `typed`; all 24 for
    nothing typed or nothing that reads as a key (the list then shows the form)."""
    keys = all_keys()
    try:
        tonic, mode = parse_key(typed)
        picked = [k for k in keys if parse_key(k)[0] == tonic and mode in (None, parse_key(k)[1])]
    except KeyNameError:
        picked = []
    squeeze = lambda s: re.sub(r"[\s-]+", "", s).lower()  # noqa: E731
    picked += [k for k in keys if k not in picked and squeeze(k).startswith(squeeze(typed))]
    return (picked or keys)[:limit]
