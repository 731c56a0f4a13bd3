"""PortfolioCore pre-trade limits: max order notional, order rate, open orders a market, daily loss."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from actors.core.portfolio import PortfolioCore
from actors.core.portfolio_decisions import DecisionKind, Gate
from actors.domain.model import DAY_MS, HOUR_MS, Side
from config.models import ExitConfig, PortfolioConfig
from tests.unit.core.portfolio_helpers import (
    DAY0,
    MARKET,
    NOON,
    inst,
    loose,
    make_core,
    market_inst,
    open_position,
    plan_of,
    sig,
    sig_in,
    strat,
)


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
