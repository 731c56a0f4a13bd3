"""PositionCore.flatten, the kill switch's `--flatten`: cancel every working order, then close all
that is held at the slippage cap (a marketable limit), with exit reason ``kill_switch``."""

from __future__ import annotations

from actors.core.position import PositionCore
from actors.domain.model import ExitReason, ExitStatus, OrderStatus, Side
from config.models import ExitConfig
from tests.unit.core.position_helpers import (
    SPOT,
    T0,
    D,
    cancels,
    closed,
    enter,
    fill,
    opened,
    places,
    status,
    target_ids,
)

FLATTEN = ExitReason.KILL_SWITCH.value


def test_flatten_cancels_targets_then_sells_everything_at_the_cap_price() -> None:
    core, _ = opened()  # 200 @ 0.45, targets resting; default cap 10 %
    t1, t2 = target_ids(core)
    core.on_price(D("0.47"), T0 + 1)
    cmds = core.flatten(T0 + 2)
    assert [c.client_id for c in cancels(cmds)] == [t1, t2]
    assert places(cmds) == []  # everything is still reserved by the targets until they are gone
    assert status(core) is ExitStatus.CLOSING
    assert core.exit_trigger is ExitReason.KILL_SWITCH
    core.on_order_update(t1, OrderStatus.CANCELLED, D(0), T0 + 3)
    (sell,) = places(core.on_order_update(t2, OrderStatus.CANCELLED, D(0), T0 + 3))
    whole = [o for o in core.open_orders() if o.purpose == FLATTEN]
    assert sum(o.qty for o in whole) == D("200")
    assert sell.order.side is Side.SELL
    assert sell.order.price == D("0.43")  # ceil(0.47 * (1 - 10 %)), not the 1 % first step
    first, last = whole
    assert closed(core.on_fill(fill(core, first.client_id, "0.46", str(first.qty)))) == []
    (done,) = closed(core.on_fill(fill(core, last.client_id, "0.46", str(last.qty))))
    assert done.exit_reason is ExitReason.KILL_SWITCH
    assert core.open_orders() == []


def test_flatten_is_idempotent_and_keeps_its_working_close() -> None:
    core, _ = opened()
    t1, t2 = target_ids(core)
    core.flatten(T0 + 2)
    assert core.flatten(T0 + 3) == []  # cancels already asked for, nothing free to sell yet
    core.on_order_update(t1, OrderStatus.CANCELLED, D(0), T0 + 4)
    core.on_order_update(t2, OrderStatus.CANCELLED, D(0), T0 + 4)
    working = [o.client_id for o in core.open_orders() if o.purpose == FLATTEN]
    assert working
    assert cancels(core.flatten(T0 + 5)) == []  # its own closes are not cancelled again


def test_flatten_overrides_a_stop_already_closing_and_reprices_at_the_cap() -> None:
    core, _ = opened()
    t1, t2 = target_ids(core)
    core.on_price(D("0.43"), T0 + 1)  # stop fires: targets cancelled
    core.on_order_update(t1, OrderStatus.CANCELLED, D(0), T0 + 2)
    (stop_sell,) = places(core.on_order_update(t2, OrderStatus.CANCELLED, D(0), T0 + 2))
    assert stop_sell.order.purpose == ExitReason.STOP.value
    stop_ids = [o.client_id for o in core.open_orders() if o.purpose == ExitReason.STOP.value]
    cmds = core.flatten(T0 + 3)
    assert sorted(c.client_id for c in cancels(cmds)) == sorted(stop_ids)
    assert core.exit_trigger is ExitReason.KILL_SWITCH
    resold = []
    for cid in stop_ids:
        resold += places(core.on_order_update(cid, OrderStatus.CANCELLED, D(0), T0 + 4))
    assert {p.order.purpose for p in resold} == {FLATTEN}
    assert sum(p.order.qty for p in resold) == D("200")
    assert {p.order.price for p in resold} == {D("0.39")}  # ceil(0.43 * 0.9)


