"""Comparing a feature's distribution over generated tracks with its distribution over real pieces.

The overlapping area follows Yang & Lerch, "On the evaluation of generative models in music" (Neural
Computing and Applications, 2018): each set of values is smoothed with a Gaussian kernel density estimate and
the area under the smaller of the two densities is integrated (1 = the same distribution, 0 = disjoint). They
apply it to distributions of pairwise distances (intra-set vs inter-set); here it is applied to the feature
values themselves, the common simplification, which reads directly as "do the generated tracks look like
the real ones on this feature".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

GRID_POINTS = 2048


def finite(values: Iterable[float | None]) -> np.ndarray:
    """The finite values as a float64 array (None and NaN dropped)."""
    out = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return np.asarray(out, np.float64)


def bandwidth(x: np.ndarray, scale: float) -> float:
    """Silverman's rule-of-thumb kernel width, floored at 1% of `scale` so a constant sample still has one."""
    n = len(x)
    spread = float(np.std(x, ddof=1)) if n > 1 else 0.0
    iqr = float(np.subtract(*np.percentile(x, [75, 25]))) if n > 1 else 0.0
    if iqr > 0:
        spread = min(spread, iqr / 1.34)
    return max(0.9 * spread * n ** (-0.2), 0.01 * scale)


def kde(x: np.ndarray, grid: np.ndarray, width: float) -> np.ndarray:
    """Gaussian kernel density of the sample `x` on `grid`, normalised to integrate to 1 there."""
    z = (grid[:, None] - x[None, :]) / width
    d = np.exp(-0.5 * z * z).sum(axis=1)
    area = np.trapezoid(d, grid)
    return d / area if area > 0 else d


def kde_overlap(a: Sequence[float], b: Sequence[float]) -> float:
    """Overlapping area of the kernel density estimates of two samples (NaN if either has no finite value).

    Args:
        a, b: the two samples (NaN and None are ignored).
    Returns:
        The integral of min(p_a, p_b), in [0, 1].
    """
    a, b = finite(a), finite(b)
    if not len(a) or not len(b):
        return math.nan
    both = np.concatenate([a, b])
    scale = max(float(both.max() - both.min()), float(np.abs(both).max()), 1e-9)
    wa, wb = bandwidth(a, scale), bandwidth(b, scale)
    pad = 4 * max(wa, wb)
    grid = np.linspace(both.min() - pad, both.max() + pad, GRID_POINTS)
    overlap = float(np.trapezoid(np.minimum(kde(a, grid, wa), kde(b, grid, wb)), grid))
    return min(max(overlap, 0.0), 1.0)


def percentiles(
    values: Iterable[float | None], qs: Sequence[float] = (10, 50, 90)
) -> dict[str, float | None]:
    """{'p10': ..., 'p50': ..., 'p90': ...} of the finite values (None when there are none)."""
    x = finite(values)
    return {f"p{q:g}": (float(np.percentile(x, q)) if len(x) else None) for q in qs}


def compare_feature(generated: Sequence[float | None], real: Sequence[float | None]) -> dict:
    """One feature, generated vs real: the generated median, the real 10/50/90th percentiles, whether the
    median lies inside the real 10-90% range, the overlapping area, and how many values each side had."""
    g, r = finite(generated), finite(real)
    median = float(np.median(g)) if len(g) else None
    real_p = percentiles(r)
    inside = median is not None and real_p["p10"] is not None and real_p["p10"] <= median <= real_p["p90"]
    overlap = kde_overlap(g, r)
    return {
        "generated_median": _round(median),
        "real_p10": _round(real_p["p10"]),
        "real_p50": _round(real_p["p50"]),
        "real_p90": _round(real_p["p90"]),
        "inside_real_10_90": bool(inside),
        "overlap": _round(overlap),
        "generated_n": int(len(g)),
        "generated_undefined": int(len(generated) - len(g)),
        "real_n": int(len(r)),
        "real_undefined": int(len(real) - len(r)),
    }


def _round(x: float | None, digits: int = 4) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), digits)
