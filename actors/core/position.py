"""One position's exit plan as a pure state machine: events in, commands out.

This is the core of the per-position Ray actor and of the backtester's position book. It
never reads a clock (every event carries ``now_ms``), never does I/O and holds no
randomness, so replaying the same events yields the same commands and client ids.

The plan (Polymarket bot design, every number from :class:`ExitConfig`):

* **Entry**: one limit buy. Partial fills accumulate ``entry_qty`` and the average
  ``entry_price``. The position opens once the entry order is terminal *and* every fill
  the venue reported for it has arrived; a zero-fill entry closes with reason ``UNFILLED``.
* **Targets**: on open, two resting GTC limit sells: ``target_one_fraction`` of the lot-aligned
  quantity at ``entry*(1+target_one_pct)``, the rest at ``entry*(1+target_two_pct)`` (prices
  tick-aligned upwards, the passive side; binary tokens capped at ``1 - tick``). When either
  half would be below the venue's lot or minimum size, the whole position rests at target
  one (the likelier win); when even the whole is below it, no order can be placed at all
  (an anomaly: the position is "dust", exits are reported as not armed, and a binary market
  then simply waits for settlement). A leg the venue cancels or rejects on its own is placed
  again, :data:`MAX_TARGET_ATTEMPTS` placements in all, then once per re-drive.
* **Stop** at ``entry*(1-stop_pct)``; **trailing**: once the high since open reaches
  ``entry*(1+trailing_activate_pct)`` the stop becomes
  ``max(stop, entry*(1+trailing_lock_pct), high*(1-trailing_distance_pct))`` and only rises.
* **Time exit**: the band is ``|price - entry| <= entry*time_exit_band_pct``. Its clock starts
  when the position opens and restarts at the first in-band price after any out-of-band
  price; ``time_exit_s`` in the band without leaving it closes the position. :meth:`on_timer`
  evaluates it without a new price (a quiet market may not tick at all).
* **Closing** (stop, trailing, time, signal): cancel every resting sell, then sell only what
  is *free*: ``held - reserved``, where an open sell reserves its unfilled remainder and a
  terminal one reserves fills the venue reported but we have not received yet. Quantity a
  pending cancel still reserves is sold only once the venue confirms the cancel, so the sum
  of sold quantity and open sell remainders never exceeds ``entry_qty``. The closing order
  is a GTC limit at ``floor_to(mark * (1 - exit_slippage_pct * (1 + attempt)), tick)``
  (never below one tick, nor below ``ceil_to(mark * (1 - max_close_slippage_pct), tick)``):
  marketable against the book at the trigger, and each re-price of a closing order stuck for
  ``exit_order_timeout_s`` widens the allowance by one step, up to that cap. A close the venue
  rejects (or cancels by itself: an expiry, a venue-side cancel) is not re-sent at once: the
  next try waits ``close_retry_backoff_s``, doubled per rejection in a row (at most
  :data:`~actors.core.position_levels.CLOSE_BACKOFF_CAP_S`), and after
  ``max_close_rejections`` in a row the position stops trying (:attr:`PositionCore.close_blocked`,
  in the heartbeat) until a re-drive asks for one more attempt (:meth:`PositionCore.retry_close`).
  Any close the venue takes (acked, or filled without an ack) ends the streak.
* **Settlement** (binary markets): cancel everything, each held share pays ``payout``; the
  payout is booked like a sale (``sold_qty`` and ``sale_proceeds``) so P&L has one formula.
* **Flatten** (the kill switch's ``--flatten``, :meth:`PositionCore.flatten`): cancel every
  working order and close what is held like any exit (reason ``KILL_SWITCH``), but priced at the
  ``max_close_slippage_pct`` cap from the first attempt: a marketable limit, the limit-only
  model's "market order within a slippage cap".

Status transitions (never backward; see :meth:`PositionCore._derive_status`):

=================  =================================================================
ENTERING → OPEN     entry terminal, all its fills in, something bought; exits armed
ENTERING → CLOSING  same, but an exit was asked for while entering (signal, or the
                    provisional stop on a partial fill): passes OPEN within the call
ENTERING → CLOSED   entry ended with nothing bought (``UNFILLED``), or settlement
OPEN → HALF_CLOSED  one target leg completely filled, the other still resting untouched
→ CLOSING           an exit triggered (stop/trailing/time/signal), or one leg is filled
                    and the other has started filling (the last leg is working)
→ CLOSED            nothing left held (last unit sold, entry done), or settlement
=================  =================================================================

Fees: every fill's ``fee`` is its commission valued in quote, and ``Position.fees`` sums them.
The position holds what the venue credited: a buy charged in the base asset (Binance's default,
``Fill.fee_base_qty``) adds ``qty - fee_base_qty`` to ``entry_qty`` and that quantity's cost,
``price * (qty - fee_base_qty)``, to the entry cost; the commission, ``fee_base_qty * price``, is
in ``fees``, so cost plus fee is exactly the ``price * qty`` paid. Sells are lot-aligned, so such
a position can end with *dust* below one lot that no venue order can sell: the position closes
once nothing sellable is left, the dust stays in the account (reported in :attr:`anomalies`)
and its cost is written off in the realised P&L.
``PositionClosed.realized_pnl`` is exact (proceeds - entry cost - fees); ``Position.realized_pnl``
multiplies by the average entry price, which can be a rounded non-terminating decimal.

What the shell (Ray actor, backtester) owes the core: apply the commands in order; feed
every fill and order report for the client ids in :attr:`PositionCore.orders`, with the
venue's cumulative ``filled_qty`` on cancel confirmations; call :meth:`PositionCore.on_timer`
periodically (time exit, stuck closes); call :meth:`PositionCore.cancel_entry` on its entry
timeout; re-send an unconfirmed ``CancelOrder`` itself (the core asks once). Fills that
arrive after ``CLOSED`` are not accounted and land in :attr:`PositionCore.anomalies`.
"""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal
from typing import Any