def test_flatten_while_entering_cancels_the_entry_and_closes_what_filled() -> None:
    core, entry_id = enter(qty="200")
    core.on_fill(fill(core, entry_id, "0.45", "50"))
    (cancel,) = cancels(core.flatten(T0 + 1))
    assert cancel.client_id == entry_id
    (sell,) = places(core.on_order_update(entry_id, OrderStatus.CANCELLED, D("50"), T0 + 2))
    assert (sell.order.purpose, sell.order.qty) == (FLATTEN, D("50"))
    assert sell.order.price == D("0.41")  # no price seen yet: ceil(entry 0.45 * 0.9)
    (done,) = closed(core.on_fill(fill(core, sell.order.client_id, "0.44", "50")))
    assert done.exit_reason is ExitReason.KILL_SWITCH


def test_flatten_of_an_unfilled_entry_ends_unfilled() -> None:
    core, entry_id = enter(qty="200")
    core.flatten(T0 + 1)
    (done,) = closed(core.on_order_update(entry_id, OrderStatus.CANCELLED, D(0), T0 + 2))
    assert done.exit_reason is ExitReason.UNFILLED


def test_flatten_drops_intents_the_venue_never_saw() -> None:
    """A frozen position holds back re-armed targets as intents: flatten drops them, sells at once."""
    core, _ = opened()
    t1, t2 = target_ids(core)
    core.on_order_update(t1, OrderStatus.CANCELLED, D(0), T0 + 1)  # the kill switch's cancel_all
    core.on_order_update(t2, OrderStatus.CANCELLED, D(0), T0 + 1)
    held = [o.client_id for o in core.orders.values() if o.status is OrderStatus.PENDING]
    assert held  # re-armed targets, held back by the frozen shell
    cmds = core.flatten(T0 + 2, unsent=held)
    assert cancels(cmds) == []
    (sell,) = places(cmds)
    assert (sell.order.purpose, sell.order.qty) == (FLATTEN, D("200"))
    assert all(core.orders[cid].status is OrderStatus.CANCELLED for cid in held)


def test_flatten_gives_a_close_blocked_by_rejections_a_fresh_start() -> None:
    config = ExitConfig(max_close_rejections=1)
    core, _ = opened(config=config)
    t1, t2 = target_ids(core)
    core.on_exit_signal(T0 + 1)
    core.on_order_update(t1, OrderStatus.CANCELLED, D(0), T0 + 2)
    assert places(core.on_order_update(t2, OrderStatus.CANCELLED, D(0), T0 + 2))
    for order in [o for o in core.open_orders() if o.purpose == ExitReason.SIGNAL.value]:
        core.on_order_update(order.client_id, OrderStatus.REJECTED, D(0), T0 + 3)
    assert core.close_blocked is not None
    (again,) = places(core.flatten(T0 + 4))
    assert (again.order.purpose, again.order.qty) == (FLATTEN, D("200"))
    assert core.close_blocked is None


def test_flatten_survives_a_snapshot_and_a_closed_position_ignores_it() -> None:
    core, _ = opened(SPOT, qty="0.010", price="60000")
    core.flatten(T0 + 1)
    restored = PositionCore.from_state(core.state(), SPOT, core.config)
    assert restored.exit_trigger is ExitReason.KILL_SWITCH
    assert restored.flatten(T0 + 2) == []
    for order in list(restored.open_orders()):
        restored.on_order_update(order.client_id, OrderStatus.CANCELLED, D(0), T0 + 3)
    first, last = [o for o in restored.open_orders() if o.purpose == FLATTEN]
    assert first.price == last.price == D("54000.00")  # no price seen: ceil(entry * (1 - 10 %))
    assert first.qty + last.qty == D("0.010")
    restored.on_fill(fill(restored, first.client_id, "59990", str(first.qty)))
    (done,) = closed(restored.on_fill(fill(restored, last.client_id, "59990", str(last.qty))))
    assert done.exit_reason is ExitReason.KILL_SWITCH
    assert restored.flatten(T0 + 5) == []
