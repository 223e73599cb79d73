"""The REST client against the real simulator over loopback: retries, errors, helpers."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from connector.errors import TransientError
from connector.sandbox.simulator import Simulator, SimulatorConfig
from connector.source.reconnect import AuthError
from connector.source.rest import RestError, RestUnavailable, SequenceRest

KEY = "seq_test_key"


def with_sim(test: Callable[[Simulator], Awaitable[None]], rate: float = 0.001) -> None:
    async def main() -> None:
        sim = Simulator(SimulatorConfig(seed=7, rate=rate))
        await sim.start()
        sim.state.feed.emit(2000)  # a deterministic market and trading history
        try:
            await asyncio.wait_for(test(sim), 30)
        finally:
            await sim.stop()

    asyncio.run(main())


async def post_fault(sim: Simulator, body: dict[str, object]) -> None:
    async with aiohttp.ClientSession() as s, s.post(f"{sim.base_url}/_sim/faults",
                                                    json=body) as resp:
        assert resp.status == 200, await resp.text()


def test_429_with_retry_after_is_retried_then_succeeds(caplog: pytest.LogCaptureFixture) -> None:
    async def test(sim: Simulator) -> None:
        await post_fault(sim, {"rest_429": {"count": 2, "retry_after": 1}})
        async with SequenceRest(sim.base_url, KEY) as rest:
            quote = await rest.quote("BTC-USD")
            assert quote["symbol"] == "BTC-USD"
            assert rest.requests == 3 and rest.retries == 2
        assert sim.faults.rest_429 == 0

    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="connector.source.rest")
    with_sim(test)
    assert "rest retry" in caplog.text
    assert KEY not in caplog.text  # the key is never logged


def test_429_beyond_the_budget_is_transient() -> None:
    async def test(sim: Simulator) -> None:
        await post_fault(sim, {"rest_429": {"count": 5, "retry_after": 0}})
        async with SequenceRest(sim.base_url, KEY, max_attempts=2) as rest:
            with pytest.raises(RestUnavailable) as info:
                await rest.funding_rates()
            assert rest.requests == 2
        assert info.value.status == 429 and info.value.code == "RATE_LIMITED"
        assert isinstance(info.value, TransientError)
        await post_fault(sim, {"reset": True})

    with_sim(test)


def test_bad_key_fails_fast_with_auth_error() -> None:
    async def test(sim: Simulator) -> None:
        async with SequenceRest(sim.base_url, "seq_wrong_key") as rest:
            with pytest.raises(AuthError) as info:
                await rest.quote("BTC-USD")
            assert rest.requests == 1 and rest.retries == 0
        assert "seq_wrong_key" not in str(info.value)
        assert "seq_wrong_key" not in repr(rest)

    with_sim(test)


def test_404_and_400_fail_fast_with_vendor_code() -> None:
    async def test(sim: Simulator) -> None:
        async with SequenceRest(sim.base_url, KEY) as rest:
            with pytest.raises(RestError) as info:
                await rest.quote("NOPE-XYZ")
            assert not isinstance(info.value, RestUnavailable)
            assert info.value.status == 404 and info.value.code == "NOT_FOUND"
            assert info.value.request_id
            with pytest.raises(RestError) as bad:
                await rest.page("fills", 0, 0)  # limit 0 is out of range
            assert bad.value.status == 400 and bad.value.code == "INVALID_PARAMS"
            assert rest.requests == 2

    with_sim(test)


def test_network_errors_retry_within_budget() -> None:
    async def test() -> None:
        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        async with SequenceRest(f"http://127.0.0.1:{port}", KEY, max_attempts=2,
                                timeout_s=2) as rest:
            with pytest.raises(RestUnavailable) as info:
                await rest.get_json("/v1/health/live")
            assert rest.requests == 2 and info.value.status is None

    asyncio.run(test())


def test_helpers_funding_filters_pages_and_encoded_addresses() -> None:
    async def test(sim: Simulator) -> None:
        async with SequenceRest(sim.base_url, KEY) as rest:
            every = await rest.funding_rates()
            assert len(every) == 8
            binance = await rest.funding_rates(venue="binance")
            assert binance and {r["venue"] for r in binance} == {"binance"}
            one = await rest.funding_rates(venue="okx", symbol="ETH-USDT")
            assert [(r["venue"], r["symbol"]) for r in one] == [("okx", "ETH-USDT")]
            rows, more = await rest.page("fills", 3, 0)
            fills = list(reversed(sim.state.feed.trading.fills))
            assert rows == fills[:3] and more is (len(fills) > 3)
            reports, _ = await rest.page("tca", 2, 0)
            assert reports == list(reversed(sim.state.feed.trading.tca))[:2]
            # a prediction address holds ':', so it travels percent-encoded
            symbol = next(s["symbol"] for s in sim.state.universe.symbols()
                          if ":" in s["symbol"])
            quote = await rest.quote(symbol, depth=3)
            assert quote["symbol"] == symbol
            assert all(len(v["bids"]) <= 3 for v in quote["venues"])

    with_sim(test)