from actors.core.position_levels import (
    TARGET_LEGS,
    close_backoff_ms,
    close_price,
    in_time_band,
    sellable,
    split_targets,
    stop_price,
    target_prices,
    time_band_width,
    trailing_activation,
    trailing_stop,
)
from actors.core.position_orders import ORDER_RANK, PositionOrders
from actors.core.position_quiet import QuietBand
from actors.core.position_state import STATE_FIELDS
from actors.domain.model import (
    ONE,
    ZERO,
    Command,
    ExitReason,
    ExitStatus,
    Fill,
    Instrument,
    MarketKind,
    Order,
    OrderStatus,
    PlaceOrder,
    Position,
    PositionClosed,
    Side,
)
from config.models import ExitConfig

ENTRY = "entry"
MAX_TARGET_ATTEMPTS = 3
"""A target the venue cancels or rejects on its own is placed at most this many times in all; after
that only a re-drive places it again, once per re-drive (:meth:`PositionCore.retry_targets`)."""
_STATE_VERSION = 1


class PositionCore(PositionOrders):
    """The exit state machine of one long position; one instance per position, one owner.

    The orders it owns, and what they reserve, are kept by :class:`PositionOrders`; the exit
    plan's prices and sizes come from :mod:`actors.core.position_levels`.
    """

    def __init__(self, position: Position, instrument: Instrument, config: ExitConfig) -> None:
        super().__init__(position, instrument)
        self.config = config
        self._entry_id = ""
        self._entry_cost = ZERO
        self._leg_plan: dict[str, Decimal] = {}
        self._leg_sold: dict[str, Decimal] = {}
        self._opened_ms: int | None = None
        self._high: Decimal | None = None
        self._band_since_ms: int | None = None
        self._last_price: tuple[Decimal, int] | None = None
        self._trigger: ExitReason | None = None
        self._pending_exit: ExitReason | None = None
        self._trailing = False
        self._last_sale_reason: ExitReason | None = None
        self._close_rejections = 0
        """Closing sells the venue rejected in a row (insufficient balance, min notional, tick)."""
        self._close_retry_ms: int | None = None
        """No new closing sell before this data time (back-off after a rejection)."""

    # ------------------------------------------------------------------ construction

    @classmethod
    def enter(
        cls,
        *,
        position_id: str,
        strategy: str,
        instrument: Instrument,
        qty: Decimal,
        limit_price: Decimal,
        signal_strength: float,
        now_ms: int,
        config: ExitConfig,
    ) -> tuple[PositionCore, list[Command]]:
        """A new position in ``ENTERING`` and its entry order (a lot/tick-aligned limit buy)."""
        size = instrument.round_qty(qty)
        price = instrument.round_price(limit_price, Side.BUY)
        if size <= 0 or size < instrument.min_size:
            raise ValueError(f"entry size {qty} is below the lot/minimum size of {instrument.market_id}")
        if price <= 0:
            raise ValueError(f"entry price {limit_price} rounds to zero on {instrument.market_id}")
        position = Position(
            position_id=position_id,
            strategy=strategy,
            market=instrument.market_id,
            entry_price=ZERO,
            entry_qty=ZERO,
            entry_ms=now_ms,
            stop_price=ZERO,
            target_one_price=ZERO,
            target_two_price=ZERO,
            status=ExitStatus.ENTERING,
            signal_strength=signal_strength,
        )
        core = cls(position, instrument, config)
        order = core._new_order(ENTRY, Side.BUY, price, size, now_ms)
        core._entry_id = order.client_id
        return core, [PlaceOrder(order=order.model_copy())]

    # ------------------------------------------------------------------ events

    def on_fill(self, fill: Fill) -> list[Command]:
        """Account one execution exactly once, then advance the plan."""
        if fill.fill_id in self._seen_fills:
            return []
        order = self.orders.get(fill.client_id)
        if order is None:
            self._note(f"fill {fill.fill_id} for unknown client id {fill.client_id}")
            return []
        if fill.side is not order.side:
            self._note(f"fill {fill.fill_id} side {fill.side.value} differs from order {order.client_id}")
            return []
        if self.position.status is ExitStatus.CLOSED:
            self._note(f"fill {fill.fill_id} after the position closed: not accounted")
            return []
        self._seen_fills[fill.fill_id] = None
        filled = order.filled_qty + fill.qty
        if filled > order.qty:
            self._note(f"order {order.client_id} overfilled: {filled} > {order.qty}")
        order.filled_qty = filled
        order.updated_ms = max(order.updated_ms, fill.ts_ms)
        if not order.status.is_terminal:
            order.status = OrderStatus.FILLED if filled >= order.qty else OrderStatus.PARTIALLY_FILLED
        pos = self.position
        pos.fees += fill.fee
        if order.side is Side.BUY:
            if pos.status is not ExitStatus.ENTERING:
                self._note(f"entry fill {fill.fill_id} after the position opened: not covered by exits")
            self._entry_cost += fill.price * fill.credited_qty  # a base commission is in fees
            pos.entry_qty += fill.credited_qty
            pos.entry_price = self._entry_cost / pos.entry_qty
        else:
            pos.sold_qty += fill.qty
            pos.sale_proceeds += fill.notional
            self._last_sale_reason = ExitReason(order.purpose)
            if self._is_close(order):
                self._close_rejections = 0  # the venue took this close (maybe with no ack first)
            if order.purpose in self._leg_sold:
                self._leg_sold[order.purpose] += fill.qty
                self._stamp_leg(order.purpose, fill.ts_ms)
        return self._advance(fill.ts_ms)

    def on_order_update(
        self,
        client_id: str,
        status: OrderStatus,
        filled_qty: Decimal,
        now_ms: int,
        venue_order_id: str | None = None,
    ) -> list[Command]:
        """An ack, cancel confirmation, rejection or fill report; ``filled_qty`` is the venue's total.

        Updates only move an order forward (a late ``OPEN`` after ``FILLED`` is ignored). A
        terminal report whose ``filled_qty`` exceeds the fills received keeps that difference
        reserved until the fills arrive, which is what makes a cancel/fill race safe.
        """
        order = self.orders.get(client_id)
        if order is None:
            self._note(f"order update for unknown client id {client_id}")
            return []
        if venue_order_id is not None and order.venue_order_id is None:
            order.venue_order_id = venue_order_id
        reported = filled_qty
        if status is OrderStatus.FILLED:
            reported = max(reported, order.qty)
        if reported > order.qty:
            self._note(f"order {client_id} reported filled {reported} > qty {order.qty}")
        if reported > self._venue_filled.get(client_id, ZERO):
            self._venue_filled[client_id] = reported
        if not order.status.is_terminal and ORDER_RANK[status] > ORDER_RANK[order.status]:
            order.status = status
            order.updated_ms = max(order.updated_ms, now_ms)
            dropped = status in (OrderStatus.CANCELLED, OrderStatus.REJECTED)
            if dropped and client_id not in self._cancel_requested:
                self._note(f"order {client_id} ({order.purpose}) {status.value} by the venue")
            if self._is_close(order):
                if status is OrderStatus.REJECTED or (dropped and client_id not in self._cancel_requested):
                    self._close_rejected(now_ms)  # a close the venue cancels by itself is refused too
                elif status is not OrderStatus.CANCELLED:
                    self._close_rejections = 0  # the venue takes our closes again
        if self.position.status is ExitStatus.CLOSED:
            return []
        return self._advance(now_ms)

    def on_price(self, price: Decimal, now_ms: int) -> list[Command]:
        """A new sellable price (best bid or last trade): marks, stop, trailing, time exit.

        A price older than the last one is stale and ignored; the same event twice is a no-op.
        """
        if self.position.status is ExitStatus.CLOSED or price <= 0:
            return []
        if self._last_price is not None and (
            now_ms < self._last_price[1] or (price, now_ms) == self._last_price
        ):
            return []
        self._last_price = (price, now_ms)
        pos = self.position
        pos.mark_price = price
        cmds: list[Command] = []
        if pos.status is ExitStatus.ENTERING:
            cmds += self._entry_timeout(now_ms)
            # Partly filled and already through the would-be stop: stop buying, exit on completion.
            if (
                self.config.managed
                and pos.entry_qty > 0
                and self._pending_exit is None
                and price <= stop_price(pos.entry_price, self.config)
            ):
                self._pending_exit = ExitReason.STOP
                cmds += self._cancel_entry("provisional stop")
            return cmds
        if self._trigger is None and self.config.managed:
            self._raise_trailing(price)
            if price <= pos.stop_price:
                cmds += self._begin_close(ExitReason.TRAILING if self._trailing else ExitReason.STOP, now_ms)
            else:
                if self._in_band(price):
                    if self._band_since_ms is None:
                        self._band_since_ms = now_ms
                else:
                    self._band_since_ms = None
                cmds += self._check_time_exit(now_ms)
        cmds += self._reprice_stuck(now_ms)
        return cmds

    def progress_marker(self) -> tuple[object, ...]:
        """What a restart must not lose although no command followed it: the stop (a trailing
        stop only rises), whether trailing is on, and when the price entered the time-exit band."""
        return (self.position.stop_price, self._trailing, self._band_since_ms)

    def quiet_band(self) -> QuietBand | None:
        """The prices on which :meth:`on_price` would only mark (see :mod:`position_quiet`); None
        while every price matters: entering, an exit under way, closed, or no mark yet."""
        pos = self.position
        mark = pos.mark_price
        if (
            pos.status not in (ExitStatus.OPEN, ExitStatus.HALF_CLOSED)
            or self._trigger is not None
            or self._pending_exit is not None
            or mark is None
        ):
            return None
        sells = [o.price for o in self.orders.values() if o.side is Side.SELL and o.is_open]
        if any(p is None for p in sells):
            return None  # a sell at any price
        high: Decimal | None = min(p for p in sells if p is not None) if sells else None  # fills above it
        low = ZERO
        until_ms: int | None = None
        if self.config.managed:
            low = pos.stop_price
            if self._trailing:  # a new high raises the stop
                if self._high is None:
                    return None
                ceiling = self._high
            else:  # reaching the activation turns trailing on
                ceiling = trailing_activation(pos.entry_price, self.config)
            high = ceiling if high is None else min(high, ceiling)
            width = time_band_width(pos.entry_price, self.config)
            if self._band_since_ms is not None:  # in the band: leaving it resets the clock
                if not self._in_band(mark):
                    return None
                low, high = max(low, pos.entry_price - width), min(high, pos.entry_price + width)
                until_ms = self._band_since_ms + self.config.time_exit_s * 1000
            elif mark > pos.entry_price + width:  # above the band: entering it starts the clock
                low = max(low, pos.entry_price + width)
            elif mark < pos.entry_price - width:
                high = min(high, pos.entry_price - width)
            else:
                return None
        return QuietBand.between(
            low,
            high,
            until_ms,
            position_id=pos.position_id,
            entry_price=pos.entry_price,
            entry_qty=pos.entry_qty,
            open_qty=pos.open_qty,
            status=pos.status.value,
            realized_pnl=pos.realized_pnl,
        )

    def on_timer(self, now_ms: int) -> list[Command]:
        """Time passing without a price: the entry timeout, the time exit and stuck closing orders."""
        if self.position.status is ExitStatus.ENTERING:
            return self._entry_timeout(now_ms)
        if self.position.status is ExitStatus.CLOSED:
            return []
        cmds: list[Command] = []
        if self._trigger is None and self.config.managed:
            cmds += self._check_time_exit(now_ms)
        cmds += self._reprice_stuck(now_ms)
        if self._trigger is not None and self._close_retry_ms is not None and now_ms >= self._close_retry_ms:
            cmds += self._sell_free(now_ms)  # the back-off after a rejected close is over
        return cmds

    def on_exit_signal(self, now_ms: int) -> list[Command]:
        """The strategy's own exit (reason ``SIGNAL``); while entering, stop buying and exit on completion."""
        status = self.position.status
        if status is ExitStatus.CLOSED or self._trigger is not None:
            return []
        if status is ExitStatus.ENTERING:
            if self._pending_exit is None:
                self._pending_exit = ExitReason.SIGNAL
            return self._cancel_entry("exit signal")
        return self._begin_close(ExitReason.SIGNAL, now_ms)

    def flatten(self, now_ms: int, unsent: Collection[str] = ()) -> list[Command]:
        """The kill switch's flatten (reason ``KILL_SWITCH``): cancel every working order, then
        close everything held at once, at market within the slippage cap.

        The order model is limit-only, so "at market within a cap" is a marketable limit sell at
        the cap price, ``ceil_to(mark * (1 - max_close_slippage_pct), tick)``: it takes the book
        level by level (or fills at the next bar's open) down to that price and never below it.
        It overrides an exit already under way (that close is cancelled and its quantity re-sold
        at the cap) and gives a close blocked by rejections a fresh start. While entering, the
        entry is cancelled and what filled is closed the same way (nothing filled: ``UNFILLED``).
        ``unsent``: client ids of intents the shell knows the venue never saw (held back while
        frozen); they are dropped, not cancelled. Calling it again only adds what is missing.
        """
        pos = self.position
        if pos.status is ExitStatus.CLOSED:
            return []
        for client_id in unsent:
            order = self.orders.get(client_id)
            if order is not None and order.status is OrderStatus.PENDING:
                order.status = OrderStatus.CANCELLED
                order.updated_ms = max(order.updated_ms, now_ms)
        flatten = ExitReason.KILL_SWITCH
        if pos.status is ExitStatus.ENTERING:
            self._pending_exit = flatten
            return self._cancel_entry("flatten") + self._advance(now_ms)
        if self._trigger is not flatten:
            self._trigger = flatten
            self._close_rejections, self._close_retry_ms = 0, None
            self._promote(ExitStatus.CLOSING)
        cmds: list[Command] = [
            self._cancel(o, "flatten")
            for o in self.orders.values()
            if o.is_open and o.client_id not in self._cancel_requested and o.purpose != flatten.value
        ]
        return cmds + self._advance(now_ms)

    def _entry_timeout(self, now_ms: int) -> list[Command]:
        """An entry still working ``entry_timeout_s`` after its signal is stale: cancel the rest."""
        if now_ms - self.position.entry_ms < self.config.entry_timeout_s * 1000:
            return []
        return self._cancel_entry("entry timeout")

    def cancel_entry(self, reason: str = "entry timeout") -> list[Command]:
        """Give up on the unfilled rest of the entry (the shell's entry timeout); what filled is kept."""
        if self.position.status is not ExitStatus.ENTERING:
            return []
        return self._cancel_entry(reason)

    def on_settlement(self, payout: Decimal, now_ms: int) -> list[Command]:
        """A binary market resolved: every held share pays ``payout``; cancel all and close."""
        pos = self.position
        if pos.status is ExitStatus.CLOSED:
            return []
        if self.instrument.kind is not MarketKind.BINARY:
            self._note(f"settlement for non-binary market {self.instrument.market_id} ignored")
            return []
        if not ZERO <= payout <= ONE:
            raise ValueError(f"binary payout must be within [0, 1], got {payout}")
        cmds = self._cancel_all("settlement")
        for order in self.orders.values():
            if order.is_open:  # a resolved market trades no more: these are dead whatever the venue says
                order.status = OrderStatus.CANCELLED
                order.updated_ms = max(order.updated_ms, now_ms)
        if self._venue_inflight(Side.SELL) > 0 or self._venue_inflight(Side.BUY) > 0:
            self._note("settled while reported fills were still in flight: they will not be accounted")
        if pos.entry_qty > 0 and self._opened_ms is None:
            self._set_levels(now_ms)
        held = pos.open_qty
        if held > 0:
            pos.sold_qty += held
            pos.sale_proceeds += payout * held
            pos.settled_qty, pos.settled_value = held, payout * held
        self._trigger = ExitReason.SETTLEMENT
        reason = ExitReason.SETTLEMENT if pos.entry_qty > 0 else ExitReason.UNFILLED
        return cmds + self._close(reason, now_ms)

    # ------------------------------------------------------------------ reports

    def exits_armed(self) -> bool:
        """Every sellable unit held is covered by a working sell (targets or a close) or reserved.

        For OPEN/HALF_CLOSED that is the resting targets (the stop is a watch in
        :meth:`on_price`, always on); for CLOSING the closing orders and the cancels whose
        confirmation frees quantity to sell. False means unprotected quantity (e.g. dust below
        the venue minimum, or a target the venue dropped and that could not be re-placed).
        """
        if self.position.status in (ExitStatus.ENTERING, ExitStatus.CLOSED):
            return True
        if not self.config.managed and self._trigger is None:
            return True  # unmanaged: the strategy's exit signal is the whole plan
        held = self.instrument.round_qty(self.position.open_qty)
        if held <= 0:
            return True
        if not sellable(held, self.instrument):
            return False
        reserved = self._reserved_total()
        # Closing: a freed remainder below the minimum waits for the pending cancels to merge into it.
        return reserved >= held or (self._trigger is not None and reserved > 0)

    @property
    def realized_pnl(self) -> Decimal:
        """Exact once everything is sold, or closed with dust (its cost written off; no average
        price involved); ``Position.realized_pnl`` before."""
        pos = self.position
        dust_left = pos.status is ExitStatus.CLOSED and pos.open_qty > 0
        if pos.entry_qty > 0 and (pos.sold_qty == pos.entry_qty or dust_left):
            return pos.sale_proceeds - self._entry_cost - pos.fees
        return pos.realized_pnl

    @property
    def exit_trigger(self) -> ExitReason | None:
        """The exit that fired (stop, trailing, time, signal, settlement), if any."""
        return self._trigger

    # ------------------------------------------------------------------ state

    def state(self) -> dict[str, Any]:
        """JSON-serialisable snapshot; :meth:`from_state` rebuilds the core exactly."""
        state: dict[str, Any] = {
            "version": _STATE_VERSION,
            "position": self.position.model_dump(mode="json"),
            "orders": [o.model_dump(mode="json") for o in self.orders.values()],
            "anomalies": list(self.anomalies),
        }
        for name, (encode, _decode) in STATE_FIELDS.items():
            state[name] = encode(getattr(self, f"_{name}"))
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any], instrument: Instrument, config: ExitConfig) -> PositionCore:
        """Inverse of :meth:`state`: a restarted actor carries on exactly where it stopped."""
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"unsupported position state version {state.get('version')}")
        core = cls(Position.model_validate(state["position"]), instrument, config)
        for raw in state["orders"]:
            order = Order.model_validate(raw)
            core.orders[order.client_id] = order
        core.anomalies = list(state["anomalies"])
        for name, (_encode, decode) in STATE_FIELDS.items():
            if name in state:  # fields added since version 1 keep their constructor default
                setattr(core, f"_{name}", decode(state[name]))
        return core

    # ------------------------------------------------------------------ the machine

    def _advance(self, now_ms: int) -> list[Command]:
        """Re-derive everything from the facts after an event: open, re-arm, sell freed qty, close."""
        pos = self.position
        cmds: list[Command] = []
        if pos.status is ExitStatus.ENTERING:
            if not self._entry_done():
                return cmds
            if pos.entry_qty == 0:
                return cmds + self._close(ExitReason.UNFILLED, now_ms)
            self._set_levels(now_ms)
            self._promote(ExitStatus.OPEN)
            if self._pending_exit is not None:
                cmds += self._begin_close(self._pending_exit, now_ms)
            else:
                cmds += self._place_targets(now_ms)
        if pos.status is ExitStatus.CLOSED:
            return cmds
        if pos.sold_qty + self._reserved_total() > pos.entry_qty:
            self._note("open sells exceed the quantity held: cancelling them to re-size")
            cmds += self._cancel_all("oversold guard", side=Side.SELL)
        if self._lots_held() <= 0 and self._entry_done():
            return cmds + self._close(self._final_reason(), now_ms)
        if self._trigger is not None:
            cmds += self._sell_free(now_ms)
        else:
            cmds += self._rearm_targets(now_ms)
        self._promote(self._derive_status())
        return cmds

    def _derive_status(self) -> ExitStatus:
        """The status the facts call for; :meth:`_promote` applies it only if it is a step forward."""
        if self._trigger is not None:
            return ExitStatus.CLOSING
        done = [leg for leg in self._leg_plan if self._leg_done(leg)]
        if done:
            others = [leg for leg in self._leg_plan if leg not in done]
            if any(self._leg_sold[leg] > 0 for leg in others):
                return ExitStatus.CLOSING
            return ExitStatus.HALF_CLOSED
        return ExitStatus.OPEN

    def _promote(self, status: ExitStatus) -> None:
        if status.rank > self.position.status.rank:
            self.position.status = status

    def _set_levels(self, now_ms: int) -> None:
        """Stop and targets from the average entry, computed once, when the position opens."""
        pos, cfg, inst = self.position, self.config, self.instrument
        entry = pos.entry_price
        pos.stop_price = stop_price(entry, cfg)
        pos.target_one_price, pos.target_two_price = target_prices(entry, cfg, inst)
        self._opened_ms = now_ms
        self._band_since_ms = now_ms
        self._high = None
        if inst.kind is MarketKind.BINARY and pos.target_one_price <= entry:
            self._note(f"entry {entry} leaves no room for a profit target below 1")

    def _place_targets(self, now_ms: int) -> list[Command]:
        """Both resting target halves, or one whole target when a half would be below venue minimums."""
        if not self.config.managed:
            return []
        total = self.instrument.round_qty(self.position.open_qty - self._reserved_total())
        if not sellable(total, self.instrument):
            self._note(f"held {self.position.open_qty} is below the venue's lot/minimum size: no exit orders")
            return []
        self._leg_plan = split_targets(total, self.instrument, self.config)
        self._leg_sold = dict.fromkeys(self._leg_plan, ZERO)
        cmds: list[Command] = []
        for leg, qty in self._leg_plan.items():
            order = self._new_order(leg, Side.SELL, self._leg_price(leg), qty, now_ms)
            cmds.append(PlaceOrder(order=order.model_copy()))
        return cmds

    def _leg_price(self, leg: str) -> Decimal:
        pos = self.position
        return pos.target_one_price if leg == TARGET_LEGS[0] else pos.target_two_price

    def _rearm_targets(self, now_ms: int, *, retry: bool = False) -> list[Command]:
        """Re-place a target leg the venue cancelled or rejected on its own (bounded attempts;
        ``retry``: a re-drive's one attempt beyond the bound)."""
        cmds: list[Command] = []
        for leg, plan in self._leg_plan.items():
            legs = [o for o in self.orders.values() if o.purpose == leg]
            if any(o.is_open for o in legs) or any(self._inflight(o) > 0 for o in legs):
                continue
            remaining = plan - self._leg_sold[leg]
            if remaining <= 0:
                continue
            if self._attempts.get(leg, 0) >= MAX_TARGET_ATTEMPTS and not retry:
                self._note(f"{leg} dropped {MAX_TARGET_ATTEMPTS} times: not re-placed, exits not armed")
                continue
            qty = self.instrument.round_qty(min(remaining, self._free()))
            if not sellable(qty, self.instrument):
                self._note(f"{leg} remainder {qty} is below the venue's lot/minimum size")
                continue
            order = self._new_order(leg, Side.SELL, self._leg_price(leg), qty, now_ms)
            cmds.append(PlaceOrder(order=order.model_copy()))
        return cmds

    def _begin_close(self, reason: ExitReason, now_ms: int) -> list[Command]:
        """Fire an exit once: cancel the resting sells, sell whatever is already free."""
        if self._trigger is not None or self.position.status in (ExitStatus.ENTERING, ExitStatus.CLOSED):
            return []
        self._trigger = reason
        self._promote(ExitStatus.CLOSING)
        cmds = self._cancel_all(reason.value, side=Side.SELL)
        return cmds + self._sell_free(now_ms)

    def _sell_free(self, now_ms: int) -> list[Command]:
        """Place a marketable closing limit for the quantity no working order reserves."""
        if self._trigger is None:
            return []
        free = self.instrument.round_qty(self._free())
        if free <= 0:
            return []
        if not sellable(free, self.instrument):
            if self._reserved_total() == 0:
                self._note(f"remaining {free} is below the venue's lot/minimum size: cannot close")
            return []
        if self._close_rejections >= self.config.max_close_rejections:
            return []  # waits for a re-drive: the supervisor escalates a position stuck closing
        if self._close_retry_ms is not None and now_ms < self._close_retry_ms:
            return []  # backing off after a rejection: on_timer tries again
        purpose = self._trigger.value
        order = self._new_order(purpose, Side.SELL, self._close_price(purpose), free, now_ms)
        return [PlaceOrder(order=order.model_copy())]

    def _close_price(self, purpose: str) -> Decimal:
        """The mark (the entry before any price) less this close's slippage allowance
        (:func:`~actors.core.position_levels.close_price`)."""
        pos = self.position
        base = pos.mark_price if pos.mark_price is not None else pos.entry_price
        attempts = self._attempts.get(purpose, 0)
        return close_price(base, purpose, attempts, self.config, self.instrument.tick_size)

    def _is_close(self, order: Order) -> bool:
        """A closing sell of the exit that fired (not a target leg, not the entry)."""
        return self._trigger is not None and order.purpose == self._trigger.value

    def _close_rejected(self, now_ms: int) -> None:
        """Back off after a rejected close (doubling, capped); stop retrying after the limit."""
        self._close_rejections += 1
        self._close_retry_ms = now_ms + close_backoff_ms(self._close_rejections, self.config)
        if self._close_rejections >= self.config.max_close_rejections:
            self._note(
                f"close rejected {self._close_rejections} times in a row: no more retries until re-driven"
            )

    @property
    def close_blocked(self) -> str | None:
        """Why this position cannot close by itself now (for heartbeats and the supervisor)."""
        if self._close_rejections >= self.config.max_close_rejections:
            return f"close rejected {self._close_rejections} times in a row"
        return None

    def retry_close(self, now_ms: int) -> list[Command]:
        """An operator or the supervisor asks for one more attempt after the limit was reached."""
        if self._trigger is None:
            return []
        self._close_rejections = min(self._close_rejections, self.config.max_close_rejections - 1)
        self._close_retry_ms = None
        return self._sell_free(now_ms)

    def retry_targets(self, now_ms: int) -> list[Command]:
        """A re-drive asks for one more attempt at each target leg the venue dropped until its
        attempts ran out (a rejection window; stops and resumes, whose cancels drop targets too):
        without it such a position stays open with quantity no exit order covers."""
        if self._trigger is not None or self.position.status not in (ExitStatus.OPEN, ExitStatus.HALF_CLOSED):
            return []
        return self._rearm_targets(now_ms, retry=True)

    def _reprice_stuck(self, now_ms: int) -> list[Command]:
        """Cancel a closing order working longer than the timeout; its confirm re-places it lower."""
        if self._trigger is None:
            return []
        timeout = self.config.exit_order_timeout_s * 1000
        cmds: list[Command] = []
        for order in self.orders.values():
            if (
                order.purpose == self._trigger.value
                and order.is_open
                and order.client_id not in self._cancel_requested
                and now_ms - order.created_ms >= timeout
            ):
                cmds.append(self._cancel(order, "reprice stuck exit"))
        return cmds

    def _raise_trailing(self, price: Decimal) -> None:
        """Track the high since open; once activated the stop only ever rises."""
        pos = self.position
        if self._high is None or price > self._high:
            self._high = price
        raised = trailing_stop(pos.entry_price, self._high, pos.stop_price, self.config)
        if raised is not None:
            pos.stop_price = raised
            self._trailing = True

    def _in_band(self, price: Decimal) -> bool:
        return in_time_band(price, self.position.entry_price, self.config)

    def _check_time_exit(self, now_ms: int) -> list[Command]:
        mark = self.position.mark_price
        if self._band_since_ms is None or (mark is not None and not self._in_band(mark)):
            return []
        if now_ms - self._band_since_ms >= self.config.time_exit_s * 1000:
            return self._begin_close(ExitReason.TIME_EXIT, now_ms)
        return []

    def close_command(self) -> PositionClosed | None:
        """The close this position emitted, rebuilt from its state (None unless closed): a shell
        that died after saving the closed core, before carrying the close out, does it on restore."""
        pos = self.position
        if pos.status is not ExitStatus.CLOSED or pos.exit_reason is None or pos.closed_ms is None:
            return None
        return PositionClosed(
            position_id=pos.position_id,
            strategy=pos.strategy,
            market=pos.market,
            realized_pnl=self.realized_pnl,
            fees=pos.fees,
            exit_reason=pos.exit_reason,
            ts_ms=pos.closed_ms,
        )

    def _close(self, reason: ExitReason, now_ms: int) -> list[Command]:
        """Final step: cancel leftovers and report the realised P&L once."""
        pos = self.position
        if pos.open_qty > 0:
            self._note(
                f"dust {pos.open_qty} below the lot {self.instrument.lot_size} stays in the account,"
                f" not sold; its cost {pos.entry_price * pos.open_qty} is written off"
            )
        cmds = self._cancel_all("position closed")
        pos.status = ExitStatus.CLOSED
        pos.closed_ms = now_ms
        pos.exit_reason = reason
        closed = self.close_command()
        assert closed is not None  # closed just now, with its reason and time
        cmds.append(closed)
        return cmds

    def _final_reason(self) -> ExitReason:
        """The exit that sold the last unit; ``TARGET_TWO`` whenever both targets filled."""
        if len(self._leg_plan) == 2 and all(self._leg_done(leg) for leg in self._leg_plan):
            return ExitReason.TARGET_TWO
        return self._last_sale_reason or self._trigger or ExitReason.MANUAL

    # ------------------------------------------------------------------ quantities

    def _lots_held(self) -> Decimal:
        """What is held in whole lots: the rest (dust of a commission taken in base) cannot be sold."""
        return self.instrument.round_qty(self.position.open_qty)

    def _entry_done(self) -> bool:
        """Entry terminal and every fill the venue reported for it received."""
        entry = self.orders[self._entry_id]
        return entry.status.is_terminal and self._inflight(entry) == 0

    def _leg_done(self, leg: str) -> bool:
        return self._leg_sold[leg] >= self._leg_plan[leg]

    def _stamp_leg(self, leg: str, ts_ms: int) -> None:
        pos = self.position
        if not self._leg_done(leg):
            return
        if leg == TARGET_LEGS[0] and pos.target_one_filled_ms is None:
            pos.target_one_filled_ms = ts_ms
        elif leg == TARGET_LEGS[1] and pos.target_two_filled_ms is None:
            pos.target_two_filled_ms = ts_ms

    # ------------------------------------------------------------------ orders

    def _cancel_entry(self, reason: str) -> list[Command]:
        entry = self.orders[self._entry_id]
        if entry.is_open and entry.client_id not in self._cancel_requested:
            return [self._cancel(entry, reason)]
        return []
