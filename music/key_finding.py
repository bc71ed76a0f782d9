"""A piece's key from how long each pitch class sounds, for files that do not say their key."""

from __future__ import annotations

# Krumhansl-Kessler key profiles (the ones music21's KrumhanslKessler analysis uses).
KK_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
KK_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)


def key_from_histogram(hist: list[float], candidates: list[tuple[int, str]] | None = None) -> tuple[int, str]:
    """(tonic, mode) best correlated with the Krumhansl-Kessler profiles (over `candidates` if given)."""
    import numpy as np

    h = np.asarray(hist, dtype=float)
    if h.sum() <= 0:
        return 0, "major"
    best, best_r = (0, "major"), -2.0
    for tonic in range(12):
        for mode, prof in (("major", KK_MAJOR), ("minor", KK_MINOR)):
            if candidates is not None and (tonic, mode) not in candidates:
                continue
            p = np.roll(np.asarray(prof), tonic)
            r = float(np.corrcoef(h, p)[0, 1]) if h.std() > 0 else 0.0
            if r > best_r:
                best, best_r = (tonic, mode), r
    return best
