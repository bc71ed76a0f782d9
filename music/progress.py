"""The stages of making a track, and the callback that hears about them (one shape for every layer)."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol


class Stage(StrEnum):
    """A stage of one track; the values are what front ends show (a StrEnum compares equal to them)."""

    COMPOSING = "composing"  # serving: the ensemble generates tokens (reported with a fraction)
    ARRANGING = "arranging"
    RENDERING = "rendering"
    MASTERING = "mastering"
    ENCODING = "encoding"


class Progress(Protocol):
    """Called with each stage as it starts; COMPOSING also with the fraction of bars done (0..1)."""

    def __call__(self, stage: Stage, fraction: float | None = None, /) -> object: ...
