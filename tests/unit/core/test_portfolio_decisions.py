"""PortfolioCore decisions: the strategy gate, every failure reported, exits passed through, bad input."""

from __future__ import annotations

import pytest

from actors.core.portfolio_decisions import DecisionKind, Gate
from actors.domain.model import HOUR_MS, Side
from tests.unit.core.portfolio_helpers import (
    DAY0,
    MARKET,
    NOON,
    book,
    inst,
    make_core,
    open_position,
    plan_of,
    sig,
    strat,
)


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
