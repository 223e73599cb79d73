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


QUANTILES = (("p50", 50.0), ("p99", 99.0), ("p999", 99.9))
WARMUP_FRACTION = 0.01  # the first 1% of records (connection warm-up) is not counted


def latency_ms(samples_ns: Sequence[int]) -> dict[str, float]:
    """p50, p99, p999 and max in ms of per-record latencies (ns), in arrival
    order; the first ``WARMUP_FRACTION`` of them is left out as warm-up."""
    lat = sorted(samples_ns[int(len(samples_ns) * WARMUP_FRACTION):])
    out = {name: percentile(lat, q) / 1e6 for name, q in QUANTILES}
    out["max"] = lat[-1] / 1e6
    return out
