"""The position exit state machine: one test per rule, then properties over random venues."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.core.position import PositionCore
from actors.domain.model import (
    HOUR_MS,
    CancelOrder,
    Command,
    ExitReason,
    ExitStatus,
    Fill,
    Instrument,
    MarketKind,
    OrderStatus,
    PlaceOrder,
    PositionClosed,
    Side,
    deterministic_id,
)
from config.models import ExitConfig

D = Decimal
CFG = ExitConfig()
BINARY = Instrument(
    venue="polymarket",
    symbol="tok-up",
    kind=MarketKind.BINARY,
    tick_size=D("0.01"),
    lot_size=D("1"),
    min_size=D("5"),
)
SPOT = Instrument(venue="binance", symbol="BTC/USDT", tick_size=D("0.01"), lot_size=D("0.001"))
T0 = 1_700_000_000_000
_fill_ids = itertools.count()


def places(cmds: list[Command]) -> list[PlaceOrder]:
    return [c for c in cmds if isinstance(c, PlaceOrder)]


def cancels(cmds: list[Command]) -> list[CancelOrder]:
    return [c for c in cmds if isinstance(c, CancelOrder)]


def closed(cmds: list[Command]) -> list[PositionClosed]:
    return [c for c in cmds if isinstance(c, PositionClosed)]


def fill(
    core: PositionCore, client_id: str, price: str, qty: str, fee: str = "0", ts: int = T0, fid: str = ""
) -> Fill:
    order = core.orders[client_id]
    return Fill(
        fill_id=fid or f"fill-{next(_fill_ids)}",
        client_id=client_id,
        market=order.market,
        side=order.side,
        price=D(price),
        qty=D(qty),
        fee=D(fee),
        ts_ms=ts,
    )


def enter(
    instrument: Instrument = BINARY, qty: str = "200", price: str = "0.45", config: ExitConfig = CFG
) -> tuple[PositionCore, str]:
    core, cmds = PositionCore.enter(
        position_id="p1",
        strategy="lag",
        instrument=instrument,
        qty=D(qty),
        limit_price=D(price),
        signal_strength=0.8,
        now_ms=T0,
        config=config,
    )
    return core, places(cmds)[0].order.client_id


def opened(
    instrument: Instrument = BINARY, qty: str = "200", price: str = "0.45", config: ExitConfig = CFG
) -> tuple[PositionCore, list[PlaceOrder]]:
    core, entry_id = enter(instrument, qty, price, config)
    cmds = core.on_fill(fill(core, entry_id, price, qty, fee="0.09"))
    return core, places(cmds)


def status(core: PositionCore) -> ExitStatus:
    """The status, read through a call so mypy does not narrow it between events."""
    return core.position.status


def target_ids(core: PositionCore) -> tuple[str, str]:
    ids = {o.purpose: o.client_id for o in core.orders.values()}
    return ids["target_one"], ids["target_two"]


# ---------------------------------------------------------------------------- entry


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


# ---------------------------------------------------------------------------- targets


def test_target_one_fill_moves_to_half_closed() -> None:
    core, _ = opened()
    t1, _t2 = target_ids(core)
    core.on_fill(fill(core, t1, "0.46", "100", fee="0.02", ts=T0 + 9))
    assert status(core) is ExitStatus.HALF_CLOSED
    assert core.position.target_one_filled_ms == T0 + 9
    assert core.exits_armed()


def test_target_two_partial_after_half_moves_to_closing() -> None:
    core, _ = opened()
    t1, t2 = target_ids(core)
    core.on_fill(fill(core, t1, "0.46", "100"))
    core.on_fill(fill(core, t2, "0.48", "30"))
    assert status(core) is ExitStatus.CLOSING
    assert core.exit_trigger is None
    # the stop still watches the rest
    cmds = core.on_price(D("0.43"), T0 + 10)
    assert cancels(cmds)[0].client_id == t2


def test_both_targets_close_with_target_two_and_exact_pnl() -> None:
    core, _ = opened()
    t1, t2 = target_ids(core)
    core.on_fill(fill(core, t1, "0.46", "100", fee="0.02"))
    cmds = core.on_fill(fill(core, t2, "0.48", "100", fee="0.03", ts=T0 + 99))
    (done,) = closed(cmds)
    # 100*0.46 + 100*0.48 - 200*0.45 - (0.09 + 0.02 + 0.03)
    assert done.realized_pnl == D("3.86")
    assert (done.exit_reason, done.fees, done.ts_ms) == (ExitReason.TARGET_TWO, D("0.14"), T0 + 99)
    assert status(core) is ExitStatus.CLOSED


def test_target_fills_delivered_in_reverse_still_target_two() -> None:
    core, _ = opened()
    t1, t2 = target_ids(core)
    core.on_fill(fill(core, t2, "0.48", "100"))
    assert status(core) is ExitStatus.HALF_CLOSED
    (done,) = closed(core.on_fill(fill(core, t1, "0.46", "100")))
    assert done.exit_reason is ExitReason.TARGET_TWO


def test_half_below_min_size_rests_whole_at_target_one() -> None:
    core, targets = opened(qty="8")  # halves of 4 are below the 5-share minimum
    assert [(p.order.purpose, p.order.qty) for p in targets] == [("target_one", D("8"))]
    (done,) = closed(core.on_fill(fill(core, targets[0].order.client_id, "0.46", "8")))
    assert done.exit_reason is ExitReason.TARGET_ONE


def test_dust_below_min_size_places_nothing_and_reports_unarmed() -> None:
    core, entry_id = enter(qty="200")
    core.on_fill(fill(core, entry_id, "0.45", "3"))
    cmds = core.on_order_update(entry_id, OrderStatus.CANCELLED, D("3"), T0)
    assert places(cmds) == []
    assert status(core) is ExitStatus.OPEN
    assert not core.exits_armed()
    assert any("minimum" in a for a in core.anomalies)
    (done,) = closed(core.on_settlement(D(1), T0 + HOUR_MS))
    assert done.realized_pnl == D("1.65")  # 3 * (1 - 0.45)


def test_binary_targets_capped_below_one() -> None:
    _core, targets = opened(qty="100", price="0.97")
    assert [p.order.price for p in targets] == [D("0.99"), D("0.99")]


def test_venue_cancelled_target_is_re_placed_with_new_attempt() -> None:
    core, _ = opened()
    t1, _ = target_ids(core)
    cmds = core.on_order_update(t1, OrderStatus.CANCELLED, D(0), T0 + 1)
    (again,) = places(cmds)
    assert again.order.client_id == deterministic_id("rt", "p1", "target_one", 1)
    assert (again.order.qty, again.order.price) == (D("100"), D("0.46"))
    assert any("by the venue" in a for a in core.anomalies)
    assert core.exits_armed()


# ---------------------------------------------------------------------------- stop and races


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


# ---------------------------------------------------------------------------- settlement


@pytest.mark.parametrize(("payout", "pnl"), [("1", "109.91"), ("0", "-90.09")])
def test_settlement_pays_payout_per_share_held(payout: str, pnl: str) -> None:
    core, _ = opened()
    t1, t2 = target_ids(core)
    cmds = core.on_settlement(D(payout), T0 + HOUR_MS)
    assert [c.client_id for c in cancels(cmds)] == [t1, t2]
    (done,) = closed(cmds)
    assert (done.exit_reason, done.realized_pnl) == (ExitReason.SETTLEMENT, D(pnl))
    assert core.on_settlement(D(payout), T0 + HOUR_MS) == []


def test_settlement_after_half_pays_the_rest() -> None:
    core, _ = opened()
    t1, _ = target_ids(core)
    core.on_fill(fill(core, t1, "0.46", "100"))
    (done,) = closed(core.on_settlement(D(1), T0 + HOUR_MS))
    assert done.realized_pnl == D("46") + D("100") - D("90") - D("0.09")


def test_settlement_on_spot_is_ignored_and_reported() -> None:
    core, _ = opened(SPOT, qty="0.01", price="60000")
    assert core.on_settlement(D(1), T0) == []
    assert status(core) is ExitStatus.OPEN
    assert any("non-binary" in a for a in core.anomalies)


# ---------------------------------------------------------------------------- idempotence, anomalies, state


def test_duplicate_fill_changes_nothing() -> None:
    core, _ = opened()
    t1, _ = target_ids(core)
    f = fill(core, t1, "0.46", "40", fee="0.01")
    core.on_fill(f)
    before = core.state()
    assert core.on_fill(f) == []
    assert core.state() == before


def test_unknown_client_id_ignored_and_reported() -> None:
    core, _ = opened()
    stray = Fill(
        fill_id="x",
        client_id="nope",
        market=BINARY.market_id,
        side=Side.SELL,
        price=D("0.5"),
        qty=D(1),
        ts_ms=T0,
    )
    before = core.state()
    assert core.on_fill(stray) == []
    assert core.on_order_update("nope", OrderStatus.FILLED, D(1), T0) == []
    assert core.state()["position"] == before["position"]
    assert len(core.anomalies) == 2


def test_late_open_ack_does_not_move_order_backward() -> None:
    core, _ = opened()
    t1, _ = target_ids(core)
    core.on_fill(fill(core, t1, "0.46", "100"))
    core.on_order_update(t1, OrderStatus.OPEN, D(0), T0 + 1, venue_order_id="v1")
    assert core.orders[t1].status is OrderStatus.FILLED
    assert core.orders[t1].venue_order_id == "v1"


def test_state_round_trip_yields_identical_commands() -> None:
    core, _ = opened()
    core.on_price(D("0.47"), T0 + 1)
    restored = PositionCore.from_state(json.loads(json.dumps(core.state())), BINARY, CFG)
    assert restored.state() == core.state()
    t1, t2 = target_ids(core)
    steps: list[Callable[[PositionCore], list[Command]]] = [
        lambda c: c.on_price(D("0.43"), T0 + 5),
        lambda c: c.on_order_update(t1, OrderStatus.CANCELLED, D(0), T0 + 6),
        lambda c: c.on_order_update(t2, OrderStatus.CANCELLED, D(0), T0 + 7),
    ]
    for step in steps:
        assert step(restored) == step(core)
    assert restored.state() == core.state()


def test_from_state_rejects_unknown_version() -> None:
    core, _ = opened()
    with pytest.raises(ValueError, match="version"):
        PositionCore.from_state({**core.state(), "version": 99}, BINARY, CFG)


# ---------------------------------------------------------------------------- property tests: a tiny venue


@dataclass
class VenueOrder:
    client_id: str
    side: Side
    price: Decimal
    qty: Decimal
    filled: Decimal = Decimal(0)
    open: bool = True


@dataclass
class Venue:
    """Fills resting limits when the price crosses them; its reports go into a mailbox the test shuffles."""

    instrument: Instrument
    orders: dict[str, VenueOrder] = field(default_factory=dict)
    mailbox: list[tuple[str, Any]] = field(default_factory=list)
    bought: Decimal = Decimal(0)
    sold: Decimal = Decimal(0)
    seq: int = 0

    def apply(self, cmds: list[Command]) -> None:
        for cmd in cmds:
            if isinstance(cmd, PlaceOrder):
                o = cmd.order
                assert o.price is not None
                if o.client_id in self.orders:
                    continue  # a replayed placement is idempotent at the venue
                self.orders[o.client_id] = VenueOrder(o.client_id, o.side, o.price, o.qty)
                self.mailbox.append(("update", (o.client_id, OrderStatus.OPEN, Decimal(0))))
            elif isinstance(cmd, CancelOrder):
                vo = self.orders[cmd.client_id]
                if vo.open:
                    vo.open = False
                    self.mailbox.append(("update", (vo.client_id, OrderStatus.CANCELLED, vo.filled)))

    def execute(self, vo: VenueOrder, price: Decimal, qty: Decimal, ts: int) -> None:
        self.seq += 1
        vo.filled += qty
        if vo.side is Side.BUY:
            self.bought += qty
        else:
            self.sold += qty
        fee = price * qty * Decimal("0.001")
        self.mailbox.append(("fill", Fill(
            fill_id=f"f{self.seq}", client_id=vo.client_id, market=self.instrument.market_id,
            side=vo.side, price=price, qty=qty, fee=fee, ts_ms=ts,
        )))  # fmt: skip
        if vo.filled == vo.qty:
            vo.open = False
            self.mailbox.append(("update", (vo.client_id, OrderStatus.FILLED, vo.filled)))

    def trade(self, price: Decimal, ts: int, partial: Callable[[], bool]) -> None:
        """The market trades at ``price``: sells at or below it fill, buys at or above it fill."""
        for vo in list(self.orders.values()):
            if not vo.open:
                continue
            crosses = price >= vo.price if vo.side is Side.SELL else price <= vo.price
            if not crosses:
                continue
            remaining = vo.qty - vo.filled
            qty = remaining
            if partial() and remaining > self.instrument.lot_size:
                qty = self.instrument.round_qty(remaining / 2)
            # a resting sell fills at its limit; the entry buy at the market (price improvement
            # makes the average entry a non-terminating decimal, which P&L must still get exactly)
            self.execute(vo, vo.price if vo.side is Side.SELL else price, qty, ts)

    def open_sell_remaining(self) -> Decimal:
        return sum(
            (v.qty - v.filled for v in self.orders.values() if v.open and v.side is Side.SELL), Decimal(0)
        )


class Harness:
    """Drives a core (and after a snapshot its restored twin), checking every invariant after every call."""

    def __init__(self, data: st.DataObject, instrument: Instrument, entry_qty: Decimal) -> None:
        self.data = data
        self.instrument = instrument
        self.venue = Venue(instrument)
        self.now = T0
        self.core, cmds = PositionCore.enter(
            position_id="prop", strategy="s", instrument=instrument, qty=entry_qty,
            limit_price=D("0.45"), signal_strength=0.5, now_ms=T0, config=CFG,
        )  # fmt: skip
        self.twin: PositionCore | None = None
        self.rank = self.core.position.status.rank
        self.seen: set[str] = set()
        self.sell_notional = Decimal(0)
        self.buy_notional = Decimal(0)
        self.fees = Decimal(0)
        self.settled = Decimal(0)
        self.closes: list[PositionClosed] = []
        self.venue.apply(cmds)

    def call(self, action: Callable[[PositionCore], list[Command]]) -> None:
        cmds = action(self.core)
        if self.twin is not None:
            assert action(self.twin) == cmds
            assert self.twin.state() == self.core.state()
        self.closes += closed(cmds)
        self.venue.apply(cmds)
        self.check()

    def check(self) -> None:
        pos = self.core.position
        assert pos.status.rank >= self.rank, "status moved backward"
        self.rank = pos.status.rank
        assert pos.sold_qty <= pos.entry_qty
        core_open = sum((o.remaining for o in self.core.open_orders() if o.side is Side.SELL), Decimal(0))
        assert pos.sold_qty + core_open <= pos.entry_qty
        v = self.venue
        assert v.sold + v.open_sell_remaining() <= v.bought, "venue oversold"
        expected = self.sell_notional + self.settled - pos.entry_price * pos.sold_qty - self.fees
        assert pos.realized_pnl == expected
        assert len(self.closes) <= 1
        if pos.status not in (ExitStatus.ENTERING, ExitStatus.CLOSED):
            held = self.instrument.round_qty(pos.open_qty)
            if held >= self.instrument.min_size:
                assert self.core.exits_armed(), "sellable quantity left unprotected"
        if self.closes:
            assert pos.status is ExitStatus.CLOSED
            total = self.sell_notional + self.settled - self.buy_notional - self.fees
            assert self.closes[0].realized_pnl == total

    def deliver(self, index: int, duplicate: bool) -> None:
        kind, payload = self.venue.mailbox[index]
        if not duplicate:
            del self.venue.mailbox[index]
        if kind == "fill":
            f: Fill = payload
            if f.fill_id not in self.seen and self.core.position.status is not ExitStatus.CLOSED:
                self.seen.add(f.fill_id)
                self.fees += f.fee
                if f.side is Side.SELL:
                    self.sell_notional += f.notional
                else:
                    self.buy_notional += f.notional
            self.call(lambda c: c.on_fill(f))
        else:
            cid, status, filled = payload
            self.call(lambda c: c.on_order_update(cid, status, filled, self.now))

    def deliver_some(self) -> None:
        for _ in range(self.data.draw(st.integers(0, 4), label="deliveries")):
            if not self.venue.mailbox:
                return
            index = self.data.draw(st.integers(0, len(self.venue.mailbox) - 1), label="which")
            dup = self.data.draw(st.integers(0, 9), label="dup") == 0
            self.deliver(index, dup)

    def drain(self) -> None:
        while self.venue.mailbox:
            self.deliver(0, False)

    def price(self, price: Decimal) -> None:
        self.call(lambda c: c.on_price(price, self.now))

    def settle(self, payout: Decimal) -> None:
        if self.core.position.status is not ExitStatus.CLOSED:
            self.settled += payout * self.core.position.open_qty
        self.call(lambda c: c.on_settlement(payout, self.now))

    def snapshot(self) -> None:
        raw = json.loads(json.dumps(self.core.state()))
        self.twin = PositionCore.from_state(raw, self.instrument, CFG)
        assert self.twin.state() == self.core.state()


# half the prices sit at the entry, so entries fill and quiet spells reach the time exit
prices = st.one_of(st.just(D("0.45")), st.integers(min_value=35, max_value=60).map(lambda n: D(n) / 100))


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(
    data=st.data(),
    binary=st.booleans(),
    qty=st.integers(10, 400),
    path=st.lists(prices, min_size=1, max_size=25),
)
def test_random_paths_never_oversell_and_account_exactly(
    data: st.DataObject, binary: bool, qty: int, path: list[Decimal]
) -> None:
    instrument = BINARY if binary else BINARY.model_copy(update={"kind": MarketKind.SPOT, "min_size": D(1)})
    h = Harness(data, instrument, D(qty))

    def partial() -> bool:
        return bool(data.draw(st.booleans(), label="partial"))

    snapshot_at = data.draw(st.integers(0, len(path)), label="snapshot_at")
    entry_timeout_at = data.draw(st.integers(0, 3), label="entry_timeout_at")
    signal_at = data.draw(st.integers(-1, len(path) * 3), label="signal_at")
    settle_at = data.draw(st.integers(-1, len(path) * 3), label="settle_at") if binary else -1
    for step, price in enumerate(path):
        if step == snapshot_at:
            h.snapshot()
        h.now += data.draw(st.integers(1, 90), label="minutes") * 60_000
        h.venue.trade(price, h.now, partial)
        h.price(price)
        h.deliver_some()
        if step == entry_timeout_at:
            h.call(lambda c: c.cancel_entry())
        if step == signal_at:
            h.call(lambda c: c.on_exit_signal(h.now))
        if data.draw(st.booleans(), label="timer"):
            h.call(lambda c: c.on_timer(h.now))
        if step == settle_at:
            h.drain()  # resolution comes long after trading stopped
            h.settle(D(data.draw(st.sampled_from([0, 1]), label="payout")))
    # liveness: deliver everything, cancel any entry rest, exit and let the market take the closes
    h.call(lambda c: c.cancel_entry())
    h.drain()
    h.call(lambda c: c.on_exit_signal(h.now))
    for _ in range(6):
        h.drain()
        if h.core.position.status is ExitStatus.CLOSED:
            break
        h.now += 3 * 60_000
        h.venue.trade(path[-1], h.now, lambda: False)
        h.call(lambda c: c.on_timer(h.now))
    if h.core.position.status is not ExitStatus.CLOSED:
        assert binary, "a spot position with sellable size must close"
        h.settle(D(data.draw(st.sampled_from([0, 1]), label="payout")))
    assert h.core.position.status is ExitStatus.CLOSED
    assert len(h.closes) == 1
    pos = h.core.position
    assert pos.sold_qty == pos.entry_qty
    assert h.venue.bought == pos.entry_qty
    if h.closes[0].exit_reason is not ExitReason.SETTLEMENT:
        assert h.venue.sold == h.venue.bought
    assert h.venue.open_sell_remaining() == 0


@settings(max_examples=60, deadline=None)
@given(path=st.lists(prices, min_size=1, max_size=30))
def test_trailing_stop_never_decreases(path: list[Decimal]) -> None:
    core, _ = opened()
    last = core.position.stop_price
    for i, price in enumerate(path):
        core.on_price(price, T0 + i)
        assert core.position.stop_price >= last
        last = core.position.stop_price


@settings(max_examples=60, deadline=None)
@given(path=st.lists(prices, min_size=1, max_size=20))
def test_replayed_price_events_emit_nothing_new(path: list[Decimal]) -> None:
    core, _ = opened()
    for i, price in enumerate(path):
        core.on_price(price, T0 + i * HOUR_MS)
        assert core.on_price(price, T0 + i * HOUR_MS) == []


UNMANAGED = ExitConfig(managed=False)


def test_unmanaged_position_places_no_targets_and_ignores_stop_and_time() -> None:
    core, targets = opened(config=UNMANAGED)
    assert targets == []
    assert status(core) is ExitStatus.OPEN
    assert core.on_price(D("0.30"), T0 + 1) == []  # far through the would-be stop
    assert core.on_timer(T0 + 10 * HOUR_MS) == []  # long past the time exit
    assert core.exits_armed()
    assert status(core) is ExitStatus.OPEN


def test_unmanaged_position_closes_whole_on_exit_signal() -> None:
    core, _ = opened(config=UNMANAGED)
    core.on_price(D("0.50"), T0 + 1)
    (sell,) = places(core.on_exit_signal(T0 + 2))
    assert (sell.order.qty, sell.order.purpose) == (D("200"), "signal")
    (done,) = closed(core.on_fill(fill(core, sell.order.client_id, "0.50", "200", fee="0.10")))
    assert done.exit_reason is ExitReason.SIGNAL
    assert done.realized_pnl == D("0.50") * 200 - D("0.45") * 200 - D("0.09") - D("0.10")


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
