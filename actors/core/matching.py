"""The one matching engine: paper venue, local sandbox venue and backtester all fill orders here.

It matches OUR orders against a *modelled* outside market; it never matches our orders with
each other (a real venue's self-trade prevention would stop that too). Everything is a pure
function of the calls made (no clock, no randomness), so a replay yields the same fills with
the same ids, and ``state()``/``from_state()`` restore an engine exactly.

Two ways the outside market trades with us:

* **Book mode** (``on_book``): the last ``OrderBook`` snapshot of a market is its liquidity.
  An order submitted while a book is known *arrives* at once: a marketable order takes the
  book level by level (taker, fill price = the level's price, partial fills when the book is
  thin); an IOC or market remainder is cancelled, a GTC remainder rests; a post-only order that
  would take is rejected. Liquidity we took is removed from the stored book until the next
  snapshot replaces it. On each new snapshot, resting buys fill while the outside best ask is
  <= their price, up to the displayed size of the crossing levels, at OUR price (maker); resting
  sells likewise against bids >= their price. Our orders are served in price-time priority
  (best price first, then FIFO by arrival) and share the displayed size. Each snapshot's
  displayed size counts as fresh liquidity (snapshots are assumed far enough apart for the
  outside book to have refilled).
* **Candle mode** (``on_candle``): an order submitted while no book is known waits for the
  next bar, and only bars that open at or after the order was accepted (``ts_ms >= accepted``)
  can fill it: no look-ahead. Submit with ``now_ms`` = when the decision was made (for a
  strategy acting on a closed bar, ``candle.close_ms``).

  - *At the open* waiting orders arrive, FIFO: a market order fills at the open made worse by
    ``slippage_pct`` (``FeeModel.slipped_price``), taker, its remainder cancelled; a limit
    order marketable at the open (buy: open <= limit) fills as taker at the slipped open if
    that is still within its limit; a post-only order marketable at the open is cancelled;
    an IOC remainder is cancelled.
  - *Trade-through*: a resting limit buy fills only when ``candle.low < price`` and a sell only
    when ``candle.high > price``, strictly. A bar that merely touches our price may have traded
    the queue ahead of us and not us, so equality does not fill (conservative). Fill price =
    our limit price (maker); quantity = the whole remainder, or at most ``participation`` x the
    bar's volume (lot-floored, shared by all our orders of that market in the bar) when a
    participation cap is configured.
  - *Intrabar path*: one bar cannot tell whether its low or its high came first. The engine
    assumes the adverse path for a long-only book, open -> low -> high -> close: all buys
    (triggered on the way down, highest price first) fill before any sell (triggered on the
    way up, lowest price first). Components that hold stops outside the engine should make
    the same assumption: on a bar that reaches both a long's stop and its target, the stop
    is taken to have been hit first.

Events: one model, ``OrderUpdate(kind, order snapshot, fill | None, reason, detail)``. A
single type maps one-to-one onto Binance's ``executionReport`` (one message, an execution
type) and Polymarket's user-channel order/trade messages, is trivially JSON-serialisable
and keeps a total order (``seq``). ``kind`` is accepted / rejected / fill / cancelled /
unchanged; ``reason`` is a machine-readable ``Reason``, ``detail`` human-readable text.

Idempotency: the client id is the key of an order forever, rejected ones included. A second
``submit`` with a known client id changes nothing and answers ``UNCHANGED`` with
``Reason.DUPLICATE_CLIENT_ID`` and the existing order's state. Client ids are engine-global
(not per account).

Balances (optional, ``balances=True``): per account and asset, ``free`` and ``locked``.
Assets of a market: base/quote of a ``BASE/QUOTE`` symbol; a binary token is its own base
(the token id) against ``USDC``. Submitting reserves what the order can cost: a buy locks
``qty * limit + max taker fee`` of quote, a sell locks ``qty`` of base; a market buy against a
book locks the exact cost of walking it; a market buy waiting for a bar (price unknown) locks
nothing and is cancelled with ``insufficient funds`` at the open if the free quote cannot pay
it. Not enough free balance rejects with ``Reason.INSUFFICIENT_FUNDS``. Fills move exact
``Decimal`` amounts, the commission out of the balance ``FeeModel``'s fee-asset rule names
(``actors.core.fees``): in quote, a buy pays ``price * qty + fee`` quote and receives ``qty``
base, a sell gives ``qty`` base and receives ``price * qty - fee`` quote; in base (a buy under
``FeeAsset.RECEIVED``) the buy pays ``price * qty`` and receives ``qty - fee_base_qty``; in a fee
token, the token balance pays it. A buy reserves the quote fee only when quote pays it. What an
order no longer needs is released at once; the rest when it ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from actors.core.fees import FeeModel, market_assets
from actors.domain.messages import OrderUpdate, Reason, UpdateKind
from actors.domain.model import (
    ZERO,
    BookLevel,
    Candle,
    Fill,
    Frozen,
    Instrument,
    Liquidity,
    MarketKind,
    Order,
    OrderBook,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    deterministic_id,
    floor_to,
    to_decimal,
)

STATE_VERSION = 1
DEFAULT_ACCOUNT = "default"
MAX_AMOUNT = Decimal("1E+15")
"""Largest quantity or price an order may carry: beyond it 28-digit decimal arithmetic loses
digits (a lot-size check of 1e26 shares cannot even be computed): refused as invalid."""


class Balance(Frozen):
    free: Decimal = ZERO
    locked: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass(slots=True)
class _Meta:
    """What the engine knows of an order beyond the ``Order`` itself."""

    seq: int
    account: str
    accepted_ms: int
    arrived: bool
    """Has met market data (a book at submit or later, or a bar's open)."""
    reserved: Decimal = ZERO
    """Quote locked for a buy, base locked for a sell."""
    fills: int = 0


class MatchingEngine:
    """Deterministic per-market matching of our orders against a modelled outside market."""

    def __init__(
        self,
        fees: FeeModel | None = None,
        instruments: Iterable[Instrument] = (),
        *,
        balances: bool = False,
        participation: float | None = None,
    ) -> None:
        if participation is not None and not 0.0 < participation <= 1.0:
            raise ValueError(f"participation must be in (0, 1], got {participation}")
        self.fees = fees if fees is not None else FeeModel()
        self.balances_enabled = balances
        self.participation = participation
        self._participation = None if participation is None else to_decimal(participation)
        self._instruments: dict[str, Instrument] = {}
        self._assets: dict[str, tuple[str, str]] = {}
        self._orders: dict[str, Order] = {}
        self._meta: dict[str, _Meta] = {}
        self._open: dict[str, dict[str, Order]] = {}
        self._fills: list[Fill] = []
        self._books: dict[str, OrderBook] = {}
        self._balances: dict[str, dict[str, list[Decimal]]] = {}
        self._order_seq = 0
        self._event_seq = 0
        self._last_ms = 0
        for instrument in instruments:
            self.add_instrument(instrument)

    # ------------------------------------------------------------------ markets and balances

    @property
    def last_ms(self) -> int:
        """The latest time the engine has been told about (its clock)."""
        return self._last_ms

    def add_instrument(self, instrument: Instrument) -> None:
        """Make a market tradable, or update it (a tick-size change); open orders keep their prices."""
        self.fees.precision(instrument.venue)  # no fee schedule: fail now, not at the first fill
        assets = market_assets(instrument) if self.balances_enabled else ("", "")
        self._instruments[instrument.market_id] = instrument
        self._assets[instrument.market_id] = assets

    def instruments(self) -> list[Instrument]:
        return list(self._instruments.values())

    def instrument(self, market: str) -> Instrument | None:
        return self._instruments.get(market)

    def deposit(self, account: str, asset: str, amount: Decimal) -> None:
        """Credit ``amount`` of ``asset`` to ``account``'s free balance."""
        self._require_balances()
        if amount <= 0:
            raise ValueError(f"deposit must be positive, got {amount}")
        self._bal(account, asset)[0] += amount

    def withdraw(self, account: str, asset: str, amount: Decimal) -> None:
        """Debit ``amount`` from the free balance; never more than is free."""
        self._require_balances()
        bal = self._bal(account, asset)
        if amount <= 0 or amount > bal[0]:
            raise ValueError(f"cannot withdraw {amount} {asset}: {bal[0]} free")
        bal[0] -= amount

    def balance(self, account: str, asset: str) -> Balance:
        bal = self._balances.get(account, {}).get(asset)
        return Balance() if bal is None else Balance(free=bal[0], locked=bal[1])

    def balances(self, account: str = DEFAULT_ACCOUNT) -> dict[str, Balance]:
        return {
            a: Balance(free=b[0], locked=b[1]) for a, b in sorted(self._balances.get(account, {}).items())
        }

    def accounts(self) -> list[str]:
        return sorted(self._balances)

    def _require_balances(self) -> None:
        if not self.balances_enabled:
            raise RuntimeError("balances are disabled on this engine (MatchingEngine(balances=True))")

    def _bal(self, account: str, asset: str) -> list[Decimal]:
        per = self._balances.setdefault(account, {})
        bal = per.get(asset)
        if bal is None:
            bal = per[asset] = [ZERO, ZERO]
        return bal

    # ------------------------------------------------------------------ queries (ground truth)

    def order(self, client_id: str) -> Order | None:
        """Snapshot of any order ever submitted, rejected ones included."""
        order = self._orders.get(client_id)
        return None if order is None else order.model_copy()

    def orders(self, market: str | None = None, account: str | None = None) -> list[Order]:
        """Every order ever submitted, in arrival order."""
        return [
            o.model_copy()
            for o in self._orders.values()
            if (market is None or o.market == market)
            and (account is None or self._meta[o.client_id].account == account)
        ]

    def has_open_orders(self, market: str | None = None) -> bool:
        """Whether any order is still working (in ``market``): :meth:`open_orders` without the copies,
        for a driver that asks on every bar."""
        if market is not None:
            return bool(self._open.get(market))
        return any(self._open.values())

    def open_orders(self, market: str | None = None, account: str | None = None) -> list[Order]:
        """Orders still working, in arrival order."""
        pools = [self._open.get(market, {})] if market is not None else list(self._open.values())
        found = [o for pool in pools for o in pool.values()]
        found.sort(key=lambda o: self._meta[o.client_id].seq)
        return [
            o.model_copy() for o in found if account is None or self._meta[o.client_id].account == account
        ]

    def fills(
        self,
        since: int = 0,
        *,
        since_ms: int | None = None,
        market: str | None = None,
        client_id: str | None = None,
        account: str | None = None,
    ) -> list[Fill]:
        """In execution order; ``since`` is a cursor: fills ``[since:]``, ``fill_count`` is the next."""
        return [
            f
            for f in self._fills[since:]
            if (since_ms is None or f.ts_ms >= since_ms)
            and (market is None or f.market == market)
            and (client_id is None or f.client_id == client_id)
            and (account is None or self._meta[f.client_id].account == account)
        ]

    @property
    def fill_count(self) -> int:
        return len(self._fills)

    def account_of(self, client_id: str) -> str | None:
        meta = self._meta.get(client_id)
        return None if meta is None else meta.account

    def reserved(self, client_id: str) -> Decimal:
        """Balance an open order still holds locked (quote for a buy, base for a sell)."""
        meta = self._meta.get(client_id)
        return ZERO if meta is None else meta.reserved

    def book(self, market: str) -> OrderBook | None:
        """The last snapshot of ``market`` less the liquidity our orders took from it."""
        return self._books.get(market)

    # ------------------------------------------------------------------ commands

    def submit(self, order: Order, now_ms: int, account: str = DEFAULT_ACCOUNT) -> list[OrderUpdate]:
        """Validate, reserve funds, accept; in book mode also match at once. Idempotent on client id."""
        self._tick(now_ms)
        existing = self._orders.get(order.client_id)
        if existing is not None:
            return [
                self._event(
                    UpdateKind.UNCHANGED,
                    existing,
                    now_ms,
                    reason=Reason.DUPLICATE_CLIENT_ID,
                    detail=f"client id {order.client_id!r} is already {existing.status.value}",
                )
            ]
        self._order_seq += 1
        seq = self._order_seq
        own = order.model_copy(
            update={
                "venue_order_id": str(seq),
                "status": OrderStatus.PENDING,
                "created_ms": order.created_ms or now_ms,
                "updated_ms": now_ms,
            }
        )
        meta = _Meta(seq=seq, account=account, accepted_ms=now_ms, arrived=True)
        self._orders[own.client_id] = own
        self._meta[own.client_id] = meta

        problem = self._validate(own)
        book = self._books.get(own.market)
        if (
            problem is None
            and book is not None
            and own.tif is TimeInForce.POST_ONLY
            and self._crosses(own, book)
        ):
            problem = (Reason.POST_ONLY_WOULD_TAKE, f"best opposite price crosses {own.price}")
        if problem is None and self.balances_enabled:
            problem = self._reserve(own, meta, book)
        if problem is not None:
            own.status = OrderStatus.REJECTED
            return [self._event(UpdateKind.REJECTED, own, now_ms, reason=problem[0], detail=problem[1])]

        own.status = OrderStatus.OPEN
        self._open.setdefault(own.market, {})[own.client_id] = own
        events = [self._event(UpdateKind.ACCEPTED, own, now_ms)]
        if book is None:
            meta.arrived = False
        else:
            events += self._arrive_on_book(own, now_ms)
        return events

    def cancel(self, client_id: str, now_ms: int) -> list[OrderUpdate]:
        """Cancel an open order; a terminal one is left alone (``UNCHANGED``), an unknown id gives []."""
        self._tick(now_ms)
        order = self._orders.get(client_id)
        if order is None:
            return []
        if order.status.is_terminal:
            return [
                self._event(
                    UpdateKind.UNCHANGED,
                    order,
                    now_ms,
                    reason=Reason.NOT_OPEN,
                    detail=f"order is {order.status.value}",
                )
            ]
        return [self._cancel(order, now_ms, Reason.REQUESTED)]

    def cancel_all(
        self, market: str | None = None, now_ms: int | None = None, account: str | None = None
    ) -> list[OrderUpdate]:
        """Cancel every open order (of ``market``, of ``account``); ``now_ms`` defaults to the latest seen."""
        when = self._last_ms if now_ms is None else now_ms
        self._tick(when)
        return [
            self._cancel(self._orders[o.client_id], when, Reason.REQUESTED)
            for o in self.open_orders(market, account)
        ]

    # ------------------------------------------------------------------ market data

    def on_book(self, book: OrderBook, now_ms: int) -> list[OrderUpdate]:
        """A new snapshot: resting orders it crosses fill as makers, waiting orders arrive as takers."""
        self._tick(now_ms)
        market = book.market
        pool = self._open.get(market)
        if not pool:
            self._books[market] = book
            return []
        instrument = self._instruments[market]
        lot = instrument.lot_size
        asks = [[lv.price, lv.size] for lv in book.asks]
        bids = [[lv.price, lv.size] for lv in book.bids]
        events: list[OrderUpdate] = []
        resting = [o for o in pool.values() if self._meta[o.client_id].arrived and o.price is not None]
        waiting = [o for o in pool.values() if not self._meta[o.client_id].arrived]
        for side, levels in ((Side.BUY, asks), (Side.SELL, bids)):
            for order in self._priority(resting, side):
                price = order.price or ZERO
                for level in levels:
                    if order.remaining <= 0:
                        break
                    if (level[0] > price) if side is Side.BUY else (level[0] < price):
                        break
                    qty = floor_to(min(order.remaining, level[1]), lot)
                    if qty <= 0:
                        continue
                    level[1] -= qty
                    events.append(self._fill(order, price, qty, Liquidity.MAKER, now_ms))
        self._books[market] = _book_from(book, bids, asks)
        for order in waiting:
            self._meta[order.client_id].arrived = True
            events += self._arrive_on_book(order, now_ms)
        return events

    def on_candle(self, candle: Candle, now_ms: int) -> list[OrderUpdate]:
        """One bar: waiting orders arrive at the open, then the path open -> low -> high -> close."""
        self._last_ms = max(self._last_ms, now_ms)
        pool = self._open.get(candle.market)
        if not pool:
            return []
        start = candle.ts_ms
        eligible = [o for o in pool.values() if self._meta[o.client_id].accepted_ms <= start]
        if not eligible:
            return []
        instrument = self._instruments[candle.market]
        budget = (
            None
            if self._participation is None
            else floor_to(to_decimal(candle.volume) * self._participation, instrument.lot_size)
        )
        open_px = to_decimal(candle.open)
        events: list[OrderUpdate] = []

        for order in eligible:
            meta = self._meta[order.client_id]
            if not meta.arrived:
                meta.arrived = True
                budget = self._arrive_at_open(order, instrument, open_px, budget, now_ms, events)

        low, high = to_decimal(candle.low), to_decimal(candle.high)
        for side in (Side.BUY, Side.SELL):
            for order in self._priority(eligible, side):
                if budget is not None and budget <= 0:
                    return events
                price = order.price
                if not order.is_open or price is None:
                    continue
                if not ((low < price) if side is Side.BUY else (high > price)):
                    continue
                qty = order.remaining if budget is None else min(order.remaining, budget)
                if budget is not None:
                    budget -= qty
                events.append(self._fill(order, price, qty, Liquidity.MAKER, now_ms))
        return events

    # ------------------------------------------------------------------ state

    def state(self, *, history: bool = True) -> dict[str, Any]:
        """JSON-serialisable snapshot (Decimals as strings) from which ``from_state`` rebuilds the engine.

        ``history=False``: only what matching needs from here on (open orders, balances, clocks,
        the markets still trading or holding an open order, their books), so a checkpoint per
        order costs the same in week six as on day one. Terminal orders and fills are then the
        caller's to keep (the paper venue's are its store's order and fill records, written in the
        same transaction) and come back through ``restore_history``."""
        live = self._live_markets() if not history else set(self._instruments)
        orders = self._orders.values() if history else self._open_in_seq_order()
        return {
            "version": STATE_VERSION,
            "history": history,
            "balances_enabled": self.balances_enabled,
            "participation": self.participation,
            "order_seq": self._order_seq,
            "event_seq": self._event_seq,
            "last_ms": self._last_ms,
            "instruments": [i.model_dump(mode="json") for m, i in self._instruments.items() if m in live],
            "books": [b.model_dump(mode="json") for m, b in self._books.items() if history or m in live],
            "orders": [self._order_state(o) for o in orders],
            "fills": [f.model_dump(mode="json") for f in self._fills] if history else [],
            "balances": {
                account: {asset: [str(b[0]), str(b[1])] for asset, b in per.items()}
                for account, per in self._balances.items()
            },
        }

    def _open_in_seq_order(self) -> list[Order]:
        """Open orders as accepted, from the open index (not a scan of the whole history)."""
        open_orders = [o for per in self._open.values() for o in per.values()]
        return sorted(open_orders, key=lambda o: self._meta[o.client_id].seq)

    def _live_markets(self) -> set[str]:
        """Markets still trading (no end, or an end after the engine's clock) or with open orders."""
        return {m for m, i in self._instruments.items() if i.end_ms is None or i.end_ms > self._last_ms} | {
            m for m, open_orders in self._open.items() if open_orders
        }

    def restore_history(
        self, orders: Iterable[Order], fills: Iterable[Fill], account: str = DEFAULT_ACCOUNT
    ) -> None:
        """Put back the terminal orders and fills a ``history=False`` checkpoint left out (those
        this engine accepted: ``venue_order_id`` set; refusals made before it are not its own)."""
        counts: dict[str, int] = {}
        known = {f.fill_id for f in self._fills}
        restored = [f for f in fills if f.fill_id not in known]
        for fill in restored:
            counts[fill.client_id] = counts.get(fill.client_id, 0) + 1
        for order in sorted(orders, key=lambda o: _seq_of(o.venue_order_id)):
            if order.is_open or not order.venue_order_id or order.client_id in self._orders:
                continue
            self._orders[order.client_id] = order
            self._meta[order.client_id] = _Meta(
                seq=_seq_of(order.venue_order_id),
                account=account,
                accepted_ms=order.created_ms,
                arrived=True,
                fills=counts.get(order.client_id, 0),
            )
        self._orders = dict(sorted(self._orders.items(), key=lambda kv: self._meta[kv[0]].seq))  # as accepted
        self._fills = sorted(restored, key=lambda f: f.ts_ms) + self._fills

    def _order_state(self, order: Order) -> dict[str, Any]:
        meta = self._meta[order.client_id]
        return {
            "order": order.model_dump(mode="json"),
            "seq": meta.seq,
            "account": meta.account,
            "accepted_ms": meta.accepted_ms,
            "arrived": meta.arrived,
            "reserved": str(meta.reserved),
            "fills": meta.fills,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], fees: FeeModel | None = None) -> MatchingEngine:
        """Exact inverse of ``state()``; fees come from the caller's current config."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported matching state version {state.get('version')!r}")
        engine = cls(
            fees,
            (Instrument.model_validate(i) for i in state["instruments"]),
            balances=bool(state["balances_enabled"]),
            participation=state["participation"],
        )
        engine._order_seq = int(state["order_seq"])
        engine._event_seq = int(state["event_seq"])
        engine._last_ms = int(state["last_ms"])
        for raw in state["books"]:
            book = OrderBook.model_validate(raw)
            engine._books[book.market] = book
        for row in sorted(state["orders"], key=lambda r: int(r["seq"])):
            order = Order.model_validate(row["order"])
            engine._orders[order.client_id] = order
            engine._meta[order.client_id] = _Meta(
                seq=int(row["seq"]),
                account=str(row["account"]),
                accepted_ms=int(row["accepted_ms"]),
                arrived=bool(row["arrived"]),
                reserved=Decimal(row["reserved"]),
                fills=int(row["fills"]),
            )
            if order.is_open:
                engine._open.setdefault(order.market, {})[order.client_id] = order
        engine._fills = [Fill.model_validate(f) for f in state["fills"]]
        engine._balances = {
            account: {asset: [Decimal(b[0]), Decimal(b[1])] for asset, b in per.items()}
            for account, per in state["balances"].items()
        }
        return engine

    # ------------------------------------------------------------------ internals

    def _tick(self, now_ms: int) -> None:
        self._last_ms = max(self._last_ms, now_ms)

    def _event(
        self,
        kind: UpdateKind,
        order: Order,
        now_ms: int,
        fill: Fill | None = None,
        reason: Reason | None = None,
        detail: str = "",
    ) -> OrderUpdate:
        self._event_seq += 1
        return OrderUpdate(
            seq=self._event_seq,
            kind=kind,
            ts_ms=now_ms,
            order=order.model_copy(),
            fill=fill,
            reason=reason,
            detail=detail,
        )

    def _validate(self, order: Order) -> tuple[Reason, str] | None:
        instrument = self._instruments.get(order.market)
        if instrument is None:
            return Reason.UNKNOWN_MARKET, f"no instrument {order.market!r}"
        if order.filled_qty != 0:
            return Reason.INVALID_ORDER, "a new order cannot be partly filled"
        if order.qty <= 0:
            return Reason.INVALID_QTY, f"quantity {order.qty} must be positive"
        if order.qty > MAX_AMOUNT:  # decimal arithmetic past this loses digits (28 of precision)
            return Reason.INVALID_QTY, f"quantity {order.qty} is above {MAX_AMOUNT}"
        if order.qty % instrument.lot_size != 0:
            return Reason.LOT_SIZE, f"quantity {order.qty} is not a multiple of {instrument.lot_size}"
        if order.qty < instrument.min_size:
            return Reason.MIN_SIZE, f"quantity {order.qty} is below {instrument.min_size}"
        if order.type is OrderType.MARKET and order.tif is TimeInForce.POST_ONLY:
            return Reason.INVALID_ORDER, "a market order cannot be post-only"
        price = order.price
        if price is None:
            if order.type is OrderType.LIMIT:
                return Reason.INVALID_PRICE, "a limit order needs a price"
            return None
        if price <= 0 or price > MAX_AMOUNT or (instrument.kind is MarketKind.BINARY and price >= 1):
            return Reason.INVALID_PRICE, f"price {price} is out of range"
        if price % instrument.tick_size != 0:
            return Reason.TICK_SIZE, f"price {price} is not a multiple of {instrument.tick_size}"
        return None

    @staticmethod
    def _crosses(order: Order, book: OrderBook) -> bool:
        """Would ``order`` take liquidity from ``book`` (a market order always would)?"""
        price = order.price
        if order.side is Side.BUY:
            best = book.best_ask
            return best is not None and (price is None or best <= price)
        best = book.best_bid
        return best is not None and (price is None or best >= price)

    def _reserve(self, order: Order, meta: _Meta, book: OrderBook | None) -> tuple[Reason, str] | None:
        """Lock what the order can cost; a problem tuple when the account cannot pay."""
        instrument = self._instruments[order.market]
        base, quote = self._assets[order.market]
        if order.side is Side.SELL:
            asset, need = base, order.qty
        else:
            asset = quote
            if order.price is not None:
                need = order.qty * order.price + self._buy_fee_bound(instrument, order.price, order.qty)
            elif book is not None:
                need = sum(
                    (
                        p * q + self._buy_fee(instrument, p, q)
                        for p, q in _walk(book.asks, order.qty, instrument.lot_size)
                    ),
                    ZERO,
                )
            else:
                need = ZERO  # price unknown until the next bar's open: checked there
        free = self._balances.get(meta.account, {}).get(asset, [ZERO, ZERO])[0]
        if free < need:  # read without creating: a refused order leaves the books as they were
            return Reason.INSUFFICIENT_FUNDS, f"needs {need} {asset}, {free} free"
        bal = self._bal(meta.account, asset)
        bal[0] -= need
        bal[1] += need
        meta.reserved = need
        return None

    def _buy_fee_bound(self, instrument: Instrument, price: Decimal, qty: Decimal) -> Decimal:
        """Quote a buy of ``qty`` at ``price`` may still pay in commission (0 when base or a token pays)."""
        if not self.fees.quote_pays(instrument, Side.BUY):
            return ZERO
        return self.fees.max_fee(instrument.venue, price, qty)

    def _buy_fee(self, instrument: Instrument, price: Decimal, qty: Decimal) -> Decimal:
        """Quote commission of a taker buy, when quote pays it."""
        if not self.fees.quote_pays(instrument, Side.BUY):
            return ZERO
        return self.fees.fee(instrument.venue, instrument, Side.BUY, price, qty, Liquidity.TAKER)

    def _release(self, order: Order, meta: _Meta, amount: Decimal) -> None:
        if amount <= 0:
            return
        base, quote = self._assets[order.market]
        bal = self._bal(meta.account, quote if order.side is Side.BUY else base)
        bal[1] -= amount
        bal[0] += amount
        meta.reserved -= amount

    def _close(self, order: Order) -> None:
        """Order reached a terminal status: stop matching it, hand back what it still holds."""
        pool = self._open.get(order.market)
        if pool is not None:
            pool.pop(order.client_id, None)
            if not pool:
                del self._open[order.market]
        meta = self._meta[order.client_id]
        if self.balances_enabled:
            self._release(order, meta, meta.reserved)

    def _cancel(self, order: Order, now_ms: int, reason: Reason, detail: str = "") -> OrderUpdate:
        order.status = OrderStatus.CANCELLED
        order.updated_ms = now_ms
        self._close(order)
        return self._event(UpdateKind.CANCELLED, order, now_ms, reason=reason, detail=detail)

    def _fill(
        self, order: Order, price: Decimal, qty: Decimal, liquidity: Liquidity, now_ms: int
    ) -> OrderUpdate:
        instrument = self._instruments[order.market]
        meta = self._meta[order.client_id]
        token = self.fees.fee_token
        token_free = (
            self._bal(meta.account, token.asset)[0] if token is not None and self.balances_enabled else ZERO
        )
        commission = self.fees.commission(
            instrument, order.side, price, qty, liquidity, token_free=token_free
        )
        meta.fills += 1
        fill = Fill(
            fill_id=deterministic_id("fill", order.client_id, meta.fills),
            client_id=order.client_id,
            market=order.market,
            side=order.side,
            price=price,
            qty=qty,
            fee=commission.fee,
            liquidity=liquidity,
            ts_ms=now_ms,
            fee_asset=commission.asset,
            fee_base_qty=commission.base_qty,
        )
        self._fills.append(fill)
        order.filled_qty = order.filled_qty + qty
        order.status = OrderStatus.FILLED if order.remaining <= 0 else OrderStatus.PARTIALLY_FILLED
        order.updated_ms = now_ms
        if self.balances_enabled:
            self._settle(order, meta, fill, instrument)
        if order.status is OrderStatus.FILLED:
            self._close(order)
        return self._event(UpdateKind.FILL, order, now_ms, fill=fill)

    def _settle(self, order: Order, meta: _Meta, fill: Fill, instrument: Instrument) -> None:
        """Move a fill's exact amounts: from the order's reservation first, then from free."""
        base, quote = self._assets[order.market]
        base_bal, quote_bal = self._bal(meta.account, base), self._bal(meta.account, quote)
        notional = fill.price * fill.qty
        token = self.fees.fee_token
        token_fee = token is not None and fill.fee_asset == token.asset and fill.fee > 0
        quote_fee = ZERO if token_fee or fill.fee_base_qty > 0 else fill.fee
        if order.side is Side.BUY:
            pay, paying, receiving, gets = notional + quote_fee, quote_bal, base_bal, fill.credited_qty
        else:
            pay, paying, receiving, gets = fill.qty, base_bal, quote_bal, notional - quote_fee
        taken = min(pay, meta.reserved)
        meta.reserved -= taken
        paying[1] -= taken
        paying[0] -= pay - taken
        receiving[0] += gets
        if token_fee and token is not None:
            self._bal(meta.account, token.asset)[0] -= self.fees.charged(fill, quote)[1]
        if order.side is Side.BUY and order.price is not None and order.is_open:
            need = order.remaining * order.price + self._buy_fee_bound(
                instrument, order.price, order.remaining
            )
            self._release(order, meta, meta.reserved - need)

    @staticmethod
    def _priority(orders: Iterable[Order], side: Side) -> list[Order]:
        """Open priced orders of one side, best price first, FIFO within a price.

        ``orders`` must come in arrival order: the sort is stable, so that order is the time priority.
        """
        same = [o for o in orders if o.side is side and o.price is not None and o.is_open]
        sign = 1 if side is Side.SELL else -1
        same.sort(key=lambda o: sign * (o.price or ZERO))
        return same

    def _arrive_on_book(self, order: Order, now_ms: int) -> list[OrderUpdate]:
        """A new order meets the book: take what crosses, then rest (GTC) or cancel the rest."""
        book = self._books[order.market]
        if order.tif is TimeInForce.POST_ONLY:
            if self._crosses(order, book):
                return [self._cancel(order, now_ms, Reason.POST_ONLY_WOULD_TAKE)]
            return []
        instrument = self._instruments[order.market]
        buy = order.side is Side.BUY
        levels = [[lv.price, lv.size] for lv in (book.asks if buy else book.bids)]
        events: list[OrderUpdate] = []
        limit = order.price
        for level in levels:
            if order.remaining <= 0:
                break
            if limit is not None and ((level[0] > limit) if buy else (level[0] < limit)):
                break
            qty = floor_to(min(order.remaining, level[1]), instrument.lot_size)
            if qty <= 0:
                continue
            level[1] -= qty
            events.append(self._fill(order, level[0], qty, Liquidity.TAKER, now_ms))
        if events:
            bids = [[lv.price, lv.size] for lv in book.bids] if buy else levels
            asks = levels if buy else [[lv.price, lv.size] for lv in book.asks]
            self._books[order.market] = _book_from(book, bids, asks)
        if order.is_open and (order.type is OrderType.MARKET or order.tif is TimeInForce.IOC):
            detail = "no liquidity" if order.filled_qty == 0 else "book too thin"
            events.append(self._cancel(order, now_ms, Reason.UNFILLED_REMAINDER, detail))
        return events

    def _arrive_at_open(
        self,
        order: Order,
        instrument: Instrument,
        open_px: Decimal,
        budget: Decimal | None,
        now_ms: int,
        events: list[OrderUpdate],
    ) -> Decimal | None:
        """A waiting order meets a bar's open; returns the participation budget left."""
        buy = order.side is Side.BUY
        limit = order.price
        immediate = order.type is OrderType.MARKET or order.tif is TimeInForce.IOC
        if order.tif is TimeInForce.POST_ONLY:
            if limit is not None and ((open_px <= limit) if buy else (open_px >= limit)):
                events.append(self._cancel(order, now_ms, Reason.POST_ONLY_WOULD_TAKE, f"open {open_px}"))
            return budget
        fill_px = self.fees.slipped_price(order.side, open_px, instrument)
        marketable = limit is None or ((fill_px <= limit) if buy else (fill_px >= limit))
        if marketable:
            qty = order.remaining if budget is None else min(order.remaining, budget)
            if qty > 0 and self.balances_enabled and buy and not self._affordable(order, fill_px, qty):
                events.append(self._cancel(order, now_ms, Reason.INSUFFICIENT_FUNDS, f"at open {fill_px}"))
                return budget
            if qty > 0:
                if budget is not None:
                    budget -= qty
                events.append(self._fill(order, fill_px, qty, Liquidity.TAKER, now_ms))
        if order.is_open and immediate:
            detail = "beyond the limit" if not marketable else "participation cap"
            events.append(self._cancel(order, now_ms, Reason.UNFILLED_REMAINDER, detail))
        return budget

    def _affordable(self, order: Order, price: Decimal, qty: Decimal) -> bool:
        instrument = self._instruments[order.market]
        meta = self._meta[order.client_id]
        cost = price * qty + self._buy_fee(instrument, price, qty)
        free = self._bal(meta.account, self._assets[order.market][1])[0]
        return cost <= free + meta.reserved


def _seq_of(venue_order_id: str | None) -> int:
    """The engine's acceptance number of an order (its ``venue_order_id``; 0 if not its own)."""
    try:
        return int(venue_order_id or 0)
    except ValueError:
        return 0


def _walk(levels: Iterable[BookLevel], qty: Decimal, lot: Decimal) -> list[tuple[Decimal, Decimal]]:
    """(price, qty) a market order of ``qty`` would take from ``levels``, best first."""
    taken: list[tuple[Decimal, Decimal]] = []
    left = qty
    for level in levels:
        if left <= 0:
            break
        q = floor_to(min(left, level.size), lot)
        if q > 0:
            taken.append((level.price, q))
            left -= q
    return taken


def _book_from(book: OrderBook, bids: list[list[Decimal]], asks: list[list[Decimal]]) -> OrderBook:
    """``book`` with sizes as left after our fills; levels already sorted, so no re-validation."""
    return OrderBook.model_construct(
        market=book.market,
        ts_ms=book.ts_ms,
        bids=tuple(BookLevel.model_construct(price=p, size=s) for p, s in bids if s > 0),
        asks=tuple(BookLevel.model_construct(price=p, size=s) for p, s in asks if s > 0),
    )
