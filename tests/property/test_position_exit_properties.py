"""PositionCore properties over random venues: a tiny venue fills resting limits as random price
paths cross them and delivers its reports shuffled, duplicated and late; the core never oversells,
accounts exactly, and its trailing stop never decreases."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

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
)
from tests.unit.core.position_helpers import BINARY, CFG, T0, D, closed, opened


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
