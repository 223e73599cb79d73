"""Small statistics helpers shared by the workers and the report."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (q in 0..100)."""
    if not ordered:
        raise ValueError("no samples")
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100), at least 1
    return float(ordered[min(int(rank), len(ordered)) - 1])


def spread(values: Sequence[float]) -> tuple[float, float, float]:
    """(median, min, max) of the runs."""
    return statistics.median(values), min(values), max(values)
