"""A local Binance spot venue on loopback: real ccxt talks to it as it would to api.binance.com.

Why: the Binance gateway, retries and reconciliation must be exercised against the real wire
protocol (signatures, error codes, rate limits, lost answers) without the internet.

**Market.** The bundled BTCUSDT 1m klines are replayed; the venue's market clock stands at
the close of the *current* bar and moves only when ``advance(n_bars)`` is called (or the
background clock started by ``start_clock(speed)`` calls it). Nothing after the current bar
is ever served (klines, trades, depth): no look-ahead. Market time is the data's own time
(March 2024); ``/api/v3/time`` and the ``timestamp``/``recvWindow`` check use the wall clock,
as on Binance, so ccxt's signed requests work unmodified. Order, trade and event times are
market time.

**Other participants' liquidity (modelled, book mode).** Each bar is played as four book
snapshots along the path open -> low -> high -> close (the adverse path for a long-only
book, as ``actors.core.matching`` assumes for candles), at ``ts + 0 / 20 / 40 / 59.999 s``. A
snapshot around reference price ``p``: best bid = ``floor(p - spread/2)``, best ask = best bid
+ spread (``BookModel.spread_ticks``, default 2 ticks, so a resting buy fills only when the
bar traded at least one tick *through* it), ``levels`` levels a side ``step_ticks`` apart,
each showing ``level_qty`` (or ``volume_fraction`` of the bar's volume, at least
``min_level_qty``). Every snapshot goes to ``MatchingEngine.on_book`` (``balances=True``):
resting orders crossed by it fill as makers at their price up to the displayed size
(partial fills when the book is thin); orders arriving between bars meet the last snapshot
(the bar's close) and take it as takers. Our resting orders are NOT shown in the public
book (the engine never matches our orders with each other, so showing them would display
liquidity nobody can take). Public trades: one modelled trade per path point (a quarter of
the bar's volume), plus every fill of ours. Depth updates carry Binance's ``U``/``u`` ids
and stay consistent with ``/api/v3/depth``'s ``lastUpdateId``.

**API (spot subset, Binance's JSON shapes).** Public: ``GET /api/v3/ping``, ``time``,
``exchangeInfo``, ``klines`` (1m..1d), ``depth``, ``trades``, ``aggTrades``. Signed
(``X-MBX-APIKEY`` + HMAC-SHA256 over query string + body, ``timestamp``/``recvWindow``):
``POST|GET|DELETE /api/v3/order``, ``GET|DELETE /api/v3/openOrders``, ``GET /api/v3/account``,
``GET /api/v3/myTrades``. Order types LIMIT (GTC/IOC), LIMIT_MAKER, MARKET (``quantity`` or
``quoteOrderQty``); FOK and stop orders are answered as unsupported. Errors as Binance:
-1000 unknown, -1003 weight exceeded (429 + ``Retry-After``), -1013 filter failure, -1021
timestamp, -1022 signature, -1100/-1101/-1102/-1106 parameters, -1115/-1116/-1117 enums,
-1120 interval, -1121 symbol, -1131 recvWindow, -2010 new order rejected (insufficient
balance, would take as maker, duplicate client id), -2011 cancel of an unknown/closed
order, -2013 no such order, -2014/-2015 API key. Every response has
``X-MBX-USED-WEIGHT-1M``; request weights are Binance's, counted per client IP in fixed
windows of ``weight_window_s``.

Deviations from Binance, on purpose: a client order id is unique forever (Binance only
refuses one that is *open*), so a re-sent order never becomes a second order; a re-sent
client id of a rejected order gets the original rejection again. Rejected orders are not
visible (-2013), as on Binance. Commissions are always in USDT (``actors.core.fees``: every fee in
the quote asset; Binance takes a buy's fee in BTC). No user-data stream, no order-count
limits, no IP bans.

**Websockets.** ``/ws/<stream>`` (raw), ``/stream?streams=a/b`` (combined, ``{"stream",
"data"}``) and ``SUBSCRIBE``/``UNSUBSCRIBE``/``LIST_SUBSCRIPTIONS`` messages on either (how
ccxt.pro subscribes): ``btcusdt@kline_1m`` (four updates a bar, ``x`` true on the last),
``btcusdt@trade``, ``btcusdt@aggTrade``, ``btcusdt@depth[@100ms]`` (diffs) and
``btcusdt@depth5|10|20`` (partial snapshots).

**Faults and ground truth.** ``venue.faults`` (``ops.sandbox.faults.FaultInjector``) is
installed on the app (``/_sandbox/faults``) and gates every websocket message. ``GET
/_sandbox/orders`` and ``/_sandbox/fills`` list every order and fill the engine holds
(``venue.orders()``/``venue.fills()`` in Python); ``POST /_sandbox/advance`` ``{"bars": n}``,
``POST /_sandbox/accounts`` ``{"balances": {"USDT": "1000"}}`` and ``GET /_sandbox/state``
drive a sandbox running in another process (``python -m ops.sandbox.binance``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import math
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import numpy as np
from aiohttp import WSMsgType, web
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from actors.core.fees import FeeModel
from actors.core.matching import MatchingEngine, OrderUpdate, Reason, UpdateKind
from actors.data.candles import CandleTable, read_csv
from actors.data.replay import BINANCE_BTCUSDT
from actors.domain.model import (
    ZERO,
    BookLevel,
    Fill,
    Instrument,
    Liquidity,
    Order,
    OrderBook,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    floor_to,
    to_decimal,
)
from ops.sandbox.faults import ADMIN_PREFIX, FaultInjector, FaultPlan

log = logging.getLogger(__name__)

DATA_CSV = Path(__file__).resolve().parents[1] / "data/binance/BTCUSDT-1m-2024-03-01_2024-03-22.csv"
SYMBOL = "BTCUSDT"
BASE, QUOTE = "BTC", "USDT"
BAR_MS = 60_000
PATH_OFFSETS_MS = (0, 20_000, 40_000, 59_999)
"""When, within a bar, the open / low / high / close snapshots happen."""

MIN_NOTIONAL = Decimal(5)
MAX_NOTIONAL = Decimal(9_000_000)
MIN_PRICE, MAX_PRICE = Decimal("0.01"), Decimal(1_000_000)
MAX_QTY = Decimal(9000)
DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60_000
PUBLIC_TRADES_KEPT = 5000

INTERVALS_MS = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
}

_KEY_RE = re.compile(r"[A-Za-z0-9]{1,100}")
_INT_RE = re.compile(r"-?[0-9]{1,20}")
_DEC_RE = re.compile(r"[0-9]{1,20}(\.[0-9]{1,20})?")
_CLIENT_ID_RE = re.compile(r"[A-Za-z0-9_\-.]{1,36}")
_DEPTH_STREAM_RE = re.compile(r"(?P<sym>[a-z0-9]+)@depth(?P<levels>5|10|20)?(@(100|1000)ms)?")


class BinanceError(Exception):
    """An answer in Binance's error shape ``{"code": ..., "msg": ...}``."""

    def __init__(self, code: int, msg: str, status: int = 400, headers: Mapping[str, str] | None = None):
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        return web.json_response(
            {"code": self.code, "msg": self.msg}, status=self.status, headers=self.headers
        )


def _mandatory(name: str) -> BinanceError:
    return BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def _illegal(name: str, legal: str) -> BinanceError:
    return BinanceError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'.")


def _not_required(name: str) -> BinanceError:
    return BinanceError(-1106, f"Parameter '{name}' sent when not required.")


def fmt(value: Decimal) -> str:
    """Binance's 8-decimal string form of an amount."""
    return f"{value.quantize(Decimal('1e-8'), rounding=ROUND_DOWN):f}"


