"""A connector's counters read the way Prometheus scrapes them.

prometheus_client keeps a counter's value private; its registry's
``get_sample_value`` is the public read, and it checks the exported name too.
"""

from __future__ import annotations

from connector.observe.metrics import Metrics


def counted(metrics: Metrics, name: str, **labels: str) -> float:
    """``sequence_connector_<name>_total`` for ``labels``; 0 when never counted."""
    value = metrics.registry.get_sample_value(f"sequence_connector_{name}_total", labels)
    return 0.0 if value is None else value
