"""Key names a user types: parsed to (tonic, mode), one spelling kept, bad ones told the form, 24 offered."""

from __future__ import annotations

import pytest

from music.errors import KeyNameError
from music.keys import all_keys, key_text, parse_key, suggest_keys


@pytest.mark.parametrize(
    ("typed", "key", "kept"),
    [
        ("A minor", (9, "minor"), "A minor"),
        ("Eb major", (3, "major"), "Eb major"),
        ("F# minor", (6, "minor"), "F# minor"),
        ("C#m", (1, "minor"), "C# minor"),
        ("Bbmaj", (10, "major"), "Bb major"),
        ("  g  min ", (7, "minor"), "G minor"),
        ("a-Minor", (9, "minor"), "A minor"),
        ("E♭ minor", (3, "minor"), "Eb minor"),
        ("bb", (10, None), "Bb"),  # the letter's case is free: B flat, and no mode named
        ("C", (0, None), "C"),
        ("Cb major", (11, "major"), "Cb major"),
    ],
)
def test_key_names_parse_and_keep_one_spelling(typed, key, kept):
    assert parse_key(typed) == key
    assert key_text(typed) == kept
    assert parse_key(kept) == key  # the kept spelling reads back as the same key


@pytest.mark.parametrize("typed", ["H minor", "Eb dorian", "", "   ", "C##", "minor", "A minor key", "12"])
def test_a_bad_key_says_the_form_expected(typed):
    with pytest.raises(
        KeyNameError, match=r'is not a key; write a note A to G.*e\.g\. "A minor", "Eb major"'
    ):
        parse_key(typed)


def test_a_bad_key_is_quoted_short():
    with pytest.raises(KeyNameError) as caught:
        parse_key("x" * 500)
    assert len(str(caught.value)) < 200


def test_the_24_keys_are_offered_each_once():
    keys = all_keys()
    assert len(keys) == 24 and len(set(keys)) == 24
    assert {parse_key(k) for k in keys} == {(t, m) for t in range(12) for m in ("major", "minor")}
    assert keys[:3] == ["C major", "C minor", "Db major"]


@pytest.mark.parametrize(
    ("typed", "first"),
    [
        ("", "C major"),
        ("Am", "A minor"),  # "m" is minor, A major follows as a name starting the same
        ("d#m", "Eb minor"),  # a key spelt otherwise is offered as the list spells it
        ("e", "E major"),
        ("A min", "A minor"),
        ("nonsense", "C major"),  # nothing reads as a key: all 24, so the user sees the form
    ],
)
def test_suggestions_put_the_typed_key_first(typed, first):
    offered = suggest_keys(typed)
    assert offered[0] == first and 1 <= len(offered) <= 24
    assert set(offered) <= set(all_keys())


def test_suggestions_narrow_as_the_user_types():
    assert suggest_keys("Am") == ["A minor", "A major"]
    assert suggest_keys("c#") == ["Db major", "C# minor"]
    assert len(suggest_keys("", limit=5)) == 5
