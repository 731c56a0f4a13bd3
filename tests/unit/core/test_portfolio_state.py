"""PortfolioCore books and state: exact equity/cash/committed, state round trips, replayed signals,
partial entries."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from actors.core.portfolio import PortfolioCore
from actors.core.portfolio_decisions import Gate
from actors.domain.model import HOUR_MS, Signal
from config.models import ExitConfig, MeanReversionConfig, PortfolioConfig
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
