"""PortfolioCore gates on exposure: concurrency, one position a market, duplicates, correlation
groups, the strategy's allocation and the cash reserve."""

from __future__ import annotations

from decimal import Decimal

from actors.core.portfolio_decisions import Gate
from config.models import MeanReversionConfig
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
    assert decision.gate(Gate.CORRELATION).detail == (
        "3 open move with binance:BTC/USDT (rho > 0.7, else group 'crypto'), max 3: binance:ETH/USDT "
        "(group crypto), binance:SOL/USDT (group crypto), binance:BNB/USDT (group crypto)"
    )


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


def test_unrealised_gains_do_not_free_reserve_room_rejected_by_cash_reserve() -> None:
    core = make_core(strategies=[strat(), MeanReversionConfig(name="mr", market=MARKET, allocation=1.0)])
    open_position(core, "p1", market="binance:ETH/USDT", strategy="mr", notional="9000")
    core.on_equity(Decimal(12000))  # marked 90% of 12,000 - 9,000 = 1,800; booked 9,000 - 9,000 = 0
    assert core.cash == Decimal(1000)
    decision = core.evaluate(sig(), inst(), None, NOON)
    assert decision.rejected_by is Gate.CASH_RESERVE
