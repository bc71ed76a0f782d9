"""The token representation: encode -> decode is exact on the grid, grammar walks always decode, and
garbage never raises anything but DecodeError."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from music.chords import NO_CHORD, QUALITIES
from music.errors import DecodeError
from music.score import Chord, Note, Score, TimeSignature, Voicing
from music.tokens import (
    DURATIONS,
    EOS,
    MAX_NOTES_PER_ONSET,
    PITCH_MAX,
    PITCH_MIN,
    TIME_SIGNATURES,
    VELOCITIES,
    VOICING_SPREADS,
    VOICING_TOPS,
    EncodeReport,
    Representation,
)

REP = Representation()
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def scores(draw) -> Score:
    """Random scores whose every note and chord the representation can hold exactly."""
    n, d = draw(st.sampled_from(TIME_SIGNATURES))
    ts = TimeSignature(0, n, d)
    n_bars = draw(st.integers(1, 4))
    total = ts.ticks * n_bars
    tonic = draw(st.integers(0, 11))
    shift = -tonic if tonic <= 6 else 12 - tonic  # keep pitches in range after encode's transposition
    lo, hi = PITCH_MIN - min(shift, 0), PITCH_MAX - max(shift, 0)
    onsets = draw(st.lists(st.integers(0, total - 1), max_size=12, unique=True))
    melody = []
    for t in onsets:
        for p in draw(st.lists(st.integers(lo, hi), min_size=1, max_size=MAX_NOTES_PER_ONSET, unique=True)):
            melody.append(Note(p, t, draw(st.sampled_from(DURATIONS)), draw(st.sampled_from(VELOCITIES))))
    chord_onsets = sorted(draw(st.lists(st.integers(0, total - 1), max_size=5, unique=True)))
    chords = []
    for i, t in enumerate(chord_onsets):
        stop = chord_onsets[i + 1] if i + 1 < len(chord_onsets) else total
        quality = draw(st.sampled_from([*QUALITIES, NO_CHORD]))
        if quality == NO_CHORD:
            chords.append(Chord(t, stop - t, 0, NO_CHORD))
            continue
        voicing = draw(
            st.none() | st.builds(Voicing, st.sampled_from(VOICING_SPREADS), st.sampled_from(VOICING_TOPS))
        )
        chords.append(
            Chord(t, stop - t, draw(st.integers(0, 11)), quality, draw(st.integers(0, 11)), voicing)
        )
    mode = draw(st.sampled_from(("major", "minor")))
    return Score(melody, chords, [ts], 90.0, mode, tonic, n_bars)


def _notes(score: Score) -> list[tuple]:
    return sorted((n.pitch, n.start, n.duration, n.velocity) for n in score.melody)


def _chords(score: Score) -> list[tuple]:
    return sorted(
        (c.start, c.duration, c.quality)
        if c.quality == NO_CHORD
        else (c.start, c.duration, c.quality, c.root % 12, c.bass, c.voicing)
        for c in score.chords
    )


@FAST
@given(scores())
def test_encode_then_decode_is_exact(score):
    report = EncodeReport()
    ids = REP.vocab.ids(REP.encode(score, report))
    back = REP.decode(ids, tonic=score.tonic, bpm=score.bpm)
    assert report.notes_exact == report.notes_in == len(score.melody) and not report.lost
    assert _notes(back) == _notes(score)
    assert _chords(back) == _chords(score)
    assert (back.tonic, back.mode, back.n_bars) == (score.tonic, score.mode, score.n_bars)


@pytest.mark.parametrize("tonic", range(12))
def test_decode_puts_every_tonic_back_in_its_octave(tonic):
    score = Score([Note(60, 0, 12, 76), Note(67, 12, 12, 76)], [], n_bars=1, tonic=tonic)
    back = REP.decode(REP.encode(score), tonic=tonic)
    assert [n.pitch for n in back.melody] == [60, 67]


@FAST
@given(st.integers(0, 2**32 - 1), st.sampled_from(TIME_SIGNATURES))
def test_random_grammar_walks_always_decode(seed, ts):
    rng = random.Random(seed)
    header = REP.header(
        rng.choice(("major", "minor")), ts, rng.uniform(50, 170), rng.choice(("low", "mid", "high"))
    )
    state = REP.grammar(header)
    ids = REP.vocab.ids(header)
    eos = REP.vocab.id(EOS)
    for _ in range(rng.randint(1, 120)):
        allowed = np.flatnonzero(state.allowed())
        assert len(allowed) > 0
        tid = int(rng.choice(allowed))
        state.push(tid)
        ids.append(tid)
        if tid == eos:
            break
    score = REP.decode(ids)  # finished or cut short: both decode
    assert score.n_bars == state.bars


@FAST
@given(st.lists(st.integers(-10, 700), max_size=40))
def test_garbage_ids_raise_only_decode_error(ids):
    with contextlib.suppress(DecodeError):
        REP.decode(ids)


@FAST
@given(
    st.lists(st.one_of(st.integers(), st.text(max_size=8), st.none(), st.floats()), min_size=1, max_size=12)
)
def test_garbage_of_any_type_raises_only_decode_error(tokens):
    with contextlib.suppress(DecodeError):
        REP.decode(tokens)


def test_grammar_push_rejects_ids_outside_the_vocabulary():
    state = REP.grammar([])
    with pytest.raises(DecodeError):
        state.push(-1)
    with pytest.raises(DecodeError):
        state.push(len(REP.vocab))


def test_decode_accepts_a_numpy_array():
    score = Score([Note(64, 0, 12, 76)], [], n_bars=1)
    ids = np.array(REP.vocab.ids(REP.encode(score)), dtype=np.int32)
    assert [n.pitch for n in REP.decode(ids).melody] == [64]


def test_encode_counts_what_it_cannot_keep():
    score = Score([Note(10, 0, 12), Note(60, 0, 50), Note(62, 500, 12)], [], n_bars=1)
    report = EncodeReport()
    REP.encode(score, report)
    assert report.notes_in == 3 and report.notes_exact == 0
    assert set(report.lost) == {
        "pitch outside piano range (moved by octaves)",
        "duration not on the duration grid",
        "outside the piece's bars",
    }
