"""Fuzz passes over what users and models hand us: lengths (any text -> seconds or a short ValueError) and token
sequences (any ids, strings or junk, and grammatical headers followed by garbage -> a Score or DecodeError,
never another exception)."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from music.durations import parse_duration, parse_length
from music.errors import DecodeError
from music.tokens import DENSITIES, TIME_SIGNATURES, Representation

REP = Representation()
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MESSAGE_MAX = 300  # an error message about user input stays short whatever the input

length_like = st.one_of(
    st.text(max_size=60),
    st.text(alphabet="0123456789.:hmsinuteco ", max_size=40),
    st.from_regex(r"\A\s*\d{1,6}(\.\d{0,4})?\s*(h|m|s|min|sec|hours)?\s*\Z"),
    st.builds(lambda n, c: c * n, st.integers(100, 8000), st.sampled_from("9x: ")),  # very long input
)


@FUZZ
@given(length_like)
def test_the_length_parser_returns_seconds_or_a_short_value_error(text):
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        assert isinstance(exc, ValueError) and len(str(exc)) < MESSAGE_MAX, str(exc)[
            :200
        ]  # LengthTooLong is one
    else:
        assert isinstance(seconds, float) and math.isfinite(seconds) and seconds > 0


@FUZZ
@given(length_like, st.floats(1, 100), st.floats(100, 10_000))
def test_the_length_limits_hold(text, low, high):
    # the bot and the CLI both call music.durations.parse_length
    try:
        seconds = parse_length(text, low, high)
    except ValueError as exc:
        assert len(str(exc)) < MESSAGE_MAX
    else:
        assert low <= seconds <= high


junk = st.one_of(
    st.integers(),
    st.integers(-5, len(REP.vocab) + 5),
    st.text(max_size=12),
    st.sampled_from(REP.vocab.tokens),
    st.none(),
    st.floats(allow_nan=True),
    st.binary(max_size=4),
    st.builds(np.int64, st.integers(-(2**40), 2**40)),
    st.builds(np.float32, st.floats(-1e6, 1e6, width=32)),
)


@FUZZ
@given(st.lists(junk, max_size=60))
def test_the_decoder_raises_only_decode_error_on_garbage(tokens):
    with contextlib.suppress(DecodeError):
        REP.decode(tokens)


@st.composite
def headed_garbage(draw) -> list[str]:
    """A valid header, then tokens drawn from the vocabulary in any order (the grammar is the decoder's)."""
    mode = draw(st.sampled_from(["major", "minor"]))
    ts = draw(st.sampled_from(TIME_SIGNATURES))
    header = REP.header(mode, ts, draw(st.floats(30, 250)), draw(st.sampled_from(DENSITIES)))
    body = draw(st.lists(st.sampled_from(REP.vocab.tokens), max_size=200))
    return header + body


@FUZZ
@given(headed_garbage(), st.integers(-30, 30), st.one_of(st.none(), st.floats(1, 400)))
def test_the_decoder_raises_only_decode_error_after_a_valid_header(tokens, tonic, bpm):
    for seq in (tokens, REP.vocab.ids(tokens)):
        with contextlib.suppress(DecodeError):
            REP.decode(seq, tonic=tonic, bpm=bpm)


def test_a_length_of_250_digits_is_refused_in_a_short_message():
    # found by the fuzz test above: a finite but huge length was printed in full in the limits message
    with pytest.raises(ValueError) as refused:
        parse_length("9" * 250, 15.0, 600.0)
    assert str(refused.value) == "a track must be between 15s and 10m00s long, not more than 11 days"
