"""PositionCore stops and other exits: stop races, stale and duplicate prices, stuck closes, exit
signals, the time exit and the trailing stop."""

from __future__ import annotations

from actors.core.position import PositionCore
from actors.domain.model import HOUR_MS, ExitReason, ExitStatus, OrderStatus, Side, deterministic_id
from config.models import ExitConfig
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
    target_ids,
)


def test_stop_cancels_targets_and_sells_only_after_confirms() -> None:
    core, _ = opened()
    t1, t2 = target_ids(core)
    cmds = core.on_price(D("0.43"), T0 + 10)
    assert [c.client_id for c in cancels(cmds)] == [t1, t2]
    assert places(cmds) == []  # everything is still reserved by the targets
    assert status(core) is ExitStatus.CLOSING
    assert core.exits_armed()
    (first,) = places(core.on_order_update(t1, OrderStatus.CANCELLED, D(0), T0 + 11))
    assert (first.order.purpose, first.order.qty, first.order.price) == ("stop", D("100"), D("0.42"))
    (second,) = places(core.on_order_update(t2, OrderStatus.CANCELLED, D(0), T0 + 12))
    assert second.order.qty == D("100")
    assert second.order.client_id != first.order.client_id
    core.on_fill(fill(core, first.order.client_id, "0.43", "100"))
    (done,) = closed(core.on_fill(fill(core, second.order.client_id, "0.42", "100")))
    assert done.exit_reason is ExitReason.STOP
    assert done.realized_pnl == D("43") + D("42") - D("90") - D("0.09")


def test_stop_race_target_filled_before_cancel_is_accounted() -> None:
    core, _ = opened()
    t1, t2 = target_ids(core)
    core.on_price(D("0.43"), T0 + 10)
    core.on_fill(fill(core, t1, "0.46", "100"))  # the target filled before the cancel landed
    assert core.on_order_update(t1, OrderStatus.CANCELLED, D("100"), T0 + 11) == []
    (sell,) = places(core.on_order_update(t2, OrderStatus.CANCELLED, D(0), T0 + 12))
    assert sell.order.qty == D("100")
    (done,) = closed(core.on_fill(fill(core, sell.order.client_id, "0.42", "100")))
    assert done.exit_reason is ExitReason.STOP
    assert done.realized_pnl == D("46") + D("42") - D("90") - D("0.09")


def test_stop_race_fill_in_flight_keeps_quantity_reserved() -> None:
    core, _ = opened()
    t1, t2 = target_ids(core)
    core.on_price(D("0.43"), T0 + 10)
    # cancel confirmed, venue says 30 filled, but that fill has not reached us yet
    (sell,) = places(core.on_order_update(t1, OrderStatus.CANCELLED, D("30"), T0 + 11))
    assert sell.order.qty == D("70")
    assert core.on_fill(fill(core, t1, "0.46", "30")) == []
    (sell2,) = places(core.on_order_update(t2, OrderStatus.CANCELLED, D(0), T0 + 12))
    assert sell2.order.qty == D("100")
    pos = core.position
    open_sells = sum(o.remaining for o in core.open_orders() if o.side is Side.SELL)
    assert pos.sold_qty + open_sells == pos.entry_qty


def test_stop_triggers_once_and_duplicate_price_is_silent() -> None:
    core, _ = opened()
    assert cancels(core.on_price(D("0.43"), T0 + 10))
    assert core.on_price(D("0.43"), T0 + 10) == []
    assert core.on_price(D("0.40"), T0 + 11) == []
    assert core.on_exit_signal(T0 + 12) == []
    assert core.exit_trigger is ExitReason.STOP


def test_stale_price_is_ignored() -> None:
    core, _ = opened()
    core.on_price(D("0.45"), T0 + 100)
    assert core.on_price(D("0.40"), T0 + 50) == []
    assert core.exit_trigger is None


def test_stuck_closing_order_is_repriced_wider() -> None:
    core, _ = opened()
    t1, t2 = target_ids(core)
    core.on_price(D("0.43"), T0)
    (first,) = places(core.on_order_update(t1, OrderStatus.CANCELLED, D(0), T0))
    (second,) = places(core.on_order_update(t2, OrderStatus.CANCELLED, D(0), T0 + 60_000))
    assert first.order.price == D("0.42")  # floor(0.43 * 0.99)
    assert core.on_timer(T0 + 119_000) == []
    (cancel,) = cancels(core.on_timer(T0 + 120_000))
    assert cancel.client_id == first.order.client_id
    assert core.on_timer(T0 + 121_000) == []  # cancel already pending, the second not yet stuck
    core.on_price(D("0.40"), T0 + 150_000)
    (again,) = places(core.on_order_update(first.order.client_id, OrderStatus.CANCELLED, D(0), T0 + 150_000))
    assert again.order.client_id == deterministic_id("rt", "p1", "stop", 2)
    assert (again.order.qty, again.order.price) == (D("100"), D("0.38"))  # floor(0.40 * (1 - 3 * 1%))
    assert [c.client_id for c in cancels(core.on_timer(T0 + 180_000))] == [second.order.client_id]


