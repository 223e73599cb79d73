"""Typed, frozen settings of the Sequence simulator."""

from __future__ import annotations

from dataclasses import dataclass

# Ratios that turn the single ``rate`` knob into per-family traffic. They are
# module constants (not config) so every benchmark run with the same rate
# sees the same mix; see ``feed.py`` for how they are applied.
TRADING_STEP_EVERY = 20  # one trading step (1-3 orders/fills/tca events) per 20 market events
ALERT_EVERY = 500  # one SSE alert per 500 market events
MARKET_MIX: tuple[tuple[str, float], ...] = (
    ("book", 0.45),
    ("prices", 0.30),
    ("funding", 0.10),
    ("fair_price", 0.08),
    ("traces", 0.07),
)


@dataclass(frozen=True)
class SimulatorConfig:
    """What a simulator instance serves and how fast.

    ``rate`` is market-data events per second across prices, book, funding,
    fair_price and traces (split by ``MARKET_MIX``); trading events come on
    top at roughly ``rate / TRADING_STEP_EVERY`` steps per second.
    """

    host: str = "127.0.0.1"
    port: int = 0  # 0 = pick a free port
    seed: int = 1
    rate: float = 200.0
    api_keys: tuple[str, ...] = ("seq_test_key",)
    buffer_size: int = 4096  # per-client per-topic buffer, as the vendor documents
    lifecycle_ping_interval: float = 30.0
    lifecycle_interval: float = 2.0
    ledger: bool = True  # record every frame sent per connection (off for benchmarks)

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError("rate must be > 0")
        if self.buffer_size < 1:
            raise ValueError("buffer_size must be >= 1")
        if self.lifecycle_interval <= 0 or self.lifecycle_ping_interval <= 0:
            raise ValueError("lifecycle intervals must be > 0")
