"""parse_duration: the lengths users type."""

from __future__ import annotations

import pytest

from music.durations import parse_duration


@pytest.mark.parametrize(
    "text,seconds",
    [
        ("2m", 120),
        ("90s", 90),
        ("1m30s", 90),
        ("1:30", 90),
        ("120", 120),
        (" 2M ", 120),
        ("1 min 30 sec", 90),
        ("0:01:30", 90),
        ("1h", 3600),
        ("1.5m", 90),
        ("45.5", 45.5),
        ("2 minutes", 120),
    ],
)
def test_valid_lengths(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "abc", "2x", "30s2m", "1m1m", "0", "0s", "-5", "1:75", "m", "1:2:3:4", "nan"]
)
def test_invalid_lengths_raise_value_error(text):
    with pytest.raises(ValueError, match="length|60|units"):
        parse_duration(text)
