"""The paper venue: the one matching engine behind the venue gateway protocol.

It answers like a real venue (an order's view, fills by market) and, unlike one, it also
hands over the exact updates the engine produced (``take_updates``): fills of resting orders
caused by market data, and the engine's own reasons for a rejection. The venue shell pushes
those to their owners, as a real venue's user stream would. Its whole state is checkpointed
by the shell, because nothing outside the process remembers a simulated venue's orders.

It holds orders to the live venue's rules as its instruments know them (``instrument_rules``: tick,
step, minimum size, Binance's minimum notional) through the live gateways' ``enforce_rules``: an
order is adjusted onto the grid or refused (``OrderRefusedError``, the same rule, reason and metric
as live) before the engine sees it, so a paper run holds no order the venue would reject. A market
order's notional is taken at the book's mid, else the last close seen (not checkpointed: after a
restart, a market order before the next candle is refused for want of a reference).

For chaos runs only, a gateway may carry :class:`~actors.venues.faults.VenueFaults` (rejections,
partial fills, call errors injected at this edge, never inside the engine); without them
(the default, and always in live mode, which has no paper gateway) it behaves exactly as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from actors.core.exchange_rules import instrument_rules
from actors.core.fees import FeeModel
from actors.core.matching import MatchingEngine
from actors.domain.messages import OrderUpdate, UpdateKind
from actors.domain.model import (
    Candle,
    Fill,
    Instrument,
    MarketEvent,
    Order,
    OrderBook,
    OrderType,
    Settlement,
    to_decimal,
)
from actors.domain.names import market_venue
from actors.venues.faults import PARTICIPATION, TIMEOUT_S, VenueFaults
from actors.venues.gateway import VenueError, VenueErrorKind, enforce_rules


class PaperGateway:
    """A simulated venue over the shared matching engine; clock = the latest data time it saw."""

    simulated = True

    def __init__(
        self,
        venue: str,
        fees: FeeModel,
        instruments: Sequence[Instrument] = (),
        faults: VenueFaults | None = None,
    ) -> None:
        self.venue = venue
        self.fees = fees
        self.faults = faults
        self.engine = MatchingEngine(fees, participation=None if faults is None else PARTICIPATION)
        self.frozen: set[str] = set()
        self._outbox: list[OrderUpdate] = []
        self._closes: dict[str, Decimal] = {}
        """Each market's last close: a market order's reference where no book is kept."""
        self._seen: dict[str, dict[str, int]] = {"bar": {}, "book": {}}
        """Per market, the open time of the newest bar and the time of the newest book matched: a
        feed restarted from an older checkpoint sends them again, and matching a repeat against
        orders placed since would fill what the uncrashed run never filled."""
        self.repeated = 0
        for instrument in instruments:
            self.add_instrument(instrument)

    # ------------------------------------------------------------------ state

    def restore(self, state: dict[str, Any]) -> None:
        """Rebuild the engine from a checkpoint (orders, fills, books, balances)."""
        if self.faults is not None and state.get("participation") is None:
            state = {**state, "participation": PARTICIPATION}  # thinned candles must be able to bind
        seen = state.get("seen") or {}
        self._seen = {"bar": dict(seen.get("bar", {})), "book": dict(seen.get("book", {}))}
        self.engine = MatchingEngine.from_state(state, self.fees)

    def checkpoint(self) -> dict[str, Any]:
        """The engine without its history: terminal orders and fills are in the store's order and
        fill records, committed with it (``restore_history`` puts them back)."""
        return {**self.engine.state(history=False), "seen": self._seen}

    def _repeat(self, event: MarketEvent) -> bool:
        """A bar not newer than the last one matched, or a book older than the last: market data a
        restarted feed sends again (its candles are closed bars, so a bar's time is its identity;
        two distinct books may share a millisecond, so only an older one is a repeat)."""
        if isinstance(event, Candle):
            kind, same_time_repeats = "bar", True
        elif isinstance(event, OrderBook):
            kind, same_time_repeats = "book", False
        else:
            return False
        last = self._seen[kind].get(event.market)
        if last is not None and (event.ts_ms < last or (same_time_repeats and event.ts_ms == last)):
            self.repeated += 1
            return True
        self._seen[kind][event.market] = event.ts_ms
        return False

    def add_instrument(self, instrument: Instrument) -> None:
        """A new market, or a known one on a new tick (Polymarket's ``tick_size_change``, which the
        live gateway follows too and the backtest driver's engine takes): orders go onto it from now."""
        if not self.fees.trades_on(instrument.venue):
            return
        known = self.engine.instrument(instrument.market_id)
        if known is None or known.tick_size != instrument.tick_size:
            self.engine.add_instrument(instrument)

    def clock_ms(self) -> int:
        return self.engine.last_ms

    def take_updates(self) -> list[OrderUpdate]:
        """The engine's updates since the last call, in order."""
        out, self._outbox = self._outbox, []
        return out

    def freeze(self, market: str, frozen: bool = True) -> None:
        """Stop matching one market (tests and drills: an exit order that never fills)."""
        if frozen:
            self.frozen.add(market)
        else:
            self.frozen.discard(market)

    def on_market(self, events: Sequence[MarketEvent]) -> None:
        """Market data: new instruments, resting orders matched against candles and books."""
        for raw in events:
            if self._repeat(raw):
                continue
            event = raw
            if self.faults is not None and isinstance(raw, (Candle, OrderBook)):
                event = self.faults.thin(
                    raw, self.engine.open_orders(raw.market), self.engine.instrument(raw.market)
                )
            if isinstance(event, Instrument):
                self.add_instrument(event)
            elif isinstance(event, Candle):
                self._closes[event.market] = to_decimal(event.close)
                if event.market not in self.frozen:
                    self._outbox += self.engine.on_candle(event, event.ts_ms + event.interval_ms)
            elif isinstance(event, OrderBook):
                if event.market not in self.frozen:
                    self._outbox += self.engine.on_book(event, event.ts_ms)
            elif isinstance(event, Settlement):
                self._outbox += self.engine.cancel_all(event.market, now_ms=event.ts_ms)

    def all_orders(self) -> list[Order]:
        return self.engine.orders()

    def all_fills(self) -> list[Fill]:
        return self.engine.fills()

    # ------------------------------------------------------------------ the gateway protocol

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def instruments(self) -> list[Instrument]:
        return self.engine.instruments()

    async def _weather(self, call: str) -> None:
        """An injected call fault (chaos only): a 5xx or 429 now, or a lookup that times out."""
        if self.faults is None:
            return
        error = self.faults.call_error(call)
        if error is not None:
            raise error
        if self.faults.times_out(call):
            await asyncio.sleep(TIMEOUT_S)
            raise self.faults.timeout_error(call)

    def _reference(self, market: str) -> Decimal | None:
        """The price a market order's notional is checked at: the book's mid, else the last close."""
        book = self.engine.book(market)
        if book is not None and book.mid is not None:
            return book.mid
        return self._closes.get(market)

    def _within_rules(self, order: Order) -> Order:
        """The order under its instrument's venue rules (``instrument_rules``), as a live gateway sends
        it: onto the tick and step, or refused (``OrderRefusedError``) before the engine sees it."""
        instrument = self.engine.instrument(order.market)
        if instrument is None:
            return order  # unknown to the engine: it rejects it with its own reason
        rules = instrument_rules(instrument)
        reference = self._reference(order.market) if order.type is OrderType.MARKET else None
        return enforce_rules(self.venue, rules, order, reference)

    async def submit(self, order: Order) -> Order:
        """Accept (or reject, with the engine's reason in the updates) at the order's own time, once
        made valid under the venue's rules (or refused, as the live gateways do)."""
        await self._weather("submit")
        order = self._within_rules(order)
        if self.faults is not None:
            refused = self.faults.rejection(order, self.engine.instrument(order.market))
            if refused is not None:
                raise refused  # refused at the edge, as a real venue's filters do: the engine never saw it
        updates = self.engine.submit(order, order.created_ms)
        self._outbox += updates
        if self.faults is not None and self.faults.loses_answer():
            raise self.faults.lost_answer_error(order.client_id)  # taken, then the answer is lost
        return updates[-1].order

    async def cancel(self, client_id: str, market: str) -> Order:  # noqa: ARG002
        await self._weather("cancel")
        updates = self.engine.cancel(client_id, self.engine.last_ms)
        if not updates:
            raise VenueError(self.venue, VenueErrorKind.NOT_FOUND, f"no order {client_id}")
        self._outbox += updates
        return updates[-1].order

    async def cancel_all(self, market: str | None = None) -> list[Order]:
        updates = self.engine.cancel_all(market, now_ms=self.engine.last_ms)
        self._outbox += updates
        return [u.order for u in updates if u.kind is UpdateKind.CANCELLED]

    async def order(self, client_id: str, market: str) -> Order | None:  # noqa: ARG002
        await self._weather("order")
        return self.engine.order(client_id)

    async def open_orders(self, market: str | None = None) -> list[Order]:
        await self._weather("open_orders")
        return self.engine.open_orders(market)

    async def fills(self, market: str, since_ms: int | None = None) -> list[Fill]:
        await self._weather("fills")
        return self.engine.fills(since_ms=since_ms, market=market)

    async def balances(self) -> dict[str, Decimal]:
        if not self.engine.balances_enabled:
            return {}
        return {asset: b.total for asset, b in self.engine.balances().items()}

    async def order_book(self, market: str) -> OrderBook:
        book = self.engine.book(market)
        if book is None:
            raise VenueError(self.venue, VenueErrorKind.NOT_FOUND, f"no book for {market}")
        return book


def restore_venue_history(
    engine: MatchingEngine, venue: str, orders: Iterable[Order], fills: Iterable[Fill]
) -> None:
    """A compact paper checkpoint's history back from the store: this venue's terminal orders
    and fills (the store holds every venue's; ``MatchingEngine.restore_history`` keeps its own)."""
    engine.restore_history(
        (o for o in orders if market_venue(o.market) == venue),
        (f for f in fills if market_venue(f.market) == venue),
    )
