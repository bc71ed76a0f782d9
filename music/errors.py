"""Errors of the music domain."""


class MusicError(Exception):
    """Base class of every error raised by `music`."""


class DecodeError(MusicError, ValueError):
    """A token sequence that does not follow the representation's grammar."""


class CorpusFileError(MusicError):
    """A corpus file that cannot be read as music (corrupt, truncated, not music, unsupported)."""


class RenderError(MusicError):
    """Rendering audio failed: missing or broken soundfont, FluidSynth failure, silent output."""


class OutOfSpace(RenderError):
    """The disk a track is written to is full (ENOSPC): said as such, never as an encoder problem."""


class MoodError(MusicError, ValueError):
    """An unknown mood or an invalid mood preset file."""


class LengthTooLong(MusicError, ValueError):
    """A length whose digits overflow a float (thousands of digits): too long, whatever the limits."""


class KeyNameError(MusicError, ValueError):
    """A key a user asked for that is not a key name ("H minor", "Eb dorian", "")."""
