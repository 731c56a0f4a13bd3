"""Issue 11, done when: a live run against the sandbox on two Binance symbols warms up from history
and signals on its first live bars.

The sandbox's clock is frozen (it moves only when the test advances it), so the run is exact: at
start each feed reads its market's history from the venue's REST klines, the strategy learns from
it and nothing is traded on it; then every live bar signals as the same core, warmed on the same
bars of the bundled file, signals in-process, on bars where a cold core is still blind.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.core.strategies.book import StrategyBook
from actors.data.candles import load_table
from actors.data.replay import candle_events
from actors.domain.names import feed_name, strategy_name
from config.models import MeanReversionConfig, Settings
from ops.sandbox.binance import HISTORY_BARS, SANDBOX_MARKETS
from ops.sandbox_harness import http_json
from supervisor.control import runtime
from tests.runtime_harness import live_settings, sandbox_venues, wait_for

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_local")]

BTC, ETH = "binance:BTC/USDT", "binance:ETH/USDT"
MARKETS = (BTC, ETH)
LIVE_BARS = 3
# Bands a quarter of a std wide and an RSI threshold at 50: a warm core signals on most bars, and
# no core can before it has seen bb_period (60) bars.
STRATEGY = MeanReversionConfig(
    name="warm_mr",
    markets=MARKETS,
    allocation=0.4,
    bb_period=60,
    bb_std=0.25,
    rsi_buy=49.9,
    rsi_sell=50.1,
)


@pytest.fixture(scope="module")
def frozen_sandbox() -> Iterator[dict[str, Any]]:
    """Both sandbox venues, the Binance clock frozen at its replay's start until advanced."""
    yield from sandbox_venues(speed=0.0)


def _settings(tmp: Path, sandbox: dict[str, Any]) -> Settings:
    settings = live_settings(tmp, sandbox, "t-warmup")
    return settings.model_copy(update={"strategies": [STRATEGY]})


def _expected(market: str) -> tuple[int, list[int], list[int]]:
    """(warm-up bars, signals per live bar of a warm core, of a cold one) from the bundled file."""
    candles = list(candle_events(load_table(SANDBOX_MARKETS[market]), market))
    warm, cold = StrategyBook(STRATEGY), StrategyBook(STRATEGY)
    n = warm.warmup_bars(60_000, market)
    for candle in candles[HISTORY_BARS - n + 1 : HISTORY_BARS + 1]:  # up to the sandbox's current bar
        warm.on_candle(candle)
    live = candles[HISTORY_BARS + 1 : HISTORY_BARS + 1 + LIVE_BARS]
    return n, [len(warm.on_candle(c)) for c in live], [len(cold.on_candle(c)) for c in live]


def _detail(settings: Settings, name: str) -> dict[str, Any]:
    actors = runtime.status(settings)["actors"]
    return next((a["detail"] for a in actors if a["name"] == name), {})


def _markets(settings: Settings) -> dict[str, dict[str, int]]:
    markets: dict[str, dict[str, int]] = _detail(settings, strategy_name(STRATEGY.name)).get("markets", {})
    return markets


def test_live_run_on_two_symbols_warms_up_from_history_and_signals_on_its_first_live_bars(
    tmp_path: Path, frozen_sandbox: dict[str, Any]
) -> None:
    expected = {m: _expected(m) for m in MARKETS}
    for market, (n, warm, cold) in expected.items():
        assert n == 60
        assert warm[0] >= 1, market  # the data and params make the first live bar signal
        assert cold == [0] * LIVE_BARS, market  # where a cold strategy could not
    base = frozen_sandbox["binance"]["rest_url"]
    settings = _settings(tmp_path, frozen_sandbox)
    assert runtime.live_problems(settings, confirmed=False) == []
    runtime.start_system(settings)
    try:
        warmed = wait_for(
            "both markets' warm-up",
            lambda: (m := _markets(settings)) and all(m[x]["warmup"] == 60 for x in MARKETS) and m,
            timeout_s=180,
        )
        assert all(warmed[m]["bars"] == 0 and warmed[m]["signals"] == 0 for m in MARKETS)
        wait_for(  # each feed counts what it handed over (its own heartbeat, maybe a beat later)
            "the feeds' warm-up counts",
            lambda: all(_detail(settings, feed_name(m)).get("warmup_bars") == 60 for m in MARKETS),
            timeout_s=30,
        )
        assert http_json("GET", f"{base}/_sandbox/orders")["orders"] == []  # nothing traded on history
        wait_for(
            "both kline streams",
            lambda: (
                {"btcusdt@kline_1m", "ethusdt@kline_1m"}
                <= set(http_json("GET", f"{base}/_sandbox/state")["subscriptions"])
            ),
            timeout_s=60,
        )
        for bar in range(1, LIVE_BARS + 1):
            http_json("POST", f"{base}/_sandbox/advance", {"bars": 1})
            seen = wait_for(
                f"live bar {bar} at the strategy",
                lambda b=bar: (m := _markets(settings)) and all(m[x]["bars"] == b for x in MARKETS) and m,
                timeout_s=60,
            )
            for market in MARKETS:
                assert seen[market]["signals"] == sum(expected[market][1][:bar]), (market, bar)
        assert all(seen[m]["signals"] >= 1 and seen[m]["warmup"] == 60 for m in MARKETS)
    finally:
        runtime.stop_system(settings, cancel_orders=True, teardown=True)
