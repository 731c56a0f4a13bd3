"""PositionCore entry: the deterministic entry order, fills and partial fills, cancels, timeouts."""

from __future__ import annotations

import pytest

from actors.core.position import PositionCore
from actors.domain.model import CancelOrder, ExitReason, ExitStatus, OrderStatus, Side, deterministic_id
from tests.unit.core.position_helpers import (
    BINARY,
    CFG,
    T0,
    D,
    cancels,
    closed,
    enter,
    fill,
    opened,
    places,
    status,
)


def test_enter_emits_deterministic_limit_buy_entering() -> None:
    core, cmds = PositionCore.enter(
        position_id="p1",
        strategy="lag",
        instrument=BINARY,
        qty=D("200.7"),
        limit_price=D("0.456"),
        signal_strength=0.8,
        now_ms=T0,
        config=CFG,
    )
    (place,) = places(cmds)
    assert status(core) is ExitStatus.ENTERING
    assert place.order.client_id == deterministic_id("rt", "p1", "entry", 0)
    assert (place.order.side, place.order.price, place.order.qty) == (Side.BUY, D("0.45"), D("200"))
    replay, replay_cmds = PositionCore.enter(
        position_id="p1",
        strategy="lag",
        instrument=BINARY,
        qty=D("200.7"),
        limit_price=D("0.456"),
        signal_strength=0.8,
        now_ms=T0,
        config=CFG,
    )
    assert replay_cmds == cmds
    assert replay.state() == core.state()


def test_enter_below_min_size_raises() -> None:
    with pytest.raises(ValueError, match="below the lot"):
        enter(BINARY, qty="4")


def test_full_entry_fill_opens_with_two_resting_targets() -> None:
    core, targets = opened()
    pos = core.position
    assert pos.status is ExitStatus.OPEN
    assert pos.stop_price == D("0.4365")
    assert [(p.order.purpose, p.order.side, p.order.price, p.order.qty) for p in targets] == [
        ("target_one", Side.SELL, D("0.46"), D("100")),  # 0.459 rounded up to the tick
        ("target_two", Side.SELL, D("0.48"), D("100")),  # 0.4725 rounded up
    ]
    assert core.exits_armed()
    assert {o.client_id for o in core.open_orders()} == {p.order.client_id for p in targets}


def test_entry_partial_fills_average_price_then_cancel_opens() -> None:
    core, entry_id = enter(qty="200")
    assert places(core.on_fill(fill(core, entry_id, "0.45", "60", fee="0.01"))) == []
    core.on_fill(fill(core, entry_id, "0.44", "40", fee="0.01"))
    assert status(core) is ExitStatus.ENTERING
    assert cancels(core.cancel_entry()) == [
        CancelOrder(client_id=entry_id, market=BINARY.market_id, reason="entry timeout")
    ]
    assert core.cancel_entry() == []  # asked once
    cmds = core.on_order_update(entry_id, OrderStatus.CANCELLED, D("100"), T0 + 5)
    assert status(core) is ExitStatus.OPEN
    assert core.position.entry_qty == D("100")
    assert core.position.entry_price == D("0.446")
    assert [(p.order.price, p.order.qty) for p in places(cmds)] == [
        (D("0.46"), D("50")),
        (D("0.47"), D("50")),
    ]


def test_entry_cancel_with_fill_in_flight_waits_for_the_fill() -> None:
    core, entry_id = enter(qty="200")
    core.on_fill(fill(core, entry_id, "0.45", "60"))
    assert core.on_order_update(entry_id, OrderStatus.CANCELLED, D("100"), T0 + 5) == []
    assert status(core) is ExitStatus.ENTERING
    cmds = core.on_fill(fill(core, entry_id, "0.45", "40"))
    assert status(core) is ExitStatus.OPEN
    assert sum(p.order.qty for p in places(cmds)) == D("100")


def test_zero_fill_entry_cancelled_closes_unfilled() -> None:
    core, entry_id = enter()
    core.cancel_entry()
    cmds = core.on_order_update(entry_id, OrderStatus.CANCELLED, D(0), T0 + 5)
    (done,) = closed(cmds)
    assert (done.exit_reason, done.realized_pnl, done.fees) == (ExitReason.UNFILLED, D(0), D(0))
    assert status(core) is ExitStatus.CLOSED
    assert places(cmds) == []


def test_entry_filled_report_before_fills_waits() -> None:
    core, entry_id = enter(qty="200")
    assert core.on_order_update(entry_id, OrderStatus.FILLED, D("200"), T0) == []
    assert status(core) is ExitStatus.ENTERING
    core.on_fill(fill(core, entry_id, "0.45", "200"))
    assert status(core) is ExitStatus.OPEN


def test_entry_unfilled_past_timeout_is_cancelled_once_then_closes_unfilled() -> None:
    core, entry_id = enter()
    assert core.on_timer(T0 + CFG.entry_timeout_s * 1000 - 1) == []
    (cancel,) = cancels(core.on_timer(T0 + CFG.entry_timeout_s * 1000))
    assert cancel.client_id == entry_id
    assert cancels(core.on_price(D("0.45"), T0 + CFG.entry_timeout_s * 1000 + 1)) == []  # not twice
    (done,) = closed(core.on_order_update(entry_id, OrderStatus.CANCELLED, D(0), T0 + 10**6))
    assert done.exit_reason is ExitReason.UNFILLED


def test_order_reported_filled_before_its_fill_is_listed_as_awaiting_fills() -> None:
    core, entry_id = enter()
    core.on_order_update(entry_id, OrderStatus.FILLED, D("200"), T0 + 1)
    assert core.awaiting_fills() == [entry_id]
    core.on_fill(fill(core, entry_id, "0.45", "200"))
    assert core.awaiting_fills() == []
