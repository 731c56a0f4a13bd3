"""The sandbox venue's state and market model: the replayed bars, the modelled outside book,
the matching engine, accounts and balances, and the Binance view of orders.

**Commissions** are charged as Binance charges them (``FeeAsset.RECEIVED`` unless ``fees`` says
otherwise): a buy's in the base asset, out of the base it receives (the account is credited
``qty`` less the commission), a sell's in the quote asset; with a ``FeeToken`` ("pay fees with
BNB") every commission is paid in that token, at its discount, while the account holds enough of
it.

**Markets and history.** Several symbols are replayed on one market clock: by default the four
bundled 2024-10 1m files (BTC, ETH, SOL and XRP against USDT, ``SANDBOX_MARKETS``; they share
every timestamp), each with its real Binance tick and lot (``actors.data.replay.binance_instrument``).
The replay starts ``HISTORY_BARS`` (15 days) into the data and everything before that bar is
history, served from the first second as the real venue serves years of it: klines of any range
up to the current bar (so ``fetch_ohlcv(symbol, "1m", limit=10)`` answers 10 bars at once, and a
strategy's warm-up reads its bars from REST), and the public tape of the last history bars. The
venue's market clock stands at the close of the *current* bar and moves only when
``advance(n_bars)`` is called (or the background clock started by ``start_clock(speed)`` calls
it). Nothing after the current bar is ever served (klines, trades, depth): no look-ahead.
Market time is the data's own time (October 2024); ``/api/v3/time`` and the
``timestamp``/``recvWindow`` check use the wall clock, as on Binance, so ccxt's signed requests
work unmodified. Order, trade and event times are market time.

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
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from actors.core.fees import FeeAsset, FeeModel
from actors.core.matching import MatchingEngine
from actors.data.candles import CandleTable, load_table
from actors.data.replay import BINANCE_BTCUSDT, binance_instrument
from actors.domain.messages import OrderUpdate, Reason, UpdateKind
from actors.domain.model import (
    ZERO,
    BookLevel,
    Instrument,
    Liquidity,
    Order,
    OrderBook,
    OrderStatus,
    OrderType,
    Side,
    floor_to,
    to_decimal,
)
from config.models import BUNDLED_CANDLES
from ops.sandbox.binance.auth import _KEY_RE, Credentials
from ops.sandbox.binance.protocol import (
    ASK_MULTIPLIER_DOWN,
    ASK_MULTIPLIER_UP,
    AVG_PRICE_MINS,
    BAR_MS,
    BID_MULTIPLIER_DOWN,
    BID_MULTIPLIER_UP,
    INTERVALS_MS,
    MAX_NOTIONAL,
    MAX_PRICE,
    MIN_NOTIONAL,
    BinanceError,
    binance_symbol,
    fmt,
    market_max_qty,
    max_qty,
)
from ops.sandbox.binance.streams import BinanceStreams
from ops.sandbox.faults import FaultInjector

ROOT = Path(__file__).resolve().parents[3]
SANDBOX_MARKETS: dict[str, Path] = {market: ROOT / path for market, path in BUNDLED_CANDLES.items()}
"""The replayed markets: the bundled 2024-10 1m klines of BTC, ETH, SOL and XRP (same timestamps)."""
HISTORY_BARS = 21_600
"""Where the replay starts by default: 15 days of 1m bars in, everything before is history (more
than the default ml_momentum's training window of 20,031 bars)."""
PATH_OFFSETS_MS = (0, 20_000, 40_000, 59_999)
"""When, within a bar, the open / low / high / close snapshots happen."""
PUBLIC_TRADES_KEPT = 5000


@functools.cache
def _bundled(path: Path) -> CandleTable:
    """A candle file read once per process (read-only arrays, shared by every sandbox)."""
    return load_table(path)


class BookModel(BaseModel):
    """The modelled outside book around a reference price; see the module docstring."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    spread_ticks: int = Field(default=2, ge=1)
    step_ticks: int = Field(default=100, ge=1, description="distance between levels")
    levels: int = Field(default=20, ge=1, le=5000)
    level_qty: Decimal | None = Field(default=None, gt=0, description="fixed size of every level")
    volume_fraction: float = Field(default=0.02, gt=0, le=1, description="level size = this x bar volume")
    min_level_qty: Decimal = Field(default=Decimal("0.001"), gt=0)


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
class SandboxMarket:
    """One replayed symbol: its instrument and bars, its public tape, the depth last published."""

    instrument: Instrument
    table: CandleTable
    trades: deque[_Trade] = field(default_factory=lambda: deque(maxlen=PUBLIC_TRADES_KEPT))
    trade_seq: int = 0
    update_id: int = 0
    published: tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]] = ({}, {})

    @property
    def market(self) -> str:
        return self.instrument.market_id

    @property
    def symbol(self) -> str:
        """Binance's id of the pair (``BTCUSDT``)."""
        return binance_symbol(self.instrument.symbol)

    @property
    def base(self) -> str:
        return self.instrument.symbol.split("/")[0]

    @property
    def quote(self) -> str:
        return self.instrument.symbol.split("/")[1]

    @property
    def max_qty(self) -> Decimal:
        return max_qty(self.instrument.lot_size)

    @property
    def market_max_qty(self) -> Decimal:
        return market_max_qty(self.instrument.lot_size)

    def bar(self, i: int) -> tuple[int, Decimal, Decimal, Decimal, Decimal, Decimal]:
        t = self.table
        return (
            int(t.timestamp[i]),
            to_decimal(float(t.open[i])),
            to_decimal(float(t.high[i])),
            to_decimal(float(t.low[i])),
            to_decimal(float(t.close[i])),
            to_decimal(float(t.volume[i])),
        )


def _sandbox_markets(
    data: Path | CandleTable | Mapping[str, Path | CandleTable], instrument: Instrument | None
) -> list[SandboxMarket]:
    if isinstance(data, Mapping):
        if instrument is not None:
            raise ValueError("instrument goes with one data file; several markets take theirs by name")
        tables = {m: d if isinstance(d, CandleTable) else _bundled(Path(d)) for m, d in data.items()}
        markets = [SandboxMarket(binance_instrument(m), t) for m, t in tables.items()]
    else:
        table = data if isinstance(data, CandleTable) else _bundled(Path(data))
        markets = [SandboxMarket(instrument or BINANCE_BTCUSDT, table)]
    if not markets:
        raise ValueError("the sandbox needs at least one market")
    first = markets[0].table.timestamp
    for m in markets[1:]:
        if not np.array_equal(m.table.timestamp, first):
            raise ValueError(f"{m.market}: its bars' times differ from {markets[0].market}'s (one clock)")
    if len({m.symbol for m in markets}) != len(markets):
        raise ValueError("a symbol is replayed once")
    return markets


class BinanceExchange(BinanceStreams):
    """The venue's state and market: engine, accounts, replayed bars, the Binance view of orders.

    Every piece of state is created here, so the request, stream and ground-truth layers
    built on this class all see it. Per-symbol state is a ``SandboxMarket``; the first market
    is the default of the single-market helpers (``book()``, ``bar()``, ``instrument``).
    """

    def __init__(
        self,
        *,
        data: Path | CandleTable | Mapping[str, Path | CandleTable] = SANDBOX_MARKETS,
        start_bar: int | None = None,
        book: BookModel | None = None,
        fees: FeeModel | None = None,
        instrument: Instrument | None = None,
        weight_limit: int = 6000,
        weight_window_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        faults: FaultInjector | None = None,
    ) -> None:
        markets = _sandbox_markets(data, instrument)
        self.symbols: dict[str, SandboxMarket] = {m.symbol: m for m in markets}
        """The replayed markets by Binance symbol, in the order given."""
        self._by_market: dict[str, SandboxMarket] = {m.market: m for m in markets}
        self.primary = markets[0]
        n_bars = len(self.primary.table)
        start = min(HISTORY_BARS, n_bars - 1) if start_bar is None else start_bar
        if not 0 <= start < n_bars:
            raise ValueError(f"start_bar {start} outside the data (0..{n_bars - 1})")
        self.book_model = book if book is not None else BookModel()
        fees = fees if fees is not None else FeeModel(fee_asset=FeeAsset.RECEIVED)
        self.engine = MatchingEngine(fees, [m.instrument for m in markets], balances=True)
        self.weight_limit = weight_limit
        self.weight_window_s = weight_window_s
        self.clock = clock
        super().__init__(faults, [m.symbol for m in markets])  # faults, websockets, the change signal
        self.updates: list[OrderUpdate] = []
        """Every engine event, in order (the venue's own log)."""

        self._accounts: dict[str, Credentials] = {}
        self._by_name: dict[str, Credentials] = {}
        self._wire: dict[str, _Wire] = {}
        self._by_order_id: dict[int, str] = {}
        self._quote_filled: dict[str, Decimal] = {}
        self._expired: set[str] = set()
        self._rejections: dict[str, BinanceError] = {}
        self.order_rejections: list[tuple[str, int, str]] = []
        """Every new order refused, as (client id, code, message): what a client sent to be rejected."""
        self._fill_trade: dict[str, int] = {}
        self._cancel_ids: dict[str, str] = {}
        """Client id -> the ``newClientOrderId`` of the request that cancelled it (``c`` of its report)."""
        self._weights: dict[str, tuple[int, int]] = {}
        self._clock_task: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

        self._ts: list[int] = [int(x) for x in self.primary.table.timestamp.tolist()]
        self._bar = start
        self._now_ms = self._ts[start]
        self._tape_history(start)
        self._play_bar(start)

    # ------------------------------------------------------------------ markets

    @property
    def instrument(self) -> Instrument:
        """The first market's instrument (the single-market helpers' default)."""
        return self.primary.instrument

    @property
    def market(self) -> str:
        return self.primary.market

    @property
    def table(self) -> CandleTable:
        return self.primary.table

    def sandbox_market(self, market: str | None = None) -> SandboxMarket:
        """A replayed market by id (``binance:ETH/USDT``), the first one by default."""
        if market is None:
            return self.primary
        found = self._by_market.get(market)
        if found is None:
            raise KeyError(f"{market!r} is not replayed here (replayed: {', '.join(self._by_market)})")
        return found

    def _of_order(self, order: Order) -> SandboxMarket:
        return self._by_market[order.market]

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

    def bar(
        self, index: int | None = None, market: str | None = None
    ) -> tuple[int, Decimal, Decimal, Decimal, Decimal, Decimal]:
        """(open time, open, high, low, close, volume) of a bar, the current one by default."""
        return self.sandbox_market(market).bar(self._bar if index is None else index)

    def book(self, market: str | None = None) -> OrderBook:
        """The public book now: the last snapshot less what our orders took from it."""
        book = self.engine.book(self.sandbox_market(market).market)
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

    # ------------------------------------------------------------------ the market model

    def _level_qty(self, volume: Decimal, lot: Decimal) -> Decimal:
        model = self.book_model
        if model.level_qty is not None:
            return model.level_qty
        return max(model.min_level_qty, floor_to(volume * to_decimal(model.volume_fraction), lot))

    def model_book(self, ref: Decimal, volume: Decimal, ts_ms: int, market: str | None = None) -> OrderBook:
        """The outside book of ``market`` around ``ref``: spread, levels and sizes from ``book_model``."""
        inst = self.sandbox_market(market).instrument
        model, tick = self.book_model, inst.tick_size
        spread = model.spread_ticks * tick
        bid = max(tick, floor_to(ref - spread / 2, tick))
        ask = bid + spread
        step = model.step_ticks * tick
        size = self._level_qty(volume, inst.lot_size)
        bids = [BookLevel(price=bid - i * step, size=size) for i in range(model.levels) if bid - i * step > 0]
        asks = [BookLevel(price=ask + i * step, size=size) for i in range(model.levels)]
        return OrderBook(market=inst.market_id, ts_ms=ts_ms, bids=tuple(bids), asks=tuple(asks))

    def _path(self, m: SandboxMarket, i: int) -> list[tuple[int, Decimal, Decimal, bool]]:
        """Bar ``i`` of ``m`` as its four path points: (time, price, traded qty, buyer is maker)."""
        ts, o, h, lo, c, v = m.bar(i)
        lot = m.instrument.lot_size
        qty = max(lot, floor_to(v / 4, lot))
        prev = to_decimal(float(m.table.close[i - 1])) if i > 0 else o
        points = []
        for offset, ref in zip(PATH_OFFSETS_MS, (o, lo, h, c), strict=True):
            points.append((ts + offset, ref, qty, ref < prev))
            prev = ref
        return points

    def _tape_history(self, start: int) -> None:
        """The public tape of the bars before ``start`` (what ``/api/v3/trades`` shows at once)."""
        first = max(0, start - PUBLIC_TRADES_KEPT // len(PATH_OFFSETS_MS))
        for m in self.symbols.values():
            for i in range(first, start):
                for t, ref, qty, buyer_maker in self._path(m, i):
                    self._record_trade(m, ref, qty, buyer_maker=buyer_maker, ts_ms=t)

    def _play_bar(self, i: int) -> list[OrderUpdate]:
        """Every market's bar ``i``, path point by path point (all markets at +0 s, then +20 s...)."""
        events: list[OrderUpdate] = []
        paths = {m.symbol: self._path(m, i) for m in self.symbols.values()}
        ts = self._ts[i]
        for k in range(len(PATH_OFFSETS_MS)):
            for m in self.symbols.values():
                path = paths[m.symbol]
                t, ref, qty, buyer_maker = path[k]
                self._now_ms = max(self._now_ms, t)
                self._record_trade(m, ref, qty, buyer_maker=buyer_maker, ts_ms=t)
                volume = m.bar(i)[5]
                updates = self.engine.on_book(self.model_book(ref, volume, t, m.market), t)
                self._absorb(updates)
                events += updates
                self._publish_depth(m, t)
                seen = [p[1] for p in path[: k + 1]]
                self._broadcast_kline(
                    m.symbol,
                    ts,
                    path[0][1],
                    max(seen),
                    min(seen),
                    ref,
                    volume * (k + 1) / 4,
                    closed=k == len(PATH_OFFSETS_MS) - 1,
                    event_ms=t,
                )
                for interval in self.kline_intervals(m.symbol):
                    self._broadcast_interval_kline(
                        m, i, interval, seen, volume * (k + 1) / 4, t, last=k == len(PATH_OFFSETS_MS) - 1
                    )
        self._now_ms = ts + BAR_MS
        return events

    def _broadcast_interval_kline(
        self,
        m: SandboxMarket,
        i: int,
        interval: str,
        seen: list[Decimal],
        volume: Decimal,
        t: int,
        *,
        last: bool,
    ) -> None:
        """Bar ``i``'s update of the ``interval`` kline holding it: the interval's earlier 1m bars
        and bar ``i`` so far; closed (then equal to the REST kline) on the interval's last minute."""
        step = INTERVALS_MS[interval]
        ts = int(m.table.timestamp[i])
        open_ms = ts - ts % step
        first = int(np.searchsorted(m.table.timestamp, open_ms, "left"))
        earlier = slice(first, i)
        closed = last and (ts + BAR_MS) % step == 0
        table = m.table
        if closed:
            whole = slice(first, i + 1)
            high = to_decimal(float(table.high[whole].max()))
            low = to_decimal(float(table.low[whole].min()))
            total = to_decimal(round(float(table.volume[whole].sum()), 8))
        else:
            high = max([*seen, *(to_decimal(float(x)) for x in table.high[earlier])])
            low = min([*seen, *(to_decimal(float(x)) for x in table.low[earlier])])
            total = to_decimal(round(float(table.volume[earlier].sum()), 8)) + volume
        self._broadcast_kline(
            m.symbol,
            open_ms,
            to_decimal(float(table.open[first])),
            high,
            low,
            seen[-1],
            total,
            closed=closed,
            event_ms=t,
            interval=interval,
        )

    def _record_trade(
        self, m: SandboxMarket, price: Decimal, qty: Decimal, *, buyer_maker: bool, ts_ms: int
    ) -> int:
        m.trade_seq += 1
        trade = _Trade(m.trade_seq, price, qty, ts_ms, buyer_maker)
        m.trades.append(trade)
        if not self._conns:
            return trade.id
        lower = m.symbol.lower()
        payload = {
            "e": "trade",
            "E": ts_ms,
            "s": m.symbol,
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
            "s": m.symbol,
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
                    self._by_market[fill.market],
                    fill.price,
                    fill.qty,
                    buyer_maker=buyer_maker,
                    ts_ms=fill.ts_ms,
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
            type="MARKET" if order.type is OrderType.MARKET else "LIMIT",
            tif="GTC",
            symbol=self._of_order(order).symbol,
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

    # ------------------------------------------------------------ filters (price, band, lot size, notional)

    def avg_price(self, m: SandboxMarket) -> Decimal:
        """``/api/v3/avgPrice``: the volume-weighted close of the last ``AVG_PRICE_MINS`` bars (8 dp).

        Binance weights its last 5 minutes of trades; the replay has bars, so their closes stand in.
        PERCENT_PRICE_BY_SIDE and a market order's NOTIONAL are checked against it, as on Binance.
        """
        lo = max(0, self._bar - AVG_PRICE_MINS + 1)
        bars = [m.bar(i) for i in range(lo, self._bar + 1)]
        volume = sum((b[5] for b in bars), ZERO)
        value = sum((b[4] * b[5] for b in bars), ZERO) / volume if volume > 0 else bars[-1][4]
        return Decimal(fmt(value))

    def _check_filters(
        self, m: SandboxMarket, order_type: OrderType, side: Side, price: Decimal | None, qty: Decimal
    ) -> None:
        """Binance's symbol filters, each refused as -1013 "Filter failure: <FILTER>" (MARKET_LOT_SIZE on top
        of LOT_SIZE for a market order)."""
        inst = m.instrument
        min_price = inst.tick_size  # Binance's minPrice is the pair's tick
        if price is not None and (
            price < min_price or price > MAX_PRICE or (price - min_price) % inst.tick_size != 0
        ):
            raise BinanceError(-1013, "Filter failure: PRICE_FILTER")
        avg = self.avg_price(m)
        if price is not None:
            down, up = (
                (BID_MULTIPLIER_DOWN, BID_MULTIPLIER_UP)
                if side is Side.BUY
                else (ASK_MULTIPLIER_DOWN, ASK_MULTIPLIER_UP)
            )
            if not avg * down <= price <= avg * up:
                raise BinanceError(-1013, "Filter failure: PERCENT_PRICE_BY_SIDE")
        min_qty = inst.min_size or inst.lot_size
        if qty <= 0 or qty < min_qty or qty > m.max_qty or (qty - min_qty) % inst.lot_size != 0:
            raise BinanceError(-1013, "Filter failure: LOT_SIZE")
        if order_type is OrderType.MARKET and qty > m.market_max_qty:  # minQty and stepSize 0: LOT_SIZE's
            raise BinanceError(-1013, "Filter failure: MARKET_LOT_SIZE")
        notional = (price if price is not None else avg) * qty
        if notional < MIN_NOTIONAL or (order_type is OrderType.LIMIT and notional > MAX_NOTIONAL):
            raise BinanceError(-1013, "Filter failure: NOTIONAL")

    def _visible(
        self,
        account: str,
        client_id: str | None = None,
        order_id: int | None = None,
        market: SandboxMarket | None = None,
    ) -> Order | None:
        """An order of ``account`` (in ``market``) Binance would show (rejected orders are not stored)."""
        cid = client_id if client_id is not None else self._by_order_id.get(order_id or -1)
        if cid is None:
            return None
        order = self.engine.order(cid)
        if order is None or order.status is OrderStatus.REJECTED or self.engine.account_of(cid) != account:
            return None
        if market is not None and order.market != market.market:
            return None
        return order

    def _publish_depth(self, m: SandboxMarket, ts_ms: int) -> None:
        """Send the changes of a market's public book as one ``depthUpdate`` (one update id)."""
        book = self.book(m.market)
        bids = {lv.price: lv.size for lv in book.bids}
        asks = {lv.price: lv.size for lv in book.asks}
        old_bids, old_asks = m.published
        db = _diff(old_bids, bids)
        da = _diff(old_asks, asks)
        if not db and not da:
            return
        m.update_id += 1
        m.published = (bids, asks)
        if not self._conns:
            return
        lower = m.symbol.lower()
        diff = {
            "e": "depthUpdate",
            "E": ts_ms,
            "s": m.symbol,
            "U": m.update_id,
            "u": m.update_id,
            "b": [[fmt(p), fmt(q)] for p, q in db],
            "a": [[fmt(p), fmt(q)] for p, q in da],
        }
        for name in (f"{lower}@depth", f"{lower}@depth@100ms", f"{lower}@depth@1000ms"):
            self._broadcast(name, diff)
        for levels in (5, 10, 20):
            snap = self._depth_json(m, levels)
            for suffix in ("", "@100ms", "@1000ms"):
                self._broadcast(f"{lower}@depth{levels}{suffix}", snap)

    def _depth_json(self, m: SandboxMarket, limit: int) -> dict[str, Any]:
        book = self.book(m.market)
        return {
            "lastUpdateId": m.update_id,
            "bids": [[fmt(lv.price), fmt(lv.size)] for lv in book.bids[:limit]],
            "asks": [[fmt(lv.price), fmt(lv.size)] for lv in book.asks[:limit]],
        }


def _diff(old: Mapping[Decimal, Decimal], new: Mapping[Decimal, Decimal]) -> list[tuple[Decimal, Decimal]]:
    """Changed levels as Binance sends them: (price, new size), size 0 = level removed."""
    out = [(p, q) for p, q in new.items() if old.get(p) != q]
    out += [(p, ZERO) for p in old if p not in new]
    return sorted(out)
