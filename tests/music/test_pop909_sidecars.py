"""POP909's side-car annotations: the voicing each chord takes from the piano."""

from __future__ import annotations

from music.pop909_sidecars import voicing_of
from music.score import Voicing


def test_voicing_spread_and_top_degree():
    assert voicing_of(0, "maj", [48, 52, 55]) == Voicing("close", 5)
    assert voicing_of(0, "maj7", [36, 52, 59, 64, 71]) == Voicing("open", 7)
    assert voicing_of(0, "maj", []) is None