def test_exit_signal_closes_with_signal_reason() -> None:
    core, _ = opened()
    t1, t2 = target_ids(core)
    core.on_price(D("0.47"), T0 + 1)
    assert len(cancels(core.on_exit_signal(T0 + 2))) == 2
    core.on_order_update(t1, OrderStatus.CANCELLED, D(0), T0 + 3)
    (sell,) = places(core.on_order_update(t2, OrderStatus.CANCELLED, D(0), T0 + 3))
    assert (sell.order.qty, sell.order.price) == (D("100"), D("0.46"))  # floor(0.47 * 0.99)
    (sell1,) = [
        o for o in core.open_orders() if o.purpose == "signal" and o.client_id != sell.order.client_id
    ]
    core.on_fill(fill(core, sell1.client_id, "0.47", "100"))
    (done,) = closed(core.on_fill(fill(core, sell.order.client_id, "0.47", "100")))
    assert done.exit_reason is ExitReason.SIGNAL


def test_exit_signal_while_entering_cancels_entry_then_sells_all() -> None:
    core, entry_id = enter(qty="200")
    core.on_fill(fill(core, entry_id, "0.45", "50"))
    (cancel,) = cancels(core.on_exit_signal(T0 + 1))
    assert cancel.client_id == entry_id
    cmds = core.on_order_update(entry_id, OrderStatus.CANCELLED, D("50"), T0 + 2)
    (sell,) = places(cmds)
    assert (sell.order.purpose, sell.order.qty) == ("signal", D("50"))
    assert status(core) is ExitStatus.CLOSING


def test_provisional_stop_while_entering_stops_buying() -> None:
    core, entry_id = enter(qty="200")
    core.on_fill(fill(core, entry_id, "0.45", "50"))
    (cancel,) = cancels(core.on_price(D("0.43"), T0 + 1))
    assert cancel.client_id == entry_id
    (sell,) = places(core.on_order_update(entry_id, OrderStatus.CANCELLED, D("50"), T0 + 2))
    assert sell.order.purpose == "stop"


# ---------------------------------------------------------------------------- time exit, trailing


def test_time_exit_after_four_quiet_hours() -> None:
    core, _ = opened()
    core.on_price(D("0.45"), T0 + HOUR_MS)
    assert core.on_price(D("0.452"), T0 + 4 * HOUR_MS - 1) == []
    cmds = core.on_price(D("0.449"), T0 + 4 * HOUR_MS)
    assert len(cancels(cmds)) == 2
    assert core.exit_trigger is ExitReason.TIME_EXIT


def test_time_exit_clock_restarts_after_leaving_band() -> None:
    core, _ = opened()
    core.on_price(D("0.46"), T0 + HOUR_MS)  # out of the ±0.5% band
    core.on_price(D("0.45"), T0 + 2 * HOUR_MS)  # back in: the clock restarts here
    assert core.on_price(D("0.45"), T0 + 5 * HOUR_MS) == []
    assert core.on_timer(T0 + 6 * HOUR_MS - 1) == []
    assert cancels(core.on_timer(T0 + 6 * HOUR_MS))
    assert core.exit_trigger is ExitReason.TIME_EXIT


def test_time_exit_on_timer_without_any_price() -> None:
    core, _ = opened()
    assert core.on_timer(T0 + 4 * HOUR_MS - 1) == []
    assert cancels(core.on_timer(T0 + 4 * HOUR_MS))


def test_trailing_stop_only_moves_up_then_hits_trailing() -> None:
    core, _ = opened()
    pos = core.position
    core.on_price(D("0.49"), T0 + 1)  # +8.9%: not yet active
    assert pos.stop_price == D("0.4365")
    core.on_price(D("0.50"), T0 + 2)  # +11.1%: max(0.4365, 0.4725, 0.475)
    assert pos.stop_price == D("0.475")
    core.on_price(D("0.48"), T0 + 3)
    assert pos.stop_price == D("0.475")
    core.on_price(D("0.52"), T0 + 4)
    assert pos.stop_price == D("0.494")
    core.on_price(D("0.50"), T0 + 5)
    assert pos.stop_price == D("0.494")
    assert cancels(core.on_price(D("0.49"), T0 + 6))
    assert core.exit_trigger is ExitReason.TRAILING


def test_trailing_lock_floor_applies_when_distance_is_lower() -> None:
    core, _ = opened(config=ExitConfig(trailing_distance_pct=0.2))
    core.on_price(D("0.50"), T0 + 1)
    assert core.position.stop_price == D("0.45") * D("1.05")


def test_closed_core_restored_from_its_state_rebuilds_the_close_it_emitted() -> None:
    """A shell that saved the closed core but died before logging and booking the close must be
    able to carry the same close out on restore: the core gives it back from its state."""
    core, _ = opened()
    t1, t2 = target_ids(core)
    core.on_price(D("0.43"), T0 + 10)
    core.on_fill(fill(core, t1, "0.46", "100"))
    (sell,) = places(core.on_order_update(t2, OrderStatus.CANCELLED, D(0), T0 + 12))
    (emitted,) = closed(core.on_fill(fill(core, sell.order.client_id, "0.42", "100", ts=T0 + 13)))
    restored = PositionCore.from_state(core.state(), BINARY, CFG)
    assert restored.close_command() == emitted


def test_open_core_has_no_close_to_rebuild() -> None:
    core, _ = opened()
    assert core.close_command() is None
