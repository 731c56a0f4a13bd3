"""PortfolioCore gates on the market itself: book liquidity (spread, depth), market age, peak hours."""

from __future__ import annotations

from decimal import Decimal

import pytest

from actors.core.portfolio import PortfolioCore
from actors.core.portfolio_decisions import Gate, GateResult
from actors.domain.model import HOUR_MS, BookLevel, Instrument, MarketKind, OrderBook, Side, Signal
from config.models import ExitConfig, MeanReversionConfig, PortfolioConfig
from tests.unit.core.portfolio_helpers import DAY0, MARKET, NOON, book, inst, make_core, sig, strat


def test_tight_deep_book_liquidity_passes() -> None:
    decision = make_core().evaluate(sig(), inst(), book(), NOON)
    result = decision.gate(Gate.LIQUIDITY)
    assert result.passed is True
    assert decision.approved


def test_wide_spread_rejected_by_liquidity() -> None:
    decision = make_core().evaluate(sig(), inst(), book(bid="98", ask="100"), NOON)
    assert decision.rejected_by is Gate.LIQUIDITY
    assert "spread 2.02020202% of mid > 1%" in decision.gate(Gate.LIQUIDITY).detail


def test_spread_exactly_at_limit_passes() -> None:
    # mid 100, spread 1 -> exactly 1%.
    decision = make_core().evaluate(sig(), inst(), book(bid="99.5", ask="100.5"), NOON)
    assert decision.gate(Gate.LIQUIDITY).passed is True


def test_thin_book_rejected_by_liquidity() -> None:
    decision = make_core().evaluate(sig(), inst(), book(size="49"), NOON)  # 10 levels x 49 = 490
    assert decision.rejected_by is Gate.LIQUIDITY
    assert "depth 490 < 500 (top 5)" in decision.gate(Gate.LIQUIDITY).detail


def test_depth_counts_only_top_levels_rejected() -> None:
    # 8 levels of 40 a side: top 5 = 400 < 500 though the whole book holds 640.
    decision = make_core().evaluate(sig(), inst(), book(size="40", levels=8), NOON)
    assert decision.rejected_by is Gate.LIQUIDITY


def test_one_sided_book_rejected_by_liquidity() -> None:
    one_sided = OrderBook(
        market=MARKET,
        ts_ms=NOON,
        asks=tuple(BookLevel(price=Decimal(100 + i), size=Decimal(1000)) for i in range(5)),
    )
    decision = make_core().evaluate(sig(), inst(), one_sided, NOON)
    assert decision.rejected_by is Gate.LIQUIDITY
    assert "one-sided" in decision.gate(Gate.LIQUIDITY).detail


def test_no_book_liquidity_skipped_and_approved() -> None:
    decision = make_core().evaluate(sig(), inst(), None, NOON)
    assert decision.gate(Gate.LIQUIDITY) == GateResult(
        gate=Gate.LIQUIDITY, passed=None, detail="no order book: skipped"
    )
    assert decision.approved


def test_strategy_spread_override_admits_a_two_tick_binary_book() -> None:
    token = Instrument(
        venue="polymarket",
        symbol="tok",
        kind=MarketKind.BINARY,
        tick_size=Decimal("0.01"),
        lot_size=Decimal("0.01"),
        min_size=Decimal("5"),
    )
    book = OrderBook(
        market=token.market_id,
        ts_ms=0,
        bids=(BookLevel(price=Decimal("0.49"), size=Decimal(400)),),
        asks=(BookLevel(price=Decimal("0.51"), size=Decimal(400)),),
    )
    signal = Signal(strategy="lag", market=token.market_id, side=Side.BUY, strength=1.0, ts_ms=0, price=0.51)
    strict = MeanReversionConfig(name="lag", market=token.market_id, allocation=0.5)
    loose = strict.model_copy(update={"max_spread_fraction": 0.05})
    refused = PortfolioCore(PortfolioConfig(), ExitConfig(), [strict]).evaluate(signal, token, book, 0)
    admitted = PortfolioCore(PortfolioConfig(), ExitConfig(), [loose]).evaluate(signal, token, book, 0)
    assert refused.gate("liquidity").passed is False
    assert "spread 4" in refused.gate("liquidity").detail
    assert admitted.gate("liquidity").passed is True


# --------------------------------------------------------------------------- market age


def test_young_market_rejected_by_market_age() -> None:
    decision = make_core().evaluate(sig(), inst(created_ms=NOON - 23 * HOUR_MS), None, NOON)
    assert decision.rejected_by is Gate.MARKET_AGE
    assert decision.gate(Gate.MARKET_AGE).detail == "market age 23h < 24h"


def test_market_exactly_min_age_passes() -> None:
    decision = make_core().evaluate(sig(), inst(created_ms=NOON - 24 * HOUR_MS), None, NOON)
    assert decision.gate(Gate.MARKET_AGE).passed is True
    assert decision.approved


def test_unknown_listing_time_market_age_passes() -> None:
    decision = make_core().evaluate(sig(), inst(created_ms=None), None, NOON)
    assert decision.gate(Gate.MARKET_AGE) == GateResult(
        gate=Gate.MARKET_AGE, passed=True, detail="listing time unknown"
    )


def test_strategy_age_override_young_market_passes() -> None:
    core = make_core(strategies=[strat(min_market_age_h=0.5)])
    young = inst(created_ms=NOON - HOUR_MS)
    assert core.evaluate(sig(), young, None, NOON).gate(Gate.MARKET_AGE).passed is True
    too_young = inst(created_ms=NOON - 10 * 60_000)
    decision = core.evaluate(sig(ts=NOON + 1), too_young, None, NOON)
    assert decision.gate(Gate.MARKET_AGE).passed is False
    assert decision.gate(Gate.MARKET_AGE).detail == "market age 0.16666667h < 0.5h"


# --------------------------------------------------------------------------- peak hours


@pytest.mark.parametrize(
    ("hour_ms", "expected"),
    [
        (12 * HOUR_MS - 1, False),
        (12 * HOUR_MS, True),
        (23 * HOUR_MS - 1, True),
        (23 * HOUR_MS, False),
        (3 * HOUR_MS, False),
    ],
)
def test_peak_hours_strategy_window_boundaries(hour_ms: int, expected: bool) -> None:
    core = make_core(strategies=[strat(peak_hours_only=True)])
    decision = core.evaluate(sig(ts=DAY0 + hour_ms), inst(), None, DAY0 + hour_ms)
    assert decision.gate(Gate.PEAK_HOURS).passed is expected
    assert decision.approved is expected
    if not expected:
        assert decision.rejected_by is Gate.PEAK_HOURS
        assert "outside [12:00, 23:00) UTC" in decision.gate(Gate.PEAK_HOURS).detail


def test_round_the_clock_strategy_at_night_passes() -> None:
    now = DAY0 + 3 * HOUR_MS
    decision = make_core().evaluate(sig(ts=now), inst(), None, now)
    assert decision.gate(Gate.PEAK_HOURS).passed is True
