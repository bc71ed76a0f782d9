"""Human track lengths (`2m`, `90s`, `1m30s`, `1:30`, `120`) to seconds; pure, shared by the bot and the CLI."""

from __future__ import annotations

import math
import re

from music.errors import LengthTooLong
from music.limits import quoted

_UNITS = {
    "h": 3600.0,
    "hr": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
}
_NUMBER = r"\d+(?:\.\d+)?|\.\d+"
_PART = re.compile(rf"\s*({_NUMBER})\s*([a-z]+)")
_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d{1,2}(?:\.\d+)?)$")


def parse_duration(text: str) -> float:
    """Seconds written in `text`; ValueError with a clear message if it is not a positive length.

    Accepts a plain number of seconds (`120`, `90.5`), unit parts in decreasing order (`2m`, `90s`,
    `1m30s`, `1 min 30 sec`, `1h`), or a clock (`1:30`, `0:01:30`).
    """
    raw = text
    text = str(text).strip().lower()
    if not text:
        raise ValueError("empty length; write e.g. 2m, 90s, 1m30s, 1:30 or 120")
    seconds: float | None = None
    if re.fullmatch(_NUMBER, text):
        seconds = float(text)
    elif m := _CLOCK.match(text):
        h, mnt, sec = m.groups()
        if float(sec) >= 60 or (h is not None and int(mnt) >= 60):
            raise ValueError(f"{quoted(raw)}: minutes and seconds in a clock length must be below 60")
        seconds = int(h or 0) * 3600 + int(mnt) * 60 + float(sec)
    else:
        pos, total, last_scale = 0, 0.0, math.inf
        while pos < len(text):
            m = _PART.match(text, pos)
            if not m or m.group(2) not in _UNITS:
                raise ValueError(
                    f"cannot read {quoted(raw)} as a length; write e.g. 2m, 90s, 1m30s, 1:30 or 120"
                )
            scale = _UNITS[m.group(2)]
            if scale >= last_scale:
                raise ValueError(
                    f"{quoted(raw)}: units must go from larger to smaller (e.g. 1m30s), each once"
                )
            last_scale = scale
            total += float(m.group(1)) * scale
            pos = m.end()
            while pos < len(text) and text[pos] == " ":
                pos += 1
        seconds = total
    if math.isinf(seconds):  # digits beyond a float's range: a huge length, not a zero one
        raise LengthTooLong(f"{quoted(raw)} is too long to be a length")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{quoted(raw)}: a length must be more than 0 seconds")
    return seconds


def clock_text(seconds: float) -> str:
    """`1m30s`, `45s`: a length as the messages about length limits write it."""
    if not math.isfinite(seconds):
        return "forever"
    # a 250-digit length would be a 250-digit message: past 11 days the number says nothing
    if seconds >= 1e6:
        return "more than 11 days"
    seconds = round(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def parse_length(text: str, min_s: float, max_s: float) -> float:
    """Seconds in `text` (see `parse_duration`) within [min_s, max_s].

    ValueError: `parse_duration`'s for text that is not a length, one naming the limits for a length outside
    them. The bot (`bot.transformers.DurationTransformer`, which words the error as a BadLength) and `lofi
    generate` both call this, so they accept the same lengths.
    """
    try:
        seconds = float(parse_duration(str(text)))
    except LengthTooLong:
        raise ValueError(
            f"{quoted(text)} is too long: a track must be between {clock_text(min_s)} and "
            f"{clock_text(max_s)} long"
        ) from None
    if not min_s <= seconds <= max_s:
        raise ValueError(
            f"a track must be between {clock_text(min_s)} and {clock_text(max_s)} long, not {clock_text(seconds)}"
        )
    return seconds