class BookModel(BaseModel):
    """The modelled outside book around a reference price; see the module docstring."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    spread_ticks: int = Field(default=2, ge=1)
    step_ticks: int = Field(default=100, ge=1, description="distance between levels")
    levels: int = Field(default=20, ge=1, le=5000)
    level_qty: Decimal | None = Field(default=None, gt=0, description="fixed size of every level")
    volume_fraction: float = Field(default=0.02, gt=0, le=1, description="level size = this x bar volume")
    min_level_qty: Decimal = Field(default=Decimal("0.001"), gt=0)


class Credentials(BaseModel):
    """An API key pair of one sandbox account."""

    model_config = ConfigDict(frozen=True)

    api_key: str
    api_secret: str
    account: str

    @property
    def key(self) -> SecretStr:
        return SecretStr(self.api_key)

    @property
    def secret(self) -> SecretStr:
        return SecretStr(self.api_secret)


@dataclass(slots=True)
class _Wire:
    """What the client sent for an order, beyond what ``Order`` keeps."""

    type: str
    tif: str
    symbol: str
    orig_quote_qty: Decimal = ZERO


@dataclass(slots=True)
class _Trade:
    id: int
    price: Decimal
    qty: Decimal
    ts_ms: int
    buyer_maker: bool


@dataclass(eq=False)
class _Conn:
    ws: web.WebSocketResponse
    path: str
    combined: bool
    streams: set[str] = field(default_factory=set)
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)


class SandboxBinance:
    """State of the sandbox venue: engine, accounts, replayed market, websocket subscribers."""

    def __init__(
        self,
        *,
        data: Path | CandleTable = DATA_CSV,
        start_bar: int = 0,
        book: BookModel | None = None,
        fees: FeeModel | None = None,
        instrument: Instrument = BINANCE_BTCUSDT,
        weight_limit: int = 6000,
        weight_window_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        faults: FaultInjector | None = None,
    ) -> None:
        self.table = data if isinstance(data, CandleTable) else read_csv(data)
        if not 0 <= start_bar < len(self.table):
            raise ValueError(f"start_bar {start_bar} outside the data (0..{len(self.table) - 1})")
        self.instrument = instrument
        self.market = instrument.market_id
        self.book_model = book if book is not None else BookModel()
        self.engine = MatchingEngine(fees, [instrument], balances=True)
        self.weight_limit = weight_limit
        self.weight_window_s = weight_window_s
        self.clock = clock
        self.faults = faults if faults is not None else FaultInjector()
        self.updates: list[OrderUpdate] = []
        """Every engine event, in order (the venue's own log)."""

        self._accounts: dict[str, Credentials] = {}
        self._by_name: dict[str, Credentials] = {}
        self._wire: dict[str, _Wire] = {}
        self._by_order_id: dict[int, str] = {}
        self._quote_filled: dict[str, Decimal] = {}
        self._expired: set[str] = set()
        self._rejections: dict[str, BinanceError] = {}
        self._fill_trade: dict[str, int] = {}
        self._trades: deque[_Trade] = deque(maxlen=PUBLIC_TRADES_KEPT)
        self._trade_seq = 0
        self._update_id = 0
        self._published: tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]] = ({}, {})
        self._weights: dict[str, tuple[int, int]] = {}
        self._conns: set[_Conn] = set()
        self._changed = asyncio.Event()
        self._clock_task: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

        t = self.table
        self._ts: list[int] = [int(x) for x in t.timestamp.tolist()]
        self._ohlcv = (t.open, t.high, t.low, t.close, t.volume)
        self._bar = start_bar
        self._now_ms = self._ts[start_bar]
        self._play_bar(start_bar)

    # ------------------------------------------------------------------ accounts

    def create_account(
        self,
        balances: Mapping[str, Decimal | str | int] | None = None,
        *,
        api_key: str | None = None,
        api_secret: str | None = None,
        name: str | None = None,
    ) -> Credentials:
        """A new account with its key pair (generated unless given) and opening balances."""
        amounts = {asset.upper(): Decimal(str(amount)) for asset, amount in (balances or {}).items()}
        if any(not a.is_finite() or a < 0 for a in amounts.values()):
            raise ValueError("opening balances must be finite and >= 0")
        key = api_key if api_key is not None else secrets.token_hex(32)
        if not _KEY_RE.fullmatch(key):
            raise ValueError("an API key is 1-100 characters of [A-Za-z0-9]")
        if key in self._accounts:
            raise ValueError("API key already in use")
        account = name if name is not None else f"acct-{len(self._accounts) + 1}"
        if account in self._by_name:
            raise ValueError(f"account {account!r} exists")
        secret = api_secret if api_secret is not None else secrets.token_hex(32)
        creds = Credentials(api_key=key, api_secret=secret, account=account)
        self._accounts[key] = creds
        self._by_name[account] = creds
        for asset, amount in amounts.items():
            if amount > 0:
                self.deposit(account, asset, amount)
        return creds

    def deposit(self, account: str, asset: str, amount: Decimal | str | int) -> None:
        self.engine.deposit(account, asset.upper(), Decimal(str(amount)))

    def balances(self, account: str) -> dict[str, tuple[Decimal, Decimal]]:
        """(free, locked) per asset."""
        return {a: (b.free, b.locked) for a, b in self.engine.balances(account).items()}

    # ------------------------------------------------------------------ ground truth

    def orders(self, account: str | None = None) -> list[Order]:
        """Every order the engine holds (rejected ones included), in arrival order."""
        return self.engine.orders(account=account)

    def order(self, client_id: str) -> Order | None:
        return self.engine.order(client_id)

    def fills(self, account: str | None = None) -> list[Fill]:
        return self.engine.fills(account=account)

    def ground_truth_orders(self) -> list[dict[str, Any]]:
        return [
            {
                **o.model_dump(mode="json"),
                "account": self.engine.account_of(o.client_id),
                "binance_status": self._status(o),
            }
            for o in self.engine.orders()
        ]

    def ground_truth_fills(self) -> list[dict[str, Any]]:
        return [
            {
                **f.model_dump(mode="json"),
                "account": self.engine.account_of(f.client_id),
                "trade_id": self._fill_trade.get(f.fill_id),
            }
            for f in self.engine.fills()
        ]

    # ------------------------------------------------------------------ market clock

    @property
    def now_ms(self) -> int:
        """Market time: the close of the current bar."""
        return self._now_ms

    @property
    def bar_index(self) -> int:
        return self._bar

    @property
    def exhausted(self) -> bool:
        return self._bar + 1 >= len(self._ts)

    def bar(self, index: int | None = None) -> tuple[int, Decimal, Decimal, Decimal, Decimal, Decimal]:
        """(open time, open, high, low, close, volume) of a bar, the current one by default."""
        i = self._bar if index is None else index
        o, h, lo, c, v = self._ohlcv
        return (
            self._ts[i],
            to_decimal(float(o[i])),
            to_decimal(float(h[i])),
            to_decimal(float(lo[i])),
            to_decimal(float(c[i])),
            to_decimal(float(v[i])),
        )

    def book(self) -> OrderBook:
        """The public book now: the last snapshot less what our orders took from it."""
        book = self.engine.book(self.market)
        assert book is not None  # the first bar is played in __init__
        return book

    def advance(self, n_bars: int = 1) -> list[OrderUpdate]:
        """Play the next ``n_bars`` bars (fewer at the end of the data); returns the engine events."""
        if n_bars < 0:
            raise ValueError("cannot go back in time")
        out: list[OrderUpdate] = []
        for _ in range(n_bars):
            if self.exhausted:
                break
            self._bar += 1
            out += self._play_bar(self._bar)
        self._notify()
        return out

    def start_clock(self, speed: float = 60.0) -> None:
        """Advance one bar every ``60 / speed`` wall seconds in a background task."""
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.stop_clock()
        self._clock_task = asyncio.get_running_loop().create_task(self._run_clock(BAR_MS / 1000 / speed))

    def stop_clock(self) -> None:
        if self._clock_task is not None:
            self._clock_task.cancel()
            self._clock_task = None

    async def _run_clock(self, interval_s: float) -> None:
        while not self.exhausted:
            await asyncio.sleep(interval_s)
            self.advance(1)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` holds; re-checked on every change of the venue's state."""
        async with asyncio.timeout(timeout):
            while not predicate():
                await self._changed.wait()

    def _notify(self) -> None:
        """Wake every ``wait_for``: set this generation's event, start a new one."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # ------------------------------------------------------------------ the market model

    def _level_qty(self, volume: Decimal) -> Decimal:
        model = self.book_model
        if model.level_qty is not None:
            return model.level_qty
        lot = self.instrument.lot_size
        return max(model.min_level_qty, floor_to(volume * to_decimal(model.volume_fraction), lot))

    def model_book(self, ref: Decimal, volume: Decimal, ts_ms: int) -> OrderBook:
        """The outside book around ``ref``: spread, levels and sizes from ``book_model``."""
        model, tick = self.book_model, self.instrument.tick_size
        spread = model.spread_ticks * tick
        bid = max(tick, floor_to(ref - spread / 2, tick))
        ask = bid + spread
        step = model.step_ticks * tick
        size = self._level_qty(volume)
        bids = [BookLevel(price=bid - i * step, size=size) for i in range(model.levels) if bid - i * step > 0]
        asks = [BookLevel(price=ask + i * step, size=size) for i in range(model.levels)]
        return OrderBook(market=self.market, ts_ms=ts_ms, bids=tuple(bids), asks=tuple(asks))

    def _play_bar(self, i: int) -> list[OrderUpdate]:
        ts, o, h, lo, c, v = self.bar(i)
        lot = self.instrument.lot_size
        trade_qty = max(lot, floor_to(v / 4, lot))
        events: list[OrderUpdate] = []
        prev = to_decimal(float(self._ohlcv[3][i - 1])) if i > 0 else o
        high = low = o
        for k, (offset, ref) in enumerate(zip(PATH_OFFSETS_MS, (o, lo, h, c), strict=True)):
            t = ts + offset
            self._now_ms = max(self._now_ms, t)
            high, low = max(high, ref), min(low, ref)
            self._record_trade(ref, trade_qty, buyer_maker=ref < prev, ts_ms=t)
            prev = ref
            updates = self.engine.on_book(self.model_book(ref, v, t), t)
            self._absorb(updates)
            events += updates
            self._publish_depth(t)
            self._broadcast_kline(ts, o, high, low, ref, v * (k + 1) / 4, closed=k == 3, event_ms=t)
        self._now_ms = ts + BAR_MS
        return events

    def _record_trade(self, price: Decimal, qty: Decimal, *, buyer_maker: bool, ts_ms: int) -> int:
        self._trade_seq += 1
        trade = _Trade(self._trade_seq, price, qty, ts_ms, buyer_maker)
        self._trades.append(trade)
        lower = SYMBOL.lower()
        payload = {
            "e": "trade",
            "E": ts_ms,
            "s": SYMBOL,
            "t": trade.id,
            "p": fmt(price),
            "q": fmt(qty),
            "T": ts_ms,
            "m": buyer_maker,
            "M": True,
        }
        self._broadcast(f"{lower}@trade", payload)
        agg = {
            "e": "aggTrade",
            "E": ts_ms,
            "s": SYMBOL,
            "a": trade.id,
            "p": fmt(price),
            "q": fmt(qty),
            "f": trade.id,
            "l": trade.id,
            "T": ts_ms,
            "m": buyer_maker,
            "M": True,
        }
        self._broadcast(f"{lower}@aggTrade", agg)
        return trade.id

    def _absorb(self, updates: Iterable[OrderUpdate]) -> None:
        """Book-keeping of engine events: trades for fills, expiries, cumulative quote."""
        for update in updates:
            self.updates.append(update)
            cid = update.order.client_id
            if update.kind is UpdateKind.FILL and update.fill is not None:
                fill = update.fill
                self._quote_filled[cid] = self._quote_filled.get(cid, ZERO) + fill.price * fill.qty
                ours_buy = fill.side is Side.BUY
                maker = fill.liquidity is Liquidity.MAKER
                buyer_maker = ours_buy == maker
                self._fill_trade[fill.fill_id] = self._record_trade(
                    fill.price, fill.qty, buyer_maker=buyer_maker, ts_ms=fill.ts_ms
                )
            elif update.kind is UpdateKind.CANCELLED and update.reason is not Reason.REQUESTED:
                self._expired.add(cid)

    # ------------------------------------------------------------------ order views

    def _status(self, order: Order) -> str:
        status = order.status
        if status is OrderStatus.CANCELLED:
            return "EXPIRED" if order.client_id in self._expired else "CANCELED"
        return {
            OrderStatus.PENDING: "NEW",
            OrderStatus.OPEN: "NEW",
            OrderStatus.PARTIALLY_FILLED: "PARTIALLY_FILLED",
            OrderStatus.FILLED: "FILLED",
            OrderStatus.REJECTED: "REJECTED",
        }[status]

    def _order_core(self, order: Order) -> dict[str, Any]:
        wire = self._wire.get(order.client_id) or _Wire(
            type="MARKET" if order.type is OrderType.MARKET else "LIMIT", tif="GTC", symbol=SYMBOL
        )
        return {
            "symbol": wire.symbol,
            "orderId": int(order.venue_order_id or 0),
            "orderListId": -1,
            "clientOrderId": order.client_id,
            "price": fmt(order.price or ZERO),
            "origQty": fmt(order.qty),
            "executedQty": fmt(order.filled_qty),
            "cummulativeQuoteQty": fmt(self._quote_filled.get(order.client_id, ZERO)),
            "status": self._status(order),
            "timeInForce": wire.tif,
            "type": wire.type,
            "side": order.side.value.upper(),
        }

    def order_json(self, order: Order) -> dict[str, Any]:
        """``GET /api/v3/order`` shape."""
        return {
            **self._order_core(order),
            "stopPrice": fmt(ZERO),
            "icebergQty": fmt(ZERO),
            "time": order.created_ms,
            "updateTime": order.updated_ms,
            "isWorking": True,
            "workingTime": order.created_ms,
            "origQuoteOrderQty": fmt(self._wire[order.client_id].orig_quote_qty)
            if order.client_id in self._wire
            else fmt(ZERO),
            "selfTradePreventionMode": "NONE",
        }

    def _cancel_json(self, order: Order, cancel_id: str) -> dict[str, Any]:
        core = self._order_core(order)
        core["origClientOrderId"] = order.client_id
        core["clientOrderId"] = cancel_id
        return {
            "symbol": core.pop("symbol"),
            "origClientOrderId": core.pop("origClientOrderId"),
            "orderId": core.pop("orderId"),
            "orderListId": core.pop("orderListId"),
            "clientOrderId": core.pop("clientOrderId"),
            "transactTime": self._now_ms,
            **core,
            "origQuoteOrderQty": fmt(ZERO),
            "selfTradePreventionMode": "NONE",
        }

    def _visible(
        self, account: str, client_id: str | None = None, order_id: int | None = None
    ) -> Order | None:
        """An order of ``account`` Binance would show (rejected orders are not stored there)."""
        cid = client_id if client_id is not None else self._by_order_id.get(order_id or -1)
        if cid is None:
            return None
        order = self.engine.order(cid)
        if order is None or order.status is OrderStatus.REJECTED or self.engine.account_of(cid) != account:
            return None
        return order

    # ------------------------------------------------------------------ websockets

    def _broadcast(self, stream: str, payload: dict[str, Any]) -> None:
        if not self._conns:
            return
        raw: str | None = None
        wrapped: str | None = None
        for conn in self._conns:
            if stream not in conn.streams:
                continue
            if conn.combined:
                wrapped = wrapped or json.dumps({"stream": stream, "data": payload})
                conn.queue.put_nowait(wrapped)
            else:
                raw = raw or json.dumps(payload)
                conn.queue.put_nowait(raw)

    def _broadcast_kline(
        self,
        ts: int,
        o: Decimal,
        h: Decimal,
        lo: Decimal,
        c: Decimal,
        volume: Decimal,
        *,
        closed: bool,
        event_ms: int,
    ) -> None:
        if not self._conns:
            return
        payload = {
            "e": "kline",
            "E": event_ms,
            "s": SYMBOL,
            "k": {
                "t": ts,
                "T": ts + BAR_MS - 1,
                "s": SYMBOL,
                "i": "1m",
                "f": -1,
                "L": -1,
                "o": fmt(o),
                "c": fmt(c),
                "h": fmt(h),
                "l": fmt(lo),
                "v": fmt(volume),
                "n": 0,
                "x": closed,
                "q": fmt(volume * c),
                "V": "0.00000000",
                "Q": "0.00000000",
                "B": "0",
            },
        }
        self._broadcast(f"{SYMBOL.lower()}@kline_1m", payload)

    def _publish_depth(self, ts_ms: int) -> None:
        """Send the changes of the public book as one ``depthUpdate`` (one update id)."""
        book = self.book()
        bids = {lv.price: lv.size for lv in book.bids}
        asks = {lv.price: lv.size for lv in book.asks}
        old_bids, old_asks = self._published
        db = _diff(old_bids, bids)
        da = _diff(old_asks, asks)
        if not db and not da:
            return
        self._update_id += 1
        self._published = (bids, asks)
        if not self._conns:
            return
        lower = SYMBOL.lower()
        diff = {
            "e": "depthUpdate",
            "E": ts_ms,
            "s": SYMBOL,
            "U": self._update_id,
            "u": self._update_id,
            "b": [[fmt(p), fmt(q)] for p, q in db],
            "a": [[fmt(p), fmt(q)] for p, q in da],
        }
        for name in (f"{lower}@depth", f"{lower}@depth@100ms", f"{lower}@depth@1000ms"):
            self._broadcast(name, diff)
        for levels in (5, 10, 20):
            snap = self._depth_json(levels)
            for suffix in ("", "@100ms", "@1000ms"):
                self._broadcast(f"{lower}@depth{levels}{suffix}", snap)

    def _depth_json(self, limit: int) -> dict[str, Any]:
        book = self.book()
        return {
            "lastUpdateId": self._update_id,
            "bids": [[fmt(lv.price), fmt(lv.size)] for lv in book.bids[:limit]],
            "asks": [[fmt(lv.price), fmt(lv.size)] for lv in book.asks[:limit]],
        }

    async def _ws_handler(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        combined = request.path.rstrip("/") == "/stream"
        if combined:
            names = request.query.get("streams", "").split("/")
        else:
            tail = request.match_info.get("streams", "")
            names = tail.split("/") if tail else []
        conn = _Conn(ws=ws, path=request.path, combined=combined)
        conn.streams.update(n for n in names if _valid_stream(n))
        self._conns.add(conn)
        self._notify()
        sender = asyncio.get_running_loop().create_task(self._ws_sender(conn))
        with self.faults.track_ws(request.path, ws):
            try:
                async for msg in ws:
                    if msg.type is WSMsgType.TEXT:
                        conn.queue.put_nowait(json.dumps(self._ws_command(conn, msg.data)))
                        self._notify()
                    elif msg.type is WSMsgType.ERROR:
                        break
            finally:
                self._conns.discard(conn)
                self._notify()
                conn.queue.put_nowait(None)
                with contextlib.suppress(asyncio.CancelledError):
                    await sender
                await ws.close()
        return ws

    async def _ws_sender(self, conn: _Conn) -> None:
        while True:
            item = await conn.queue.get()
            if item is None or conn.ws.closed:
                return
            if not await self.faults.ws_gate(conn.path):
                await conn.ws.close(code=1001, message=b"sandbox: injected drop")
                return
            try:
                await conn.ws.send_str(item)
            except (ConnectionError, RuntimeError):
                return

    def _ws_command(self, conn: _Conn, text: str) -> dict[str, Any]:
        try:
            msg = json.loads(text)
        except ValueError:
            return _ws_error(3, "Invalid JSON: expected value at line 1 column 1", None)
        if not isinstance(msg, dict):
            return _ws_error(2, "Invalid request: request must be an object", None)
        rid = msg.get("id")
        method = msg.get("method")
        params = msg.get("params", [])
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": sorted(conn.streams), "id": rid}
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE"):
            return _ws_error(2, f"Invalid request: unknown variant `{method}`", rid)
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            return _ws_error(2, "Invalid request: params must be a list of strings", rid)
        bad = [p for p in params if not _valid_stream(p)]
        if bad:
            return _ws_error(2, f"Invalid request: invalid stream name {bad[0]!r}", rid)
        if method == "SUBSCRIBE":
            conn.streams.update(params)
        else:
            conn.streams.difference_update(params)
        return {"result": None, "id": rid}

    def subscriptions(self) -> list[set[str]]:
        """The streams of every live websocket (tests wait on these instead of sleeping)."""
        return [set(c.streams) for c in self._conns]

    async def close_websockets(self) -> None:
        for conn in list(self._conns):
            await conn.ws.close(code=1001, message=b"sandbox shutting down")

    # ------------------------------------------------------------------ request plumbing

    def _weight_state(self, ip: str) -> tuple[int, float]:
        """(used weight, seconds left) of ``ip``'s current window."""
        now = self.clock()
        window = int(now // self.weight_window_s)
        win, used = self._weights.get(ip, (window, 0))
        if win != window:
            used = 0
        left = (window + 1) * self.weight_window_s - now
        return used, left

    def used_weight(self, ip: str = "127.0.0.1") -> int:
        return self._weight_state(ip)[0]

    def reset_weights(self) -> None:
        self._weights.clear()

    def _charge(self, ip: str, weight: int) -> tuple[int, float]:
        used, left = self._weight_state(ip)
        used += weight
        self._weights[ip] = (int(self.clock() // self.weight_window_s), used)
        return used, left

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Weights, Binance error JSON for every failure, ``X-MBX-USED-WEIGHT-1M`` on every answer."""
        path = request.path
        if path.startswith(ADMIN_PREFIX) or path == "/stream" or path.startswith("/ws"):
            return await handler(request)
        ip = request.remote or "?"
        used, left = self._charge(ip, _weight(request.method, path, request.query))
        headers = {"X-MBX-USED-WEIGHT-1M": str(used)}
        if used > self.weight_limit:
            retry = max(1, math.ceil(left))
            return BinanceError(
                -1003,
                f"Too many requests; current limit of IP({ip}) request weight per 1 MINUTE is "
                f"{self.weight_limit}. Please use WebSocket Streams for live updates to avoid polling "
                "the API.",
                status=429,
                headers={**headers, "Retry-After": str(retry)},
            ).response()
        try:
            response = await handler(request)
        except BinanceError as exc:
            response = exc.response()
        except UnicodeDecodeError:  # a query or form body that is not UTF-8
            response = BinanceError(-1100, "Illegal characters found in a parameter.").response()
        except web.HTTPException as exc:
            if exc.status == 404:
                response = web.json_response({"code": -1000, "msg": "Not found."}, status=404)
            elif exc.status == 405:
                response = web.json_response({"code": -1000, "msg": "Method not allowed."}, status=405)
            else:
                raise
        except Exception:
            log.exception("sandbox binance: %s %s failed", request.method, path)
            response = BinanceError(
                -1000, "An unknown error occurred while processing the request.", status=500
            ).response()
        response.headers.update(headers)
        return response

    async def _params(self, request: web.Request) -> dict[str, str]:
        """Query string and form body; duplicates refused (-1101), the query wins over the body."""
        out: dict[str, str] = {}
        body = await request.text() if request.body_exists else ""
        for source in (body, request.rel_url.raw_query_string):
            seen: set[str] = set()
            for k, v in parse_qsl(source, keep_blank_values=True):
                if k in seen:
                    raise BinanceError(-1101, "Duplicate values for a parameter detected.")
                seen.add(k)
                out[k] = v
        return out

    async def _signed(self, request: web.Request) -> tuple[str, dict[str, str]]:
        """Authenticate a signed request as Binance does; returns (account, params)."""
        key = request.headers.get("X-MBX-APIKEY", "")
        if not _KEY_RE.fullmatch(key):
            raise BinanceError(-2014, "API-key format invalid.", status=401)
        creds = self._accounts.get(key)
        if creds is None:
            raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)
        params = await self._params(request)
        signature = params.pop("signature", "")
        if not signature:
            raise _mandatory("signature")
        body = await request.text() if request.body_exists else ""
        payload = _without_signature(request.rel_url.raw_query_string) + _without_signature(body)
        timestamp = _int(params, "timestamp", required=True)
        recv_window = _recv_window(params)
        expected = hmac.new(creds.api_secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise BinanceError(-1022, "Signature for this request is not valid.")
        now_ms = int(self.clock() * 1000)
        if timestamp >= now_ms + 1000:
            raise BinanceError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
        if now_ms - timestamp > recv_window:
            raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")
        return creds.account, params

    def _symbol(self, params: Mapping[str, str], *, required: bool = True) -> str | None:
        symbol = params.get("symbol")
        if not symbol:
            if required:
                raise _mandatory("symbol")
            return None
        if symbol != SYMBOL:
            raise BinanceError(-1121, "Invalid symbol.")
        return symbol

    # ------------------------------------------------------------------ public endpoints

    async def ping(self, _request: web.Request) -> web.Response:
        return web.json_response({})

    async def server_time(self, _request: web.Request) -> web.Response:
        return web.json_response({"serverTime": int(self.clock() * 1000)})

    def exchange_info_json(self) -> dict[str, Any]:
        inst = self.instrument
        fee_precision = 8
        return {
            "timezone": "UTC",
            "serverTime": int(self.clock() * 1000),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": self.weight_limit,
                },
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
                {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
            ],
            "exchangeFilters": [],
            "symbols": [
                {
                    "symbol": SYMBOL,
                    "status": "TRADING",
                    "baseAsset": BASE,
                    "baseAssetPrecision": 8,
                    "quoteAsset": QUOTE,
                    "quotePrecision": 8,
                    "quoteAssetPrecision": 8,
                    "baseCommissionPrecision": fee_precision,
                    "quoteCommissionPrecision": fee_precision,
                    "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
                    "icebergAllowed": False,
                    "ocoAllowed": False,
                    "otoAllowed": False,
                    "opoAllowed": False,
                    "quoteOrderQtyMarketAllowed": True,
                    "allowTrailingStop": False,
                    "cancelReplaceAllowed": False,
                    "amendAllowed": False,
                    "pegInstructionsAllowed": False,
                    "isSpotTradingAllowed": True,
                    "isMarginTradingAllowed": False,
                    "filters": [
                        {
                            "filterType": "PRICE_FILTER",
                            "minPrice": fmt(MIN_PRICE),
                            "maxPrice": fmt(MAX_PRICE),
                            "tickSize": fmt(inst.tick_size),
                        },
                        {
                            "filterType": "LOT_SIZE",
                            "minQty": fmt(inst.min_size or inst.lot_size),
                            "maxQty": fmt(MAX_QTY),
                            "stepSize": fmt(inst.lot_size),
                        },
                        {
                            "filterType": "NOTIONAL",
                            "minNotional": fmt(MIN_NOTIONAL),
                            "applyMinToMarket": True,
                            "maxNotional": fmt(MAX_NOTIONAL),
                            "applyMaxToMarket": False,
                            "avgPriceMins": 5,
                        },
                    ],
                    "permissions": [],
                    "permissionSets": [["SPOT"]],
                    "defaultSelfTradePreventionMode": "NONE",
                    "allowedSelfTradePreventionModes": ["NONE"],
                }
            ],
        }

    async def exchange_info(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        if "symbol" in params:
            self._symbol(params)
        if "symbols" in params:
            try:
                wanted = json.loads(params["symbols"])
            except ValueError:
                raise _illegal("symbols", '["SYMBOL",...]') from None
            if not isinstance(wanted, list) or any(s != SYMBOL for s in wanted):
                raise BinanceError(-1121, "Invalid symbol.")
        return web.json_response(self.exchange_info_json())

    async def klines(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        self._symbol(params)
        interval = params.get("interval")
        if not interval:
            raise _mandatory("interval")
        step = INTERVALS_MS.get(interval)
        if step is None:
            raise BinanceError(-1120, "Invalid interval.")
        limit = min(_int(params, "limit", default=500, lo=1), 1000)
        start = _int(params, "startTime", default=-1)
        end = _int(params, "endTime", default=-1)
        rows = self.klines_rows(step, start if start >= 0 else None, end if end >= 0 else None, limit)
        return web.json_response(rows)

    def klines_rows(self, step: int, start: int | None, end: int | None, limit: int) -> list[list[Any]]:
        """Bars of ``step`` ms built from the 1m data up to the current bar (the last may be partial).

        As Binance: bars opening in [startTime, endTime]; the first ``limit`` of them from
        ``startTime``, else the last ``limit``.
        """
        groups = self.table.timestamp[: self._bar + 1] // step
        g_lo = -(-start // step) if start is not None else int(groups[0])
        g_hi = end // step if end is not None else int(groups[-1])
        lo = int(np.searchsorted(groups, g_lo, "left"))
        hi = int(np.searchsorted(groups, g_hi, "right"))
        sub = groups[lo:hi]
        if len(sub) == 0:
            return []
        firsts = np.flatnonzero(np.r_[True, sub[1:] != sub[:-1]])
        lasts = np.r_[firsts[1:], len(sub)]
        if start is not None:
            firsts, lasts = firsts[:limit], lasts[:limit]
        else:
            firsts, lasts = firsts[-limit:], lasts[-limit:]
        o, h, low, c, v = self._ohlcv
        rows: list[list[Any]] = []
        for a, b in zip(firsts.tolist(), lasts.tolist(), strict=True):
            i, j = lo + a, lo + b
            open_ms = int(groups[i]) * step
            volume = to_decimal(round(float(v[i:j].sum()), 8))
            close = to_decimal(float(c[j - 1]))
            rows.append(
                [
                    open_ms,
                    fmt(to_decimal(float(o[i]))),
                    fmt(to_decimal(float(h[i:j].max()))),
                    fmt(to_decimal(float(low[i:j].min()))),
                    fmt(close),
                    fmt(volume),
                    open_ms + step - 1,
                    fmt(volume * close),
                    4 * (j - i),
                    "0.00000000",
                    "0.00000000",
                    "0",
                ]
            )
        return rows

    async def depth(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        self._symbol(params)
        limit = min(_int(params, "limit", default=100, lo=1), 5000)
        return web.json_response(self._depth_json(limit))

    async def trades(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        self._symbol(params)
        limit = min(_int(params, "limit", default=500, lo=1), 1000)
        recent = list(self._trades)[-limit:]
        return web.json_response(
            [
                {
                    "id": t.id,
                    "price": fmt(t.price),
                    "qty": fmt(t.qty),
                    "quoteQty": fmt(t.price * t.qty),
                    "time": t.ts_ms,
                    "isBuyerMaker": t.buyer_maker,
                    "isBestMatch": True,
                }
                for t in recent
            ]
        )

    async def agg_trades(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        self._symbol(params)
        limit = min(_int(params, "limit", default=500, lo=1), 1000)
        from_id = _int(params, "fromId", default=-1)
        start = _int(params, "startTime", default=-1)
        end = _int(params, "endTime", default=-1)
        picked = [
            t
            for t in self._trades
            if (from_id < 0 or t.id >= from_id)
            and (start < 0 or t.ts_ms >= start)
            and (end < 0 or t.ts_ms <= end)
        ]
        picked = picked[:limit] if (from_id >= 0 or start >= 0) else picked[-limit:]
        return web.json_response(
            [
                {
                    "a": t.id,
                    "p": fmt(t.price),
                    "q": fmt(t.qty),
                    "f": t.id,
                    "l": t.id,
                    "T": t.ts_ms,
                    "m": t.buyer_maker,
                    "M": True,
                }
                for t in picked
            ]
        )

    # ------------------------------------------------------------------ signed endpoints

    async def new_order(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        symbol = self._symbol(params) or SYMBOL
        side_raw = params.get("side")
        if not side_raw:
            raise _mandatory("side")
        if side_raw not in ("BUY", "SELL"):
            raise BinanceError(-1117, "Invalid side.")
        side = Side.BUY if side_raw == "BUY" else Side.SELL
        otype = params.get("type")
        if not otype:
            raise _mandatory("type")
        if otype not in ("LIMIT", "LIMIT_MAKER", "MARKET"):
            if otype in ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"):
                raise BinanceError(-2010, "Stop loss orders are not supported for this symbol.")
            raise BinanceError(-1116, "Invalid orderType.")
        resp_type = params.get("newOrderRespType", "FULL")
        if resp_type not in ("ACK", "RESULT", "FULL"):
            raise _illegal("newOrderRespType", "ACK|RESULT|FULL")
        client_id = params.get("newClientOrderId") or secrets.token_hex(11)
        if not _CLIENT_ID_RE.fullmatch(client_id):
            raise _illegal("newClientOrderId", "^[a-zA-Z0-9-_]{1,36}$")
        tif_raw = params.get("timeInForce")
        price = _decimal(params, "price")
        qty = _decimal(params, "quantity")
        quote_qty = _decimal(params, "quoteOrderQty")

        if otype == "LIMIT":
            if tif_raw is None:
                raise _mandatory("timeInForce")
            if tif_raw not in ("GTC", "IOC", "FOK"):
                raise BinanceError(-1115, "Invalid timeInForce.")
            if tif_raw == "FOK":
                raise BinanceError(-1115, "Invalid timeInForce.")  # not modelled by the engine
            if price is None:
                raise _mandatory("price")
            if qty is None:
                raise _mandatory("quantity")
            if quote_qty is not None:
                raise _not_required("quoteOrderQty")
            tif = TimeInForce.GTC if tif_raw == "GTC" else TimeInForce.IOC
            order_type = OrderType.LIMIT
        elif otype == "LIMIT_MAKER":
            if tif_raw is not None:
                raise _not_required("timeInForce")
            if price is None:
                raise _mandatory("price")
            if qty is None:
                raise _mandatory("quantity")
            tif, order_type = TimeInForce.POST_ONLY, OrderType.LIMIT
        else:
            if tif_raw is not None:
                raise _not_required("timeInForce")
            if price is not None:
                raise _not_required("price")
            if (qty is None) == (quote_qty is None):
                raise BinanceError(
                    -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"
                )
            if qty is None and quote_qty is not None:
                qty = self._qty_for_quote(side, quote_qty)
            tif, order_type = TimeInForce.IOC, OrderType.MARKET

        assert qty is not None
        existing = self.engine.order(client_id)
        if existing is not None:
            earlier = self._rejections.get(client_id)
            if earlier is not None and existing.status is OrderStatus.REJECTED:
                raise earlier
            raise BinanceError(-2010, "Duplicate order sent.")
        self._check_filters(order_type, price, qty)

        order = Order(
            client_id=client_id,
            market=self.market,
            side=side,
            type=order_type,
            tif=tif,
            price=price,
            qty=qty,
            created_ms=self._now_ms,
        )
        self._wire[client_id] = _Wire(
            type=otype,
            tif=tif_raw or "GTC",
            symbol=symbol,
            orig_quote_qty=quote_qty or ZERO,
        )
        updates = self.engine.submit(order, self._now_ms, account)
        self._absorb(updates)
        self._publish_depth(self._now_ms)
        self._notify()
        first = updates[0]
        if first.kind is UpdateKind.REJECTED:
            error = _rejection(first)
            self._rejections[client_id] = error
            raise error
        self._by_order_id[int(first.order.venue_order_id or 0)] = client_id
        final = self.engine.order(client_id)
        assert final is not None
        ack = {
            "symbol": symbol,
            "orderId": int(final.venue_order_id or 0),
            "orderListId": -1,
            "clientOrderId": client_id,
            "transactTime": self._now_ms,
        }
        if resp_type == "ACK":
            return web.json_response(ack)
        core = self._order_core(final)
        result = {
            **ack,
            "price": core["price"],
            "origQty": core["origQty"],
            "executedQty": core["executedQty"],
            "origQuoteOrderQty": fmt(quote_qty or ZERO),
            "cummulativeQuoteQty": core["cummulativeQuoteQty"],
            "status": core["status"],
            "timeInForce": core["timeInForce"],
            "type": core["type"],
            "side": core["side"],
            "workingTime": self._now_ms,
            "selfTradePreventionMode": "NONE",
        }
        if resp_type == "FULL":
            result["fills"] = [
                {
                    "price": fmt(u.fill.price),
                    "qty": fmt(u.fill.qty),
                    "commission": fmt(u.fill.fee),
                    "commissionAsset": QUOTE,
                    "tradeId": self._fill_trade[u.fill.fill_id],
                }
                for u in updates
                if u.kind is UpdateKind.FILL and u.fill is not None
            ]
        return web.json_response(result)

    def _qty_for_quote(self, side: Side, quote: Decimal) -> Decimal:
        """Quantity a MARKET order with ``quoteOrderQty`` buys/sells walking the current book."""
        book = self.book()
        levels = book.asks if side is Side.BUY else book.bids
        lot = self.instrument.lot_size
        left, qty = quote, ZERO
        for lv in levels:
            take = min(lv.size, floor_to(left / lv.price, lot))
            if take <= 0:
                break
            qty += take
            left -= take * lv.price
        if qty <= 0:
            raise BinanceError(-1013, "Filter failure: LOT_SIZE")
        return qty

    def _check_filters(self, order_type: OrderType, price: Decimal | None, qty: Decimal) -> None:
        inst = self.instrument
        if price is not None and (
            price < MIN_PRICE or price > MAX_PRICE or (price - MIN_PRICE) % inst.tick_size != 0
        ):
            raise BinanceError(-1013, "Filter failure: PRICE_FILTER")
        min_qty = inst.min_size or inst.lot_size
        if qty <= 0 or qty < min_qty or qty > MAX_QTY or (qty - min_qty) % inst.lot_size != 0:
            raise BinanceError(-1013, "Filter failure: LOT_SIZE")
        ref = price if price is not None else self.bar()[4]
        notional = ref * qty
        if notional < MIN_NOTIONAL or (order_type is OrderType.LIMIT and notional > MAX_NOTIONAL):
            raise BinanceError(-1013, "Filter failure: NOTIONAL")

    def _lookup(self, account: str, params: Mapping[str, str], missing: BinanceError) -> Order:
        cid = params.get("origClientOrderId") or None
        oid = _int(params, "orderId", default=-1)
        if cid is None and oid < 0:
            raise BinanceError(
                -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
            )
        order = self._visible(account, client_id=cid, order_id=oid if cid is None else None)
        if order is None or (cid is not None and oid >= 0 and int(order.venue_order_id or 0) != oid):
            raise missing
        return order

    async def query_order(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        self._symbol(params)
        order = self._lookup(account, params, BinanceError(-2013, "Order does not exist."))
        return web.json_response(self.order_json(order))

    async def cancel_order(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        self._symbol(params)
        unknown = BinanceError(-2011, "Unknown order sent.")
        order = self._lookup(account, params, unknown)
        if not order.is_open:
            raise unknown
        cancel_id = params.get("newClientOrderId") or f"cancel-{order.venue_order_id}"
        updates = self.engine.cancel(order.client_id, self._now_ms)
        self._absorb(updates)
        self._notify()
        final = self.engine.order(order.client_id)
        assert final is not None
        return web.json_response(self._cancel_json(final, cancel_id))

    async def open_orders(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        self._symbol(params, required=False)
        orders = self.engine.open_orders(self.market, account)
        return web.json_response([self.order_json(o) for o in orders])

    async def cancel_open_orders(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        self._symbol(params)
        orders = self.engine.open_orders(self.market, account)
        if not orders:
            raise BinanceError(-2011, "Unknown order sent.")
        updates = self.engine.cancel_all(self.market, self._now_ms, account)
        self._absorb(updates)
        self._notify()
        out = []
        for o in orders:
            final = self.engine.order(o.client_id)
            assert final is not None
            out.append(self._cancel_json(final, f"cancel-{final.venue_order_id}"))
        return web.json_response(out)

    async def account_info(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        omit_zero = params.get("omitZeroBalances", "false").lower() == "true"
        bals = self.engine.balances(account)
        assets = sorted(set(bals) | {BASE, QUOTE})
        maker = int(to_decimal(self.engine.fees.costs.binance.maker) * 10_000)
        taker = int(to_decimal(self.engine.fees.costs.binance.taker) * 10_000)
        rows = []
        for asset in assets:
            b = bals.get(asset)
            free, locked = (b.free, b.locked) if b is not None else (ZERO, ZERO)
            if omit_zero and free == 0 and locked == 0:
                continue
            rows.append({"asset": asset, "free": fmt(free), "locked": fmt(locked)})
        return web.json_response(
            {
                "makerCommission": maker,
                "takerCommission": taker,
                "buyerCommission": 0,
                "sellerCommission": 0,
                "commissionRates": {
                    "maker": fmt(to_decimal(self.engine.fees.costs.binance.maker)),
                    "taker": fmt(to_decimal(self.engine.fees.costs.binance.taker)),
                    "buyer": fmt(ZERO),
                    "seller": fmt(ZERO),
                },
                "canTrade": True,
                "canWithdraw": False,
                "canDeposit": False,
                "brokered": False,
                "requireSelfTradePrevention": False,
                "preventSor": False,
                "updateTime": self._now_ms,
                "accountType": "SPOT",
                "balances": rows,
                "permissions": ["SPOT"],
                "uid": int(hashlib.sha256(account.encode()).hexdigest()[:8], 16),
            }
        )

    async def my_trades(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        self._symbol(params)
        order_id = _int(params, "orderId", default=-1)
        start = _int(params, "startTime", default=-1)
        end = _int(params, "endTime", default=-1)
        from_id = _int(params, "fromId", default=-1)
        limit = min(_int(params, "limit", default=500, lo=1), 1000)
        cid = self._by_order_id.get(order_id) if order_id >= 0 else None
        if order_id >= 0 and cid is None:
            return web.json_response([])
        rows = []
        for f in self.engine.fills(market=self.market, account=account, client_id=cid):
            tid = self._fill_trade[f.fill_id]
            if (
                (start >= 0 and f.ts_ms < start)
                or (end >= 0 and f.ts_ms > end)
                or (from_id >= 0 and tid < from_id)
            ):
                continue
            order = self.engine.order(f.client_id)
            rows.append(
                {
                    "symbol": SYMBOL,
                    "id": tid,
                    "orderId": int(order.venue_order_id or 0) if order is not None else 0,
                    "orderListId": -1,
                    "price": fmt(f.price),
                    "qty": fmt(f.qty),
                    "quoteQty": fmt(f.price * f.qty),
                    "commission": fmt(f.fee),
                    "commissionAsset": QUOTE,
                    "time": f.ts_ms,
                    "isBuyer": f.side is Side.BUY,
                    "isMaker": f.liquidity is Liquidity.MAKER,
                    "isBestMatch": True,
                }
            )
        rows = rows[:limit] if (start >= 0 or from_id >= 0) else rows[-limit:]
        return web.json_response(rows)

    # ------------------------------------------------------------------ sandbox admin

    async def admin_orders(self, _request: web.Request) -> web.Response:
        return web.json_response({"orders": self.ground_truth_orders()})

    async def admin_fills(self, _request: web.Request) -> web.Response:
        return web.json_response({"fills": self.ground_truth_fills()})

    def state_json(self) -> dict[str, Any]:
        ts, o, h, lo, c, v = self.bar()
        return {
            "bar_index": self._bar,
            "bars": len(self._ts),
            "now_ms": self._now_ms,
            "bar": {
                "ts_ms": ts,
                "open": str(o),
                "high": str(h),
                "low": str(lo),
                "close": str(c),
                "volume": str(v),
            },
            "best_bid": str(self.book().best_bid),
            "best_ask": str(self.book().best_ask),
            "last_update_id": self._update_id,
            "accounts": sorted(self._by_name),
            "websockets": len(self._conns),
            "clock_running": self._clock_task is not None,
        }

    async def admin_state(self, _request: web.Request) -> web.Response:
        return web.json_response(self.state_json())

    async def admin_advance(self, request: web.Request) -> web.Response:
        try:
            body = await request.json() if request.can_read_body else {}
            bars = int(body.get("bars", 1)) if isinstance(body, dict) else 1
        except (ValueError, TypeError, OverflowError):
            return web.json_response({"error": 'body must be JSON {"bars": n}'}, status=400)
        if bars < 0:
            return web.json_response({"error": "bars must be >= 0"}, status=400)
        updates = self.advance(bars)
        return web.json_response({**self.state_json(), "updates": len(updates)})

    async def admin_accounts(self, request: web.Request) -> web.Response:
        try:
            body = await request.json() if request.can_read_body else {}
            if not isinstance(body, dict):
                raise ValueError("body must be an object")
            balances = body.get("balances", {})
            if not isinstance(balances, dict):
                raise ValueError("balances must be an object")
            creds = self.create_account(
                {str(k): str(v) for k, v in balances.items()},
                api_key=body.get("api_key"),
                api_secret=body.get("api_secret"),
                name=body.get("name"),
            )
        except InvalidOperation:
            return web.json_response({"error": "balances must be decimal strings"}, status=400)
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(creds.model_dump())

    # ------------------------------------------------------------------ serving

    async def start_server(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve ``binance_app(self)``; returns the base URL (``http://host:port``)."""
        if self._runner is not None:
            raise RuntimeError("already serving")
        runner = web.AppRunner(binance_app(self), shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        bound = sockets[0].getsockname()[1] if sockets else port
        self._runner = runner
        self._url = f"http://{host}:{bound}"
        return self._url

    async def stop_server(self) -> None:
        self.stop_clock()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def rest_url(self) -> str:
        if self._url is None:
            raise RuntimeError("not serving: await start_server() first")
        return self._url

    @property
    def ws_url(self) -> str:
        """Base of the raw streams, what ccxt.pro wants in ``urls['api']['ws']['spot']``."""
        return self.rest_url.replace("http://", "ws://", 1) + "/ws"

    async def _on_shutdown(self, _app: web.Application) -> None:
        self.stop_clock()
        await self.close_websockets()


def binance_app(venue: SandboxBinance) -> web.Application:
    """The aiohttp application speaking Binance's spot API for ``venue``."""
    app = web.Application(middlewares=[venue.middleware])
    venue.faults.install(app)
    r = app.router
    r.add_get("/api/v3/ping", venue.ping)
    r.add_get("/api/v3/time", venue.server_time)
    r.add_get("/api/v3/exchangeInfo", venue.exchange_info)
    r.add_get("/api/v3/klines", venue.klines)
    r.add_get("/api/v3/depth", venue.depth)
    r.add_get("/api/v3/trades", venue.trades)
    r.add_get("/api/v3/aggTrades", venue.agg_trades)
    r.add_post("/api/v3/order", venue.new_order)
    r.add_get("/api/v3/order", venue.query_order)
    r.add_delete("/api/v3/order", venue.cancel_order)
    r.add_get("/api/v3/openOrders", venue.open_orders)
    r.add_delete("/api/v3/openOrders", venue.cancel_open_orders)
    r.add_get("/api/v3/account", venue.account_info)
    r.add_get("/api/v3/myTrades", venue.my_trades)
    r.add_get("/ws", venue._ws_handler)
    r.add_get("/ws/{streams:.*}", venue._ws_handler)
    r.add_get("/stream", venue._ws_handler)
    r.add_get("/_sandbox/orders", venue.admin_orders)
    r.add_get("/_sandbox/fills", venue.admin_fills)
    r.add_get("/_sandbox/state", venue.admin_state)
    r.add_post("/_sandbox/advance", venue.admin_advance)
    r.add_post("/_sandbox/accounts", venue.admin_accounts)
    app.on_shutdown.append(venue._on_shutdown)
    return app


# --------------------------------------------------------------------------- helpers


def _diff(old: Mapping[Decimal, Decimal], new: Mapping[Decimal, Decimal]) -> list[tuple[Decimal, Decimal]]:
    """Changed levels as Binance sends them: (price, new size), size 0 = level removed."""
    out = [(p, q) for p, q in new.items() if old.get(p) != q]
    out += [(p, ZERO) for p in old if p not in new]
    return sorted(out)


def _ws_error(code: int, msg: str, rid: Any) -> dict[str, Any]:
    return {"error": {"code": code, "msg": msg}, "id": rid}


def _without_signature(raw: str) -> str:
    return "&".join(part for part in raw.split("&") if part and not part.startswith("signature="))


def _valid_stream(name: str) -> bool:
    lower = SYMBOL.lower()
    if name in (f"{lower}@kline_1m", f"{lower}@trade", f"{lower}@aggTrade"):
        return True
    m = _DEPTH_STREAM_RE.fullmatch(name)
    return m is not None and m.group("sym") == lower


def _int(
    params: Mapping[str, str], name: str, *, default: int = 0, required: bool = False, lo: int | None = None
) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise _mandatory(name)
        return default
    if not _INT_RE.fullmatch(raw):
        raise _illegal(name, "^[0-9]{1,20}$")
    value = int(raw)
    if lo is not None and value < lo:
        raise _illegal(name, f"value >= {lo}")
    return value


def _decimal(params: Mapping[str, str], name: str) -> Decimal | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not _DEC_RE.fullmatch(raw):
        raise _illegal(name, r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
    return Decimal(raw)


def _recv_window(params: Mapping[str, str]) -> Decimal:
    raw = params.get("recvWindow")
    if raw is None:
        return Decimal(DEFAULT_RECV_WINDOW_MS)
    if not _DEC_RE.fullmatch(raw):
        raise _illegal("recvWindow", r"^[0-9]{1,20}(\.[0-9]{1,3})?$")
    value = Decimal(raw)
    if value > MAX_RECV_WINDOW_MS:
        raise BinanceError(-1131, f"recvWindow must be less than {MAX_RECV_WINDOW_MS}")
    return value


def _rejection(update: OrderUpdate) -> BinanceError:
    reason = update.reason
    if reason is Reason.INSUFFICIENT_FUNDS:
        return BinanceError(-2010, "Account has insufficient balance for requested action.")
    if reason is Reason.POST_ONLY_WOULD_TAKE:
        return BinanceError(-2010, "Order would immediately match and take.")
    if reason in (Reason.LOT_SIZE, Reason.MIN_SIZE, Reason.INVALID_QTY):
        return BinanceError(-1013, "Filter failure: LOT_SIZE")
    if reason in (Reason.TICK_SIZE, Reason.INVALID_PRICE):
        return BinanceError(-1013, "Filter failure: PRICE_FILTER")
    return BinanceError(-2010, f"Order rejected: {update.detail or reason}")


def _weight(method: str, path: str, query: Mapping[str, str]) -> int:
    """Binance's request weight of one REST call."""
    if path == "/api/v3/depth":
        raw = query.get("limit", "100")
        limit = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 20 else 100
        return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250
    if path == "/api/v3/openOrders" and method == "GET":
        return 6 if query.get("symbol") else 80
    if path == "/api/v3/order":
        return 4 if method == "GET" else 1
    if path == "/api/v3/myTrades":
        return 5 if query.get("orderId") else 20
    return {
        "/api/v3/exchangeInfo": 20,
        "/api/v3/klines": 2,
        "/api/v3/trades": 25,
        "/api/v3/aggTrades": 4,
        "/api/v3/account": 20,
    }.get(path, 1)


# --------------------------------------------------------------------------- CLI


async def _serve_forever(args: argparse.Namespace) -> None:
    faults = FaultInjector(FaultPlan.from_file(args.fault_plan)) if args.fault_plan else None
    venue = SandboxBinance(start_bar=args.start_bar, weight_limit=args.weight_limit, faults=faults)
    url = await venue.start_server(args.host, args.port)
    creds = venue.create_account(
        {QUOTE: args.usdt, BASE: args.btc}, api_key=args.api_key, api_secret=args.api_secret
    )
    if args.speed > 0:
        venue.start_clock(args.speed)
    print(json.dumps({"rest_url": url, "ws_url": venue.ws_url, **creds.model_dump()}), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await venue.stop_server()


def main(argv: list[str] | None = None) -> None:
    """``python -m ops.sandbox.binance``: serve the sandbox and print its URL and one account's keys."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--start-bar", type=int, default=0)
    parser.add_argument("--speed", type=float, default=0.0, help="market minutes per wall minute; 0 = manual")
    parser.add_argument("--weight-limit", type=int, default=6000)
    parser.add_argument("--usdt", default="10000")
    parser.add_argument("--btc", default="0")
    parser.add_argument("--api-key")
    parser.add_argument("--api-secret")
    parser.add_argument("--fault-plan", default=None, help="a FaultPlan file (.toml or .json)")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(args))


if __name__ == "__main__":
    main()
