"""Portfolio gates across many markets: position scope, Up/Down pairs, measured correlation."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from actors.core.correlation import MIN_SHARED_BARS, RollingCorrelation
from actors.core.portfolio import PortfolioCore
from actors.core.portfolio_decisions import Gate
from actors.domain.model import MINUTE_MS, Candle, Instrument, MarketKind
from tests.unit.core.portfolio_helpers import (
    MARKET,
    NOON,
    inst,
    make_core,
    open_position,
    plan_of,
    sig,
    strat,
)

CONDITION = "0xc0ffee"


def token(outcome: str) -> Instrument:
    return Instrument(
        venue="polymarket",
        symbol=f"tok-{outcome.lower()}",
        kind=MarketKind.BINARY,
        tick_size=Decimal("0.01"),
        lot_size=Decimal("1"),
        condition_id=CONDITION,
        outcome=outcome,
    )


def feed_closes(
    core_or_tracker: RollingCorrelation | PortfolioCore, market: str, closes: list[float], start: int = 0
) -> None:
    on_close = core_or_tracker.on_close
    for i, close in enumerate(closes):
        on_close(market, start + i * MINUTE_MS, close)


def walk(n: int, seed: int, scale: float = 1.0) -> list[float]:
    """A deterministic price path; the same seed gives the same moves (scaled)."""
    price, out = 100.0, []
    for i in range(n):
        price *= math.exp(scale * 0.001 * math.sin(seed * 12.9898 + i * 78.233) * 1.7)
        out.append(price)
    return out


# ---------------------------------------------------------------------- position scope


def test_market_scope_refuses_a_second_strategy_in_a_held_market() -> None:
    core = make_core(strategies=[strat("a"), strat("b")])
    plan_of(core.evaluate(sig(strategy="a"), inst(), None, NOON))
    second = core.evaluate(sig(strategy="b", ts=NOON + 1), inst(), None, NOON + 1)
    assert second.rejected_by is Gate.ONE_PER_MARKET


def test_strategy_scope_lets_each_strategy_hold_the_market_once() -> None:
    core = make_core(
        strategies=[strat("a", allocation=0.4), strat("b", allocation=0.4)], position_scope="strategy"
    )
    plan_of(core.evaluate(sig(strategy="a"), inst(), None, NOON))
    plan_of(core.evaluate(sig(strategy="b", ts=NOON + 1), inst(), None, NOON + 1))
    again = core.evaluate(sig(strategy="a", ts=NOON + 2), inst(), None, NOON + 2)
    assert again.rejected_by is Gate.ONE_PER_MARKET


# ---------------------------------------------------------------------- Up/Down pairs


@pytest.mark.parametrize("scope", ["market", "strategy"])
def test_up_and_down_of_one_window_are_one_market_whatever_the_scope(scope: str) -> None:
    core = make_core(
        strategies=[strat("a", allocation=0.4), strat("b", allocation=0.4)],
        position_scope=scope,
        min_market_age_h=0,
    )
    up, down = token("Up"), token("Down")
    plan_of(core.evaluate(sig(strategy="a", market=up.market_id, price=0.4), up, None, NOON))
    for strategy in ("a", "b"):
        other_side = core.evaluate(
            sig(strategy=strategy, market=down.market_id, price=0.5, ts=NOON + 1), down, None, NOON + 1
        )
        assert other_side.rejected_by is Gate.ONE_PER_MARKET
        assert "other side of this window" in other_side.gate(Gate.ONE_PER_MARKET).detail


def test_pair_survives_a_fill_report_and_a_restore() -> None:
    core = make_core(min_market_age_h=0)
    up, down = token("Up"), token("Down")
    plan = plan_of(core.evaluate(sig(market=up.market_id, price=0.4), up, None, NOON))
    core.on_position_opened(plan.position_id, "mb", up.market_id, Decimal("40"), "")
    restored = type(core).from_state(core.portfolio, core.exits, [strat()], core.state())
    other_side = restored.evaluate(sig(market=down.market_id, price=0.5, ts=NOON + 1), down, None, NOON + 1)
    assert other_side.rejected_by is Gate.ONE_PER_MARKET


# ---------------------------------------------------------------------- measured correlation


def test_rolling_correlation_of_a_copy_is_one_of_a_mirror_minus_one() -> None:
    tracker = RollingCorrelation(200)
    path = walk(150, seed=3)
    feed_closes(tracker, "a", path)
    feed_closes(tracker, "b", [p * 2 for p in path])
    feed_closes(tracker, "c", [10_000 / p for p in path])
    assert tracker.correlation("a", "b") == pytest.approx(1.0)
    assert tracker.correlation("a", "c") == pytest.approx(-1.0)
    assert tracker.matrix()["b"]["c"] == pytest.approx(-1.0)


def test_rolling_correlation_needs_shared_bars_and_ignores_replayed_ones() -> None:
    tracker = RollingCorrelation(200)
    feed_closes(tracker, "a", walk(100, seed=1))
    feed_closes(tracker, "b", walk(100, seed=1), start=200 * MINUTE_MS)  # no bar in common
    assert tracker.correlation("a", "b") is None
    feed_closes(tracker, "c", walk(MIN_SHARED_BARS, seed=1))  # one bar short of enough returns
    assert tracker.correlation("a", "c") is None
    before = list(tracker._returns["a"])
    feed_closes(tracker, "a", walk(50, seed=9))  # a replay of old bars changes nothing
    assert list(tracker._returns["a"]) == before


def test_measured_correlation_refuses_the_fourth_position_moving_together() -> None:
    core = make_core(strategies=[strat(allocation=0.9)], cash_reserve=0.0, max_concurrent_positions=50)
    base = walk(300, seed=5)
    for sym, scale in (("BTC", 1.0), ("ETH", 1.3), ("SOL", 0.8), ("XRP", 1.1)):
        feed_closes(core, f"binance:{sym}/USDT", [p**scale for p in base])
    feed_closes(core, "binance:DOGE/USDT", walk(300, seed=77))  # moves on its own
    for i, sym in enumerate(("ETH", "SOL", "XRP")):
        open_position(core, f"p{i}", market=f"binance:{sym}/USDT", group=f"g{i}")  # labels all differ
    refused = core.evaluate(sig(), inst(group="gBTC"), None, NOON)
    assert refused.rejected_by is Gate.CORRELATION
    assert "binance:ETH/USDT rho 1.00" in refused.gate(Gate.CORRELATION).detail
    independent = core.evaluate(sig(market="binance:DOGE/USDT"), inst("DOGE/USDT", group="g0"), None, NOON)
    assert independent.gate(Gate.CORRELATION).passed is True  # the same label as ETH, but not correlated


def test_fixed_groups_option_ignores_measured_correlation() -> None:
    core = make_core(correlation="groups")
    base = walk(300, seed=5)
    for sym in ("BTC", "ETH", "SOL", "XRP"):
        feed_closes(core, f"binance:{sym}/USDT", base)
    for i, sym in enumerate(("ETH", "SOL", "XRP")):
        open_position(core, f"p{i}", market=f"binance:{sym}/USDT", group=f"g{i}")
    assert core.evaluate(sig(), inst(group="gBTC"), None, NOON).gate(Gate.CORRELATION).passed is True


def test_portfolio_correlation_counts_bar_closes_not_one_second_reference_ticks() -> None:
    core = make_core()
    for i in range(3):
        core.on_candle(
            Candle(
                market="chainlink:BTC/USD",
                ts_ms=i * 1000,
                interval_ms=1000,
                open=1,
                high=1,
                low=1,
                close=1 + i,
                volume=0,
            )
        )
        core.on_candle(
            Candle(market=MARKET, ts_ms=i * MINUTE_MS, open=1, high=1, low=1, close=1 + i, volume=1)
        )
    assert core.correlations.markets() == (MARKET,)
