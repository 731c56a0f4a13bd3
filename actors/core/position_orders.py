"""The orders one position owns: replay-stable ids, what the venue reported, what each sell reserves.

:class:`PositionOrders` is the bookkeeping half of :class:`~actors.core.position.PositionCore`
(which extends it with the exit plan): it creates the position's limit orders with deterministic
client ids (``rt-<sha256>`` of position, purpose and attempt), asks for cancels once, remembers the
venue's cumulative fill totals, and derives from them what is still *reserved* (an open sell's
unfilled remainder, or fills the venue reported for a terminal order that have not arrived) and
so what is *free* to sell. It also keeps the bounded list of anomalies and the order reports the
shells and the invariants read.
"""

from __future__ import annotations

from decimal import Decimal

from actors.domain.model import (
    ZERO,
    CancelOrder,
    Command,
    Instrument,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
    deterministic_id,
)

MAX_ANOMALIES = 200

ORDER_RANK = {
    OrderStatus.PENDING: 0,
    OrderStatus.OPEN: 1,
    OrderStatus.PARTIALLY_FILLED: 2,
    OrderStatus.FILLED: 3,
    OrderStatus.CANCELLED: 3,
    OrderStatus.REJECTED: 3,
}
"""How far along an order status is: updates only ever move an order forward."""


class PositionOrders:
    """The order book of one position: its orders by client id and what they reserve."""

    def __init__(self, position: Position, instrument: Instrument) -> None:
        self.position = position
        self.instrument = instrument
        self.orders: dict[str, Order] = {}
        self.anomalies: list[str] = []
        self._seen_fills: dict[str, None] = {}
        self._venue_filled: dict[str, Decimal] = {}
        self._cancel_requested: dict[str, None] = {}
        self._attempts: dict[str, int] = {}

    # ------------------------------------------------------------------ reports

    def open_orders(self) -> list[Order]:
        """Copies of the orders this position still has working (for heartbeats and reconciliation)."""
        return [o.model_copy() for o in self.orders.values() if o.is_open]

    def unconfirmed_cancels(self) -> list[str]:
        """Client ids of open orders whose cancel was requested but not yet confirmed.

        A shell recovering from a crash re-sends these: the request may never have left.
        """
        return [cid for cid in self._cancel_requested if cid in self.orders and self.orders[cid].is_open]

    def awaiting_fills(self) -> list[str]:
        """Client ids the venue reported filled beyond the fills accounted here (fills still to fetch)."""
        return [cid for cid, order in self.orders.items() if self._inflight(order) > 0]

    def seen_fill_ids(self) -> list[str]:
        """Every fill id this position has accounted (invariant: each venue fill in one position)."""
        return list(self._seen_fills)

    # ------------------------------------------------------------------ quantities

    def _inflight(self, order: Order) -> Decimal:
        """Fills the venue reported for a terminal order that have not reached us yet."""
        if order.is_open:
            return ZERO
        return max(ZERO, self._venue_filled.get(order.client_id, ZERO) - order.filled_qty)

    def _reserved(self, order: Order) -> Decimal:
        """Quantity of a sell that may still leave the account: open remainder or in-flight fills."""
        if order.side is not Side.SELL:
            return ZERO
        if order.is_open:
            return max(ZERO, order.remaining)
        return self._inflight(order)

    def _reserved_total(self) -> Decimal:
        return sum((self._reserved(o) for o in self.orders.values()), ZERO)

    def _venue_inflight(self, side: Side) -> Decimal:
        return sum((self._inflight(o) for o in self.orders.values() if o.side is side), ZERO)

    def _free(self) -> Decimal:
        return self.position.open_qty - self._reserved_total()

    # ------------------------------------------------------------------ orders

    def _new_order(self, purpose: str, side: Side, price: Decimal, qty: Decimal, now_ms: int) -> Order:
        """A limit order with a replay-stable id; each re-placement of a purpose is a new attempt."""
        attempt = self._attempts.get(purpose, 0)
        self._attempts[purpose] = attempt + 1
        pos = self.position
        order = Order(
            client_id=deterministic_id("rt", pos.position_id, purpose, attempt),
            market=pos.market,
            side=side,
            type=OrderType.LIMIT,
            tif=TimeInForce.GTC,
            price=price,
            qty=qty,
            position_id=pos.position_id,
            strategy=pos.strategy,
            purpose=purpose,
            created_ms=now_ms,
            updated_ms=now_ms,
        )
        self.orders[order.client_id] = order
        return order

    def _cancel(self, order: Order, reason: str) -> CancelOrder:
        self._cancel_requested[order.client_id] = None
        return CancelOrder(client_id=order.client_id, market=order.market, reason=reason)

    def _cancel_all(self, reason: str, side: Side | None = None) -> list[Command]:
        return [
            self._cancel(o, reason)
            for o in self.orders.values()
            if o.is_open and o.client_id not in self._cancel_requested and (side is None or o.side is side)
        ]

    def _note(self, message: str) -> None:
        """Record something the venue or the shell got wrong, once; kept bounded, newest last."""
        if message in self.anomalies:
            return
        self.anomalies.append(message)
        del self.anomalies[:-MAX_ANOMALIES]
