"""PortfolioCore: every gate passing and rejecting, sizing arithmetic pinned, state round-trip."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.core.portfolio import (
    DecisionKind,
    EntryPlan,
    Gate,
    GateResult,
    PortfolioCore,
)
from actors.domain.model import DAY_MS, HOUR_MS, BookLevel, Instrument, MarketKind, OrderBook, Side, Signal
from config.models import ExitConfig, MeanReversionConfig, MomentumBreakoutConfig, PortfolioConfig

MARKET = "binance:BTC/USDT"
DAY0 = 19_675 * DAY_MS  # a midnight UTC
NOON = DAY0 + 12 * HOUR_MS


def strat(name: str = "mb", **kw: Any) -> MomentumBreakoutConfig:
    return MomentumBreakoutConfig(name=name, market=MARKET, **kw)


def make_core(
    *, strategies: list[Any] | None = None, exits: ExitConfig | None = None, **portfolio: Any
) -> PortfolioCore:
    return PortfolioCore(
        PortfolioConfig(**portfolio),
        exits or ExitConfig(),
        strategies if strategies is not None else [strat()],
    )


def inst(
    symbol: str = "BTC/USDT",
    *,
    tick: str = "0.01",
    lot: str = "1",
    min_size: str = "0",
    created_ms: int | None = None,
    group: str = "",
) -> Instrument:
    return Instrument(
        venue="binance",
        symbol=symbol,
        tick_size=Decimal(tick),
        lot_size=Decimal(lot),
        min_size=Decimal(min_size),
        created_ms=created_ms,
        correlation_group=group,
    )


def sig(
    *,
    market: str = MARKET,
    strategy: str = "mb",
    side: Side = Side.BUY,
    strength: float = 1.0,
    ts: int = NOON,
    price: float = 100.0,
) -> Signal:
    return Signal(strategy=strategy, market=market, side=side, strength=strength, ts_ms=ts, price=price)


def book(
    bid: str = "99.9", ask: str = "100", size: str = "100", levels: int = 5, market: str = MARKET
) -> OrderBook:
    """Levels one tick apart each side; ``levels`` of ``size`` on both sides."""
    step = Decimal("0.1")
    return OrderBook(
        market=market,
        ts_ms=NOON,
        bids=tuple(BookLevel(price=Decimal(bid) - i * step, size=Decimal(size)) for i in range(levels)),
        asks=tuple(BookLevel(price=Decimal(ask) + i * step, size=Decimal(size)) for i in range(levels)),
    )


def plan_of(decision: Any) -> EntryPlan:
    assert decision.approved, decision.failed
    assert decision.plan is not None
    plan: EntryPlan = decision.plan
    return plan


def open_position(
    core: PortfolioCore,
    pid: str,
    *,
    market: str,
    strategy: str = "other",
    notional: str = "100",
    group: str = "",
) -> None:
    core.on_position_opened(pid, strategy, market, Decimal(notional), group)


# --------------------------------------------------------------------------- sizing


def test_default_sizing_notional_cap_binds_ten_units() -> None:
    decision = make_core().evaluate(sig(), inst(), None, NOON)
    plan = plan_of(decision)
    # risk 2% of 10,000 = 200 over 100 - 97 = 3 -> 66.66 units; 10% notional cap = 1,000 / 100 = 10.
    assert plan.qty == Decimal(10)
    assert plan.limit_price == Decimal(100)
    assert plan.stop_price == Decimal(97)
    assert plan.notional == Decimal(1000)
    assert plan.risk_amount == Decimal(30)
    assert "notional cap binds" in decision.gate(Gate.SIZE).detail


def test_loose_caps_risk_rule_binds_lot_rounded() -> None:
    core = make_core(max_position_fraction=1.0, cash_reserve=0.0, strategies=[strat(allocation=1.0)])
    plan = plan_of(core.evaluate(sig(), inst(lot="0.01"), None, NOON))
    assert plan.qty == Decimal("66.66")
    assert plan.risk_amount == Decimal("199.98")
    assert plan.notional == Decimal("6666")


def test_loose_caps_whole_lot_rounds_down_to_66() -> None:
    core = make_core(max_position_fraction=1.0, cash_reserve=0.0, strategies=[strat(allocation=1.0)])
    plan = plan_of(core.evaluate(sig(), inst(lot="1"), None, NOON))
    assert plan.qty == Decimal(66)
    assert plan.risk_amount == Decimal(198)


def test_half_strength_halves_size() -> None:
    plan = plan_of(make_core().evaluate(sig(strength=0.5), inst(), None, NOON))
    assert plan.qty == Decimal(5)
    assert plan.strength == 0.5


def test_scale_by_strength_off_full_size() -> None:
    plan = plan_of(make_core(scale_by_strength=False).evaluate(sig(strength=0.5), inst(), None, NOON))
    assert plan.qty == Decimal(10)


def test_odd_lot_size_rounds_qty_down_to_lot_multiple() -> None:
    plan = plan_of(make_core().evaluate(sig(), inst(lot="0.3"), None, NOON))
    assert plan.qty == Decimal("9.9")  # 10 / 0.3 = 33.3 lots -> 33 lots
    assert plan.qty % Decimal("0.3") == 0


def test_off_tick_signal_price_rounds_limit_down() -> None:
    plan = plan_of(make_core().evaluate(sig(price=100.037), inst(tick="0.05"), None, NOON))
    assert plan.limit_price == Decimal("100.00")
    assert plan.stop_price == Decimal("97.00")


def test_stop_off_tick_floored_so_risk_not_understated() -> None:
    core = make_core()
    plan = plan_of(core.evaluate(sig(price=0.55), inst(tick="0.01", lot="1"), None, NOON))
    assert plan.stop_price == Decimal("0.53")  # 0.55 * 0.97 = 0.5335
    assert plan.qty == Decimal(1818)  # notional cap 1,000 / 0.55 = 1818.18
    assert plan.risk_amount == Decimal(1818) * Decimal("0.02")


def test_book_present_limit_is_best_ask() -> None:
    plan = plan_of(make_core().evaluate(sig(price=99.0), inst(), book(ask="100.5", bid="100.4"), NOON))
    assert plan.limit_price == Decimal("100.5")
    assert plan.qty == Decimal(9)  # 1,000 / 100.5 = 9.95


def test_equity_after_profit_sizes_larger() -> None:
    core = make_core()
    open_position(core, "p0", market="binance:ETH/USDT", strategy="mb", notional="500")
    core.on_position_closed("p0", Decimal(1000))
    assert core.equity == Decimal(11000)
    plan = plan_of(core.evaluate(sig(), inst(), None, NOON))
    assert plan.qty == Decimal(11)


def test_below_min_size_rejected_by_size() -> None:
    decision = make_core().evaluate(sig(), inst(min_size="11"), None, NOON)
    assert not decision.approved
    assert decision.rejected_by is Gate.SIZE
    assert "below min size 11" in decision.gate(Gate.SIZE).detail


def test_zero_strength_rejected_by_size() -> None:
    decision = make_core().evaluate(sig(strength=0.0), inst(), None, NOON)
    assert decision.rejected_by is Gate.SIZE


def test_price_below_tick_rejected_by_size() -> None:
    decision = make_core().evaluate(sig(price=0.004), inst(tick="0.01"), None, NOON)
    assert decision.rejected_by is Gate.SIZE
    assert "rounds to 0" in decision.gate(Gate.SIZE).detail


def test_non_positive_equity_rejected_by_size() -> None:
    core = make_core()
    core.on_equity(Decimal(0))
    decision = core.evaluate(sig(), inst(), None, NOON)
    assert decision.rejected_by is Gate.SIZE
    assert "not positive" in decision.gate(Gate.SIZE).detail


# --------------------------------------------------------------------------- Kelly


def kelly_exits() -> ExitConfig:
    """Payoff ratio b = 6% / 3% = 2 (both targets at 6%)."""
    return ExitConfig(target_one_pct=0.06, target_two_pct=0.06, stop_pct=0.03)


def kelly_core(kelly_fraction: float, win_rate: float) -> PortfolioCore:
    return make_core(
        exits=kelly_exits(),
        kelly_fraction=kelly_fraction,
        kelly_win_rate=win_rate,
        max_position_fraction=1.0,
        cash_reserve=0.0,
        strategies=[strat(allocation=1.0)],
    )


def test_kelly_tighter_than_two_percent_kelly_binds() -> None:
    core = kelly_core(0.04, 0.5)  # f* = (2 * 0.5 - 0.5) / 2 = 0.25; x 0.04 = 1%
    assert core.kelly_risk_fraction() == Decimal("0.01")
    assert core.risk_fraction == Decimal("0.01")
    plan = plan_of(core.evaluate(sig(), inst(), None, NOON))
    assert plan.qty == Decimal(33)  # 100 / 3 = 33.3
    assert plan.risk_amount == Decimal(99)


def test_kelly_looser_than_two_percent_rule_binds() -> None:
    core = kelly_core(0.5, 0.5)  # 0.125 > 0.02
    assert core.risk_fraction == Decimal("0.02")
    assert plan_of(core.evaluate(sig(), inst(), None, NOON)).qty == Decimal(66)


def test_kelly_negative_edge_rejected_by_size() -> None:
    core = kelly_core(0.5, 0.3)  # f* = (0.6 - 0.7) / 2 < 0
    decision = core.evaluate(sig(), inst(), None, NOON)
    assert decision.rejected_by is Gate.SIZE
    assert "no edge" in decision.gate(Gate.SIZE).detail


def test_kelly_default_exit_plan_blends_targets() -> None:
    core = make_core(kelly_fraction=1.0)  # b = (0.5*2% + 0.5*5%) / 3% = 7/6, p = 0.55 -> f* = 23/140
    kelly = core.kelly_risk_fraction()
    assert kelly is not None
    assert abs(kelly - Decimal(23) / Decimal(140)) < Decimal("1e-20")


def test_kelly_off_returns_none() -> None:
    assert make_core().kelly_risk_fraction() is None


# --------------------------------------------------------------------------- liquidity


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


# --------------------------------------------------------------------------- concurrency, market, group


def test_max_concurrent_reached_rejected() -> None:
    core = make_core(max_concurrent_positions=2)
    open_position(core, "p1", market="binance:ETH/USDT")
    open_position(core, "p2", market="binance:SOL/USDT")
    decision = core.evaluate(sig(), inst(), None, NOON)
    assert decision.rejected_by is Gate.MAX_CONCURRENT
    assert decision.gate(Gate.MAX_CONCURRENT).detail == "2 positions and pending entries, max 2"


def test_below_max_concurrent_passes() -> None:
    core = make_core(max_concurrent_positions=2)
    open_position(core, "p1", market="binance:ETH/USDT")
    assert core.evaluate(sig(), inst(), None, NOON).gate(Gate.MAX_CONCURRENT).passed is True


def test_open_position_in_market_rejected_by_one_per_market() -> None:
    core = make_core()
    open_position(core, "p1", market=MARKET, strategy="other")
    decision = core.evaluate(sig(), inst(), None, NOON)
    assert decision.rejected_by is Gate.ONE_PER_MARKET
    assert "a position is open in binance:BTC/USDT (p1, other)" in decision.gate(Gate.ONE_PER_MARKET).detail


def test_pending_entry_blocks_second_signal_rejected() -> None:
    core = make_core()
    first = plan_of(core.evaluate(sig(), inst(), None, NOON))
    decision = core.evaluate(sig(ts=NOON + 60_000), inst(), None, NOON + 60_000)
    assert decision.rejected_by is Gate.ONE_PER_MARKET
    assert "an entry is pending" in decision.gate(Gate.ONE_PER_MARKET).detail
    assert core.on_entry_cancelled(first.position_id)
    assert core.evaluate(sig(ts=NOON + 60_000), inst(), None, NOON + 60_000).approved


def test_replayed_signal_rejected_as_duplicate() -> None:
    core = make_core()
    first = plan_of(core.evaluate(sig(), inst(), None, NOON))
    again = core.evaluate(sig(), inst(), None, NOON)
    assert again.rejected_by is Gate.REPLAYED
    assert "already spent" in again.gate(Gate.REPLAYED).detail
    assert f"duplicate signal: position {first.position_id}" in again.gate(Gate.ONE_PER_MARKET).detail


def test_position_id_deterministic_across_cores() -> None:
    a = plan_of(make_core().evaluate(sig(), inst(), None, NOON))
    b = plan_of(make_core().evaluate(sig(), inst(), None, NOON + 5))
    assert a.position_id == b.position_id
    c = plan_of(make_core().evaluate(sig(ts=NOON + 1), inst(), None, NOON))
    assert c.position_id != a.position_id


def test_full_correlation_group_rejected() -> None:
    core = make_core()
    for i, sym in enumerate(("ETH/USDT", "SOL/USDT", "BNB/USDT")):
        open_position(core, f"p{i}", market=f"binance:{sym}", group="crypto")
    decision = core.evaluate(sig(), inst(group="crypto"), None, NOON)
    assert decision.rejected_by is Gate.CORRELATION
    assert decision.gate(Gate.CORRELATION).detail == "correlation group 'crypto' holds 3, max 3"


def test_other_group_or_empty_group_correlation_passes() -> None:
    core = make_core()
    for i, sym in enumerate(("ETH/USDT", "SOL/USDT", "BNB/USDT")):
        open_position(core, f"p{i}", market=f"binance:{sym}", group="crypto")
    for i, sym in enumerate(("XRP/USDT", "ADA/USDT", "DOT/USDT")):
        open_position(core, f"q{i}", market=f"binance:{sym}")  # empty group: each its own
    assert core.evaluate(sig(), inst(group="majors"), None, NOON).gate(Gate.CORRELATION).passed is True
    assert core.evaluate(sig(ts=NOON + 1), inst(), None, NOON).gate(Gate.CORRELATION).passed is True


def test_pending_entries_count_toward_correlation_cap_rejected() -> None:
    core = make_core(strategies=[strat(allocation=0.9)])
    for sym in ("ETH/USDT", "SOL/USDT", "BNB/USDT"):
        market = f"binance:{sym}"
        plan_of(core.evaluate(sig(market=market), inst(sym, group="crypto"), None, NOON))
    decision = core.evaluate(sig(), inst(group="crypto"), None, NOON)
    assert decision.rejected_by is Gate.CORRELATION


# --------------------------------------------------------------------------- allocation, reserve


def test_partly_used_allocation_sizes_down() -> None:
    core = make_core()  # allocation 20% of 10,000 = 2,000
    open_position(core, "p1", market="binance:ETH/USDT", strategy="mb", notional="1500")
    decision = core.evaluate(sig(), inst(), None, NOON)
    plan = plan_of(decision)
    assert plan.qty == Decimal(5)
    assert plan.notional == Decimal(500)
    assert "sized down to 5" in decision.gate(Gate.ALLOCATION).detail


def test_exhausted_allocation_rejected() -> None:
    core = make_core()
    open_position(core, "p1", market="binance:ETH/USDT", strategy="mb", notional="1950")
    decision = core.evaluate(sig(), inst(), None, NOON)
    assert decision.rejected_by is Gate.ALLOCATION
    assert "room 50 fits no tradable size" in decision.gate(Gate.ALLOCATION).detail


def test_allocation_room_below_min_size_rejected() -> None:
    core = make_core()
    open_position(core, "p1", market="binance:ETH/USDT", strategy="mb", notional="1500")
    decision = core.evaluate(sig(), inst(min_size="6"), None, NOON)
    assert decision.rejected_by is Gate.ALLOCATION


def test_other_strategy_commitments_allocation_passes() -> None:
    core = make_core(strategies=[strat(), MeanReversionConfig(name="mr", market=MARKET)])
    open_position(core, "p1", market="binance:ETH/USDT", strategy="mr", notional="2000")
    assert core.committed("mr") == Decimal(2000)
    assert core.committed("mb") == Decimal(0)
    assert plan_of(core.evaluate(sig(), inst(), None, NOON)).qty == Decimal(10)


def test_reserve_nearly_used_sizes_down() -> None:
    core = make_core(strategies=[strat(), MeanReversionConfig(name="mr", market=MARKET, allocation=1.0)])
    open_position(core, "p1", market="binance:ETH/USDT", strategy="mr", notional="8500")
    decision = core.evaluate(sig(), inst(), None, NOON)
    assert plan_of(decision).qty == Decimal(5)  # 9,000 usable - 8,500 committed = 500
    assert "sized down to 5" in decision.gate(Gate.CASH_RESERVE).detail


def test_reserve_fully_used_rejected_by_cash_reserve() -> None:
    core = make_core(strategies=[strat(), MeanReversionConfig(name="mr", market=MARKET, allocation=1.0)])
    open_position(core, "p1", market="binance:ETH/USDT", strategy="mr", notional="9000")
    decision = core.evaluate(sig(), inst(), None, NOON)
    assert decision.rejected_by is Gate.CASH_RESERVE


def test_unrealised_gains_do_not_spend_cash_sized_down() -> None:
    core = make_core(strategies=[strat(), MeanReversionConfig(name="mr", market=MARKET, allocation=1.0)])
    open_position(core, "p1", market="binance:ETH/USDT", strategy="mr", notional="9000")
    core.on_equity(Decimal(12000))  # 90% of 12,000 - 9,000 = 1,800, but only 1,000 cash
    assert core.cash == Decimal(1000)
    plan = plan_of(core.evaluate(sig(), inst(), None, NOON))
    assert plan.qty == Decimal(10)  # cap 1,200 -> 12, cash 1,000 -> 10


# --------------------------------------------------------------------------- strategy, exits, reporting


def test_unknown_strategy_rejected_by_strategy() -> None:
    decision = make_core().evaluate(sig(strategy="ghost"), inst(), None, NOON)
    assert decision.rejected_by is Gate.STRATEGY
    assert decision.gate(Gate.STRATEGY).detail == "unknown strategy 'ghost'"


def test_disabled_strategy_rejected_by_strategy() -> None:
    decision = make_core(strategies=[strat(enabled=False)]).evaluate(sig(), inst(), None, NOON)
    assert decision.rejected_by is Gate.STRATEGY


def test_several_failures_all_reported_first_rejects() -> None:
    core = make_core(strategies=[strat(peak_hours_only=True)])
    night = DAY0 + 2 * HOUR_MS
    decision = core.evaluate(
        sig(ts=night), inst(created_ms=night - HOUR_MS), book(bid="90", ask="100"), night
    )
    assert [g.gate for g in decision.gates] == list(Gate)
    assert {g.gate for g in decision.failed} == {Gate.MARKET_AGE, Gate.PEAK_HOURS, Gate.LIQUIDITY}
    assert decision.rejected_by is Gate.MARKET_AGE
    assert decision.plan is None
    assert core.holdings == ()


def test_sell_signal_passes_through_as_exit() -> None:
    core = make_core(strategies=[strat(peak_hours_only=True)])
    open_position(core, "p1", market=MARKET, strategy="mb")
    night = DAY0 + 2 * HOUR_MS
    decision = core.evaluate(sig(side=Side.SELL, ts=night), inst(), None, night)
    assert decision.kind is DecisionKind.EXIT
    assert decision.exit_position_id == "p1"
    assert decision.gates == ()
    assert not decision.approved
    assert decision.rejected_by is None


def test_sell_while_entry_pending_exit_names_pending() -> None:
    core = make_core()
    plan = plan_of(core.evaluate(sig(), inst(), None, NOON))
    decision = core.evaluate(sig(side=Side.SELL, ts=NOON + 1), inst(), None, NOON + 1)
    assert decision.exit_position_id == plan.position_id


def test_plan_decimals_carry_grid_exponent() -> None:
    plan = plan_of(make_core().evaluate(sig(), inst(tick="0.01", lot="0.001"), None, NOON))
    assert (str(plan.limit_price), str(plan.stop_price), str(plan.qty)) == ("100.00", "97.00", "10.000")


def test_sell_without_position_exit_names_none() -> None:
    decision = make_core().evaluate(sig(side=Side.SELL), inst(), None, NOON)
    assert decision.kind is DecisionKind.EXIT
    assert decision.exit_position_id is None


def test_mismatched_market_raises() -> None:
    with pytest.raises(ValueError, match="evaluated against instrument"):
        make_core().evaluate(sig(market="binance:ETH/USDT"), inst(), None, NOON)
    with pytest.raises(ValueError, match="book of"):
        make_core().evaluate(sig(), inst(), book(market="binance:ETH/USDT"), NOON)


def test_duplicate_strategy_names_raise() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        make_core(strategies=[strat(), strat()])


# --------------------------------------------------------------------------- books and state


def test_lifecycle_equity_cash_committed_exact() -> None:
    core = make_core()
    plan = plan_of(core.evaluate(sig(), inst(lot="0.001"), None, NOON))
    assert core.committed("mb") == plan.notional == Decimal(1000)
    assert core.cash == Decimal(9000)
    core.on_position_opened(plan.position_id, "mb", MARKET, Decimal("999.5"), "")
    assert core.holdings[0].pending is False
    assert core.holdings[0].correlation_group == MARKET
    assert core.on_entry_cancelled(plan.position_id) is False  # filled: not pending any more
    core.on_equity(Decimal("10050.25"))
    assert core.unrealized_pnl == Decimal("50.25")
    assert core.equity == Decimal("10050.25")
    assert core.on_position_closed(plan.position_id, Decimal("-12.34")) is True
    assert core.on_position_closed(plan.position_id, Decimal("-12.34")) is False  # replayed: ignored
    assert core.realized_pnl == Decimal("-12.34")
    assert core.unrealized_pnl == Decimal(0)
    assert core.equity == Decimal("9987.66")
    assert core.cash == Decimal("9987.66")
    assert core.committed_total == Decimal(0)


def test_state_json_round_trip_restores_exactly() -> None:
    strategies = [strat(), MeanReversionConfig(name="mr", market=MARKET)]
    core = make_core(strategies=strategies)
    plan_of(core.evaluate(sig(), inst(lot="0.001"), None, NOON))
    open_position(core, "p1", market="binance:ETH/USDT", strategy="mr", notional="123.4500", group="crypto")
    open_position(core, "p2", market="binance:SOL/USDT", strategy="mr", notional="1")
    core.on_position_closed("p2", Decimal("0.10"))
    core.on_equity(Decimal("10001.333333333333333"))

    state = json.loads(json.dumps(core.state()))
    restored = PortfolioCore.from_state(PortfolioConfig(), ExitConfig(), strategies, state)
    assert restored.state() == core.state()
    assert restored.holdings == core.holdings
    assert restored.equity == core.equity
    assert restored.cash == core.cash
    assert restored.committed_by_strategy == core.committed_by_strategy
    later = sig(market="binance:XRP/USDT", ts=NOON + 1)
    xrp = inst("XRP/USDT", lot="0.001")
    assert restored.evaluate(later, xrp, None, NOON) == core.evaluate(later, xrp, None, NOON)


def test_state_unknown_version_raises() -> None:
    with pytest.raises(ValueError, match="version"):
        PortfolioCore.from_state(PortfolioConfig(), ExitConfig(), [strat()], {"version": 99})


# --------------------------------------------------------------------------- property


@settings(max_examples=300, deadline=None)
@given(
    equity=st.integers(min_value=50, max_value=10_000_000),
    price_ticks=st.integers(min_value=1, max_value=10_000_000),
    tick=st.sampled_from(["0.0001", "0.01", "0.5", "1"]),
    lot=st.sampled_from(["0.00001", "0.001", "0.1", "1", "5"]),
    stop_pct=st.floats(min_value=0.001, max_value=0.5),
    strength=st.floats(min_value=0.0, max_value=1.0),
    kelly=st.none() | st.floats(min_value=0.01, max_value=1.0),
    win_rate=st.floats(min_value=0.3, max_value=0.9),
    allocation=st.floats(min_value=0.0, max_value=0.9),
    committed_pct=st.just(0) | st.integers(min_value=0, max_value=100),
    with_book=st.booleans(),
)
def test_any_approved_plan_within_risk_and_notional_limits(
    equity: int,
    price_ticks: int,
    tick: str,
    lot: str,
    stop_pct: float,
    strength: float,
    kelly: float | None,
    win_rate: float,
    allocation: float,
    committed_pct: int,
    with_book: bool,
) -> None:
    exits = ExitConfig(stop_pct=stop_pct, target_one_pct=0.02, target_two_pct=0.6)
    core = make_core(
        exits=exits,
        kelly_fraction=kelly,
        kelly_win_rate=win_rate,
        strategies=[strat(allocation=allocation)],
    )
    core.on_equity(Decimal(equity))
    price = Decimal(price_ticks) * Decimal(tick)
    if committed_pct:
        room = Decimal(equity) * Decimal("0.9") * committed_pct / 100
        open_position(core, "p0", market="binance:ETH/USDT", strategy="mb", notional=str(room))
    instrument = inst(tick=tick, lot=lot)
    snapshot = None
    if with_book:
        snapshot = OrderBook(
            market=MARKET,
            ts_ms=NOON,
            bids=(BookLevel(price=price * Decimal("0.999"), size=Decimal(1000)),),
            asks=(BookLevel(price=price, size=Decimal(1000)),),
        )
    decision = core.evaluate(sig(price=float(price), strength=strength), instrument, snapshot, NOON)
    if not decision.approved:
        assert decision.rejected_by is not None
        assert core.committed("mb") == (
            Decimal(equity) * Decimal("0.9") * committed_pct / 100 if committed_pct else 0
        )
        return
    plan = plan_of(decision)
    eq = Decimal(equity)
    assert plan.notional == plan.qty * plan.limit_price
    assert plan.notional <= eq * Decimal("0.10")
    assert plan.risk_amount == plan.qty * (plan.limit_price - plan.stop_price)
    assert plan.risk_amount <= eq * Decimal("0.02")
    assert plan.qty > 0
    assert plan.qty % Decimal(lot) == 0
    assert plan.limit_price % Decimal(tick) == 0
    assert plan.stop_price < plan.limit_price
    assert core.committed("mb") <= eq * Decimal(repr(allocation))
    assert core.committed_total <= eq * Decimal("0.9")


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


# --------------------------------------------------------------------------- pre-trade limits


def loose(**kw: Any) -> PortfolioCore:
    """A core whose allocation, reserve and concurrency leave room for many 1,000-notional entries."""
    return make_core(strategies=[strat(allocation=0.9)], cash_reserve=0.0, max_concurrent_positions=50, **kw)


def market_inst(n: int) -> Instrument:
    return inst(f"C{n}/USDT")


def sig_in(n: int, ts: int, side: Side = Side.BUY) -> Signal:
    return sig(market=f"binance:C{n}/USDT", ts=ts, side=side)


def test_default_limits_pass_and_leave_default_sizing_alone() -> None:
    p = PortfolioConfig()
    assert (p.max_order_notional, p.max_orders_per_s, p.max_daily_loss_fraction) == (None, 10, 0.05)
    assert p.max_open_orders_per_market == 4
    decision = make_core().evaluate(sig(), inst(), None, NOON)
    assert plan_of(decision).qty == Decimal(10)
    assert decision.limits == ()
    for gate in (Gate.DAILY_LOSS, Gate.OPEN_ORDERS, Gate.ORDER_RATE, Gate.ORDER_NOTIONAL):
        assert decision.gate(gate).passed is True
    assert decision.gate(Gate.ORDER_NOTIONAL).detail == "no max order notional"
    assert decision.gate(Gate.OPEN_ORDERS).detail == f"0 open orders in {MARKET}, max 4"


def test_max_order_notional_sizes_entry_down_and_names_the_limit(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="actors.core.portfolio")
    decision = make_core(max_order_notional=Decimal(500)).evaluate(sig(), inst(), None, NOON)
    plan = plan_of(decision)
    assert plan.qty == Decimal(5)
    assert plan.notional == Decimal(500)
    assert decision.limits == (Gate.ORDER_NOTIONAL,)
    assert decision.gate(Gate.ORDER_NOTIONAL).detail == "max order notional 500: room 500: sized down to 5"
    assert "pre-trade limit order_notional sized mb's entry" in caplog.text


def test_max_order_notional_not_binding_is_not_named() -> None:
    decision = make_core(max_order_notional=Decimal(5000)).evaluate(sig(), inst(), None, NOON)
    assert plan_of(decision).qty == Decimal(10)
    assert decision.limits == ()
    assert decision.gate(Gate.ORDER_NOTIONAL).detail == "max order notional 5000: room 5000: fits"


def test_max_order_notional_below_one_lot_rejected(caplog: pytest.LogCaptureFixture) -> None:
    core = make_core(max_order_notional=Decimal(50))
    decision = core.evaluate(sig(), inst(lot="1"), None, NOON)
    assert decision.rejected_by is Gate.ORDER_NOTIONAL
    assert decision.limits == (Gate.ORDER_NOTIONAL,)
    assert core.holdings == ()
    assert "pre-trade limit order_notional rejected mb's entry in binance:BTC/USDT" in caplog.text


def test_orders_per_second_rolling_window_of_data_time(caplog: pytest.LogCaptureFixture) -> None:
    core = loose(max_orders_per_s=2)
    t = NOON
    assert core.evaluate(sig_in(1, t), market_inst(1), None, t).approved
    assert core.evaluate(sig_in(2, t + 100), market_inst(2), None, t + 100).approved
    third = core.evaluate(sig_in(3, t + 999), market_inst(3), None, t + 999)
    assert third.rejected_by is Gate.ORDER_RATE
    assert third.limits == (Gate.ORDER_RATE,)
    assert third.gate(Gate.ORDER_RATE).detail == "2 entries approved in the last second, max 2"
    assert "pre-trade limit order_rate rejected mb's entry in binance:C3/USDT" in caplog.text
    # the rejected one does not count; at t + 1000 the first approval has left the window
    fourth = core.evaluate(sig_in(4, t + 1000), market_inst(4), None, t + 1000)
    assert fourth.approved
    assert fourth.gate(Gate.ORDER_RATE).detail == "1 entries approved in the last second, max 2"
    assert core.evaluate(sig_in(5, t + 1050), market_inst(5), None, t + 1050).rejected_by is Gate.ORDER_RATE
    exit_ = core.evaluate(sig_in(1, t + 1060, Side.SELL), market_inst(1), None, t + 1060)
    assert exit_.kind is DecisionKind.EXIT  # exits are never rate limited
    assert exit_.exit_position_id is not None


def test_open_orders_per_market_reported_by_shell_limit_entries() -> None:
    core = make_core(max_open_orders_per_market=4)
    core.on_open_orders({MARKET: 4, "binance:ETH/USDT": 1})
    refused = core.evaluate(sig(), inst(), None, NOON)
    assert refused.rejected_by is Gate.OPEN_ORDERS
    assert refused.limits == (Gate.OPEN_ORDERS,)
    assert refused.gate(Gate.OPEN_ORDERS).detail == f"4 open orders in {MARKET}, max 4"
    core.on_open_orders({MARKET: 3})
    assert core.open_orders("binance:ETH/USDT") == 1
    assert core.evaluate(sig(ts=NOON + 1), inst(), None, NOON + 1).approved
    core.on_open_orders({}, venue="binance")  # the venue's whole picture: nothing open
    assert (core.open_orders(MARKET), core.open_orders("binance:ETH/USDT")) == (0, 0)
    with pytest.raises(ValueError, match=">= 0"):
        core.on_open_orders({MARKET: -1})


def test_daily_loss_halts_entries_until_next_utc_day_exits_go_on(caplog: pytest.LogCaptureFixture) -> None:
    core = make_core()
    plan = plan_of(core.evaluate(sig(), inst(), None, NOON))  # the day's book starts at 10,000
    core.on_position_opened(plan.position_id, "mb", MARKET, plan.notional, "")
    core.on_equity(Decimal("9500.01"), now_ms=NOON + 1)
    assert not core.daily_loss_halted
    core.on_equity(Decimal(9500), now_ms=NOON + 2)  # 500 = 5% of 10,000: the limit
    assert core.daily_loss_halted
    assert caplog.text.count("pre-trade limit daily_loss") == 1
    assert core.daily_loss_status() == {
        "day": "2023-11-14",
        "day_pnl": "-500",
        "day_start_equity": "10000",
        "limit_fraction": 0.05,
        "halted": True,
    }
    refused = core.evaluate(sig_in(2, NOON + 3), market_inst(2), None, NOON + 3)
    assert refused.rejected_by is Gate.DAILY_LOSS
    assert refused.limits == (Gate.DAILY_LOSS,)
    assert refused.gate(Gate.DAILY_LOSS).detail == (
        "day P&L -500 = -5% of starting equity 10000, limit -5%: entries halted until the next UTC day"
    )
    exit_ = core.evaluate(sig(side=Side.SELL, ts=NOON + 4), inst(), None, NOON + 4)
    assert exit_.kind is DecisionKind.EXIT
    assert exit_.exit_position_id == plan.position_id
    core.on_equity(Decimal(10_400), now_ms=NOON + 5)  # a recovery the same day does not lift it
    assert core.evaluate(sig_in(2, NOON + 6), market_inst(2), None, NOON + 6).rejected_by is Gate.DAILY_LOSS
    tomorrow = DAY0 + DAY_MS
    assert core.evaluate(sig_in(2, tomorrow), market_inst(2), None, tomorrow).approved
    assert not core.daily_loss_halted
    assert core.daily_loss_status()["day_start_equity"] == "10400"
    assert "daily loss halt lifted" in caplog.text


def test_daily_loss_is_measured_from_the_day_start_not_from_yesterday() -> None:
    core = make_core()
    core.evaluate(sig(side=Side.SELL), inst(), None, NOON)  # any timed event starts the day's book
    core.on_equity(Decimal(9600), now_ms=NOON + 1)  # -4% today: under the limit
    assert not core.daily_loss_halted
    tomorrow = DAY0 + DAY_MS + HOUR_MS
    core.on_equity(Decimal(9200), now_ms=tomorrow)  # the new day starts from 9,600: -4.17%
    assert core.daily_loss_status()["day_start_equity"] == "9600"
    assert core.day_pnl == Decimal(-400)
    assert not core.daily_loss_halted
    core.on_equity(Decimal(9120), now_ms=tomorrow + 1)  # 480 = 5% of 9,600
    assert core.daily_loss_halted


def test_daily_loss_waits_for_a_fresh_mark_after_a_close() -> None:
    core = loose()
    core.evaluate(sig(side=Side.SELL), inst(), None, NOON)
    open_position(core, "a", market="binance:A/USDT", strategy="mb", notional="1000")
    open_position(core, "b", market="binance:B/USDT", strategy="mb", notional="1000")
    core.on_equity(Decimal(10_300), now_ms=NOON + 1)  # b is up 300
    core.on_position_closed("a", Decimal(-600), now_ms=NOON + 2)
    # equity is really 10,000 - 600 + 300 = 9,700; with b's mark cleared it would read 9,400 (-6%)
    assert not core.daily_loss_halted
    core.on_equity(Decimal(9700), now_ms=NOON + 3)
    assert not core.daily_loss_halted
    core.on_equity(Decimal(9500), now_ms=NOON + 4)
    assert core.daily_loss_halted


def test_daily_loss_checked_at_close_when_nothing_else_is_held() -> None:
    core = make_core()
    core.evaluate(sig(side=Side.SELL), inst(), None, NOON)
    open_position(core, "a", market=MARKET, strategy="mb", notional="1000")
    core.on_position_closed("a", Decimal(-500), now_ms=NOON + 1)
    assert core.daily_loss_halted


def test_daily_loss_limit_off_never_halts() -> None:
    core = make_core(max_daily_loss_fraction=None)
    core.evaluate(sig(side=Side.SELL), inst(), None, NOON)
    core.on_equity(Decimal(1000), now_ms=NOON + 1)
    decision = core.evaluate(sig(ts=NOON + 2), inst(), None, NOON + 2)
    assert not core.daily_loss_halted
    assert decision.gate(Gate.DAILY_LOSS).detail == "no daily loss limit"
    assert decision.gate(Gate.DAILY_LOSS).passed is True


def test_limits_state_round_trips_and_old_snapshots_still_load() -> None:
    core = loose(max_orders_per_s=1)
    assert core.evaluate(sig_in(1, NOON), market_inst(1), None, NOON).approved
    core.on_equity(Decimal(9000), now_ms=NOON + 1)
    assert core.daily_loss_halted
    state = json.loads(json.dumps(core.state()))
    restored = PortfolioCore.from_state(core.portfolio, ExitConfig(), [strat(allocation=0.9)], state)
    assert restored.state() == core.state()
    assert restored.daily_loss_halted
    later = sig_in(2, NOON + 500)
    assert restored.evaluate(later, market_inst(2), None, NOON + 500) == core.evaluate(
        later, market_inst(2), None, NOON + 500
    )
    old = {k: state[k] for k in ("version", "realized_pnl", "unrealized_pnl", "holdings")}
    fresh = PortfolioCore.from_state(core.portfolio, ExitConfig(), [strat(allocation=0.9)], old)
    assert not fresh.daily_loss_halted
    assert fresh.day_pnl == 0


@settings(max_examples=150, deadline=None)
@given(
    gaps=st.lists(st.integers(min_value=0, max_value=700), min_size=1, max_size=40),
    rate=st.integers(min_value=1, max_value=5),
    cap=st.none() | st.integers(min_value=100, max_value=3000),
)
def test_any_signal_stream_respects_order_rate_and_notional_limits(
    gaps: list[int], rate: int, cap: int | None
) -> None:
    core = loose(
        initial_capital=Decimal(1_000_000),
        max_position_fraction=0.001,  # 1,000 an entry: room for every signal
        max_orders_per_s=rate,
        max_order_notional=None if cap is None else Decimal(cap),
    )
    approved: list[int] = []
    t = NOON
    for n, gap in enumerate(gaps):
        t += gap
        decision = core.evaluate(sig_in(n, t), market_inst(n), None, t)
        if decision.approved:
            plan = plan_of(decision)
            approved.append(t)
            if cap is not None:
                assert plan.notional <= cap
        else:
            assert decision.rejected_by in (Gate.ORDER_RATE, Gate.ORDER_NOTIONAL)
    for end in approved:
        assert sum(1 for a in approved if end - 1000 < a <= end) <= rate


# --------------------------------------------------------------------------- replays, partial entries


def test_signal_replayed_after_its_position_closed_is_refused() -> None:
    """Issue 10, defect 4: a signal replayed after a strategy restart reopened a closed position
    under the same id and client ids (the one-per-market gate only sees live holdings)."""
    core = make_core()
    plan = plan_of(core.evaluate(sig(), inst(), None, NOON))
    core.on_position_opened(plan.position_id, "mb", MARKET, plan.notional, MARKET)
    core.on_position_closed(plan.position_id, Decimal(5))
    replayed = core.evaluate(sig(), inst(), None, NOON + 120_000)
    assert not replayed.approved
    assert replayed.rejected_by is Gate.REPLAYED
    restored = PortfolioCore.from_state(PortfolioConfig(), ExitConfig(), [strat()], core.state())
    assert restored.evaluate(sig(), inst(), None, NOON + 180_000).rejected_by is Gate.REPLAYED
    newer = restored.evaluate(sig(ts=NOON + 60_000), inst(), None, NOON + 180_000)
    assert plan_of(newer).position_id != plan.position_id  # a new signal still trades


def test_partial_entry_fill_keeps_the_rest_reserved_until_the_entry_ends() -> None:
    """Issue 10, defect 5: a partial entry fill released the rest of the entry's reservation
    while the entry still worked, so allocations and the cash reserve could be exceeded."""
    core = make_core(max_position_fraction=0.2)  # allocation 20% of 10,000 = 2,000 = one full entry
    plan = plan_of(core.evaluate(sig(), inst(), None, NOON))
    assert plan.notional == Decimal(2000)
    core.on_position_opened(plan.position_id, "mb", MARKET, Decimal(500), MARKET, entry_working=True)
    assert core.committed("mb") == Decimal(2000)
    eth = sig(market="binance:ETH/USDT", ts=NOON + 60_000)
    assert core.evaluate(eth, inst("ETH/USDT"), None, NOON + 60_000).rejected_by is Gate.ALLOCATION
    core.on_position_opened(plan.position_id, "mb", MARKET, Decimal(500), MARKET)  # the entry ended
    assert core.committed("mb") == Decimal(500)
    eth_later = sig(market="binance:ETH/USDT", ts=NOON + 120_000)
    assert plan_of(core.evaluate(eth_later, inst("ETH/USDT"), None, NOON + 120_000)).notional == Decimal(1500)


def test_spent_signals_over_weeks_of_new_markets_stay_bounded_and_refused() -> None:
    """Issue 10, defect 4 (bounded): every market a strategy ever entered was remembered in the
    checkpoint forever, so weeks of new markets (a Polymarket window every five minutes) grew it
    without end. Markets acted on longer than the replay horizon ago are forgotten, and a signal
    that old is refused outright: a replay stays refused, before and after a restart."""
    core = make_core(max_daily_loss_fraction=None)
    step = 15 * 60_000  # a new market every 15 minutes, for four weeks
    spent: list[Signal] = []
    for i in range(4 * 7 * 24 * 4):
        signal = sig(market=f"binance:M{i}/USDT", ts=NOON + i * step)
        plan = plan_of(core.evaluate(signal, inst(f"M{i}/USDT"), None, signal.ts_ms))
        core.on_position_opened(plan.position_id, "mb", signal.market, plan.notional, signal.market)
        core.on_position_closed(plan.position_id, Decimal(0))
        spent.append(signal)
    horizon_ms = int(PortfolioConfig().signal_replay_horizon_h * HOUR_MS)
    assert len(core.state()["acted_until_ms"]) <= horizon_ms // step + 1
    now = spent[-1].ts_ms + step
    restored = PortfolioCore.from_state(
        PortfolioConfig(), ExitConfig(), [strat()], json.loads(json.dumps(core.state()))
    )
    for replayed in (spent[0], spent[len(spent) // 2], spent[-2], spent[-1]):
        instrument = inst(replayed.market.removeprefix("binance:"))
        for book_keeper in (core, restored):
            decision = book_keeper.evaluate(replayed, instrument, None, now)
            assert decision.rejected_by is Gate.REPLAYED, decision.failed
    fresh = sig(market=spent[0].market, ts=now)  # a new signal still trades, in an old market too
    assert plan_of(restored.evaluate(fresh, inst("M0/USDT"), None, now)).signal_ts_ms == now
