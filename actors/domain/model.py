"""The domain model: one model per concept, shared by backtest, paper and live.

Prices and sizes that reach a venue or a ledger are ``Decimal`` (exact, tick- and
lot-aligned); analytics (candles, indicators, signal strength) are ``float``.
Times are integer milliseconds since the Unix epoch, UTC, so the core never reads a clock.
"""

from __future__ import annotations

import hashlib
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

ZERO = Decimal(0)
ONE = Decimal(1)
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000


class Frozen(BaseModel):
    """Immutable message: safe to share between actors and to hash. No float is NaN or infinite."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Mutable(BaseModel):
    """State record owned by exactly one core; validated on assignment. No float is NaN or infinite."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class MarketKind(StrEnum):
    SPOT = "spot"
    BINARY = "binary"


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    LIMIT = "limit"
    MARKET = "market"


class TimeInForce(StrEnum):
    GTC = "gtc"
    IOC = "ioc"
    POST_ONLY = "post_only"


class OrderStatus(StrEnum):
    """Lifecycle of an order; ``PENDING`` is a write-ahead intent not yet acknowledged."""

    PENDING = "pending"
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"

    @property
    def is_terminal(self) -> bool:
        return self in (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED)


class ExitStatus(StrEnum):
    """Position exit schema of the Polymarket bot design; only ever moves forward.

    ``entering`` precedes it: the entry order is working and nothing is held yet, or only part.
    """

    ENTERING = "entering"
    OPEN = "open"
    HALF_CLOSED = "half_closed"
    CLOSING = "closing"
    CLOSED = "closed"

    @property
    def rank(self) -> int:
        return _EXIT_RANK[self]


_EXIT_RANK = {
    ExitStatus.ENTERING: -1,
    ExitStatus.OPEN: 0,
    ExitStatus.HALF_CLOSED: 1,
    ExitStatus.CLOSING: 2,
    ExitStatus.CLOSED: 3,
}


class ExitReason(StrEnum):
    TARGET_ONE = "target_one"
    TARGET_TWO = "target_two"
    STOP = "stop"
    TIME_EXIT = "time_exit"
    TRAILING = "trailing"
    SIGNAL = "signal"
    SETTLEMENT = "settlement"
    MANUAL = "manual"
    UNFILLED = "unfilled"  # the entry ended with nothing bought: no trade, no P&L
    KILL_SWITCH = "kill_switch"  # closed by `raytrader kill-switch --flatten` (PositionCore.flatten)


class Liquidity(StrEnum):
    MAKER = "maker"
    TAKER = "taker"


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    """Largest multiple of ``step`` not above ``value``."""
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_FLOOR) * step


def ceil_to(value: Decimal, step: Decimal) -> Decimal:
    """Smallest multiple of ``step`` not below ``value``."""
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_CEILING) * step


def to_decimal(value: float | int | str | Decimal) -> Decimal:
    """Exact decimal of a float's shortest repr (so 0.1 becomes Decimal('0.1'), not 0.1000…055)."""
    if isinstance(value, Decimal):
        return value
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


class Instrument(Frozen):
    """A tradable market: a spot pair or one outcome token of a binary market."""

    venue: str
    symbol: str = Field(description="ccxt symbol (BTC/USDT) or Polymarket token id")
    kind: MarketKind = MarketKind.SPOT
    tick_size: Decimal = Field(gt=0)
    lot_size: Decimal = Field(gt=0)
    min_size: Decimal = Field(default=ZERO, ge=0)
    created_ms: int | None = None
    end_ms: int | None = None
    correlation_group: str = Field(default="", description="positions in one group count together")
    condition_id: str | None = None
    outcome: str | None = Field(default=None, description="binary markets: Up or Down")
    start_ms: int | None = Field(default=None, description="binary markets: the observed window's start")
    strike: float | None = Field(default=None, description="binary markets: price to beat")

    @property
    def market_id(self) -> str:
        return f"{self.venue}:{self.symbol}"

    def round_price(self, price: Decimal, side: Side) -> Decimal:
        """Tick-align a limit price on the passive side: buys round down, sells round up."""
        return floor_to(price, self.tick_size) if side is Side.BUY else ceil_to(price, self.tick_size)

    def round_qty(self, qty: Decimal) -> Decimal:
        """Lot-align a size, always down: never trade more than was sized."""
        return floor_to(qty, self.lot_size)

    def age_ms(self, now_ms: int) -> int | None:
        return None if self.created_ms is None else now_ms - self.created_ms


class Candle(Frozen):
    """One OHLCV bar; ``ts_ms`` is the bar's open time, as Binance and ccxt report it."""

    market: str
    ts_ms: int
    interval_ms: int = MINUTE_MS
    open: float = Field(gt=0)
    high: float = Field(gt=0)
    low: float = Field(gt=0)
    close: float = Field(gt=0)
    volume: float = Field(ge=0)

    @property
    def close_ms(self) -> int:
        return self.ts_ms + self.interval_ms


class BookLevel(Frozen):
    price: Decimal = Field(gt=0)
    size: Decimal = Field(gt=0)


class OrderBook(Frozen):
    """Snapshot of one market's book: bids best-first (descending), asks best-first."""

    market: str
    ts_ms: int
    bids: tuple[BookLevel, ...] = ()
    asks: tuple[BookLevel, ...] = ()

    @model_validator(mode="after")
    def _sorted(self) -> OrderBook:
        bids = tuple(sorted(self.bids, key=lambda lv: lv.price, reverse=True))
        asks = tuple(sorted(self.asks, key=lambda lv: lv.price))
        if bids != self.bids or asks != self.asks:
            object.__setattr__(self, "bids", bids)
            object.__setattr__(self, "asks", asks)
        return self

    @property
    def best_bid(self) -> Decimal | None:
        return self.bids[0].price if self.bids else None

    @property
    def best_ask(self) -> Decimal | None:
        return self.asks[0].price if self.asks else None

    @property
    def mid(self) -> Decimal | None:
        if not self.bids or not self.asks:
            return None
        return (self.bids[0].price + self.asks[0].price) / 2

    @property
    def spread(self) -> Decimal | None:
        if not self.bids or not self.asks:
            return None
        return self.asks[0].price - self.bids[0].price

    @property
    def spread_fraction(self) -> Decimal | None:
        """Spread over mid; ``None`` for a one-sided or empty book."""
        mid, spread = self.mid, self.spread
        if mid is None or spread is None or mid == 0:
            return None
        return spread / mid

    def depth(self, levels: int, side: Side | None = None) -> Decimal:
        """Combined size of the top ``levels`` levels of one side, or of both when ``side`` is None."""
        bid = sum((lv.size for lv in self.bids[:levels]), ZERO)
        ask = sum((lv.size for lv in self.asks[:levels]), ZERO)
        if side is Side.BUY:
            return bid
        if side is Side.SELL:
            return ask
        return bid + ask


class Signal(Frozen):
    """A strategy's opinion; the portfolio decides whether it becomes an order."""

    strategy: str
    market: str
    side: Side
    strength: float = Field(ge=0.0, le=1.0)
    ts_ms: int
    price: float = Field(gt=0, description="reference price when the signal fired")
    reason: str = ""

    @property
    def is_entry(self) -> bool:
        """Strategies trade long only: a buy opens, a sell closes."""
        return self.side is Side.BUY


def deterministic_id(prefix: str, *parts: object, length: int = 24) -> str:
    """Stable id from its inputs, so a replayed intent always yields the same id.

    Fits Binance's newClientOrderId (<= 36 chars of ``[A-Za-z0-9_-]``).
    """
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:length]
    return f"{prefix}-{digest}"


class Order(Mutable):
    """One order, from write-ahead intent to terminal status."""

    client_id: str
    market: str
    side: Side
    type: OrderType = OrderType.LIMIT
    tif: TimeInForce = TimeInForce.GTC
    price: Decimal | None = Field(default=None, gt=0)
    qty: Decimal = Field(gt=0)
    filled_qty: Decimal = Field(default=ZERO, ge=0)
    status: OrderStatus = OrderStatus.PENDING
    venue_order_id: str | None = None
    position_id: str | None = None
    strategy: str = ""
    purpose: str = Field(default="entry", description="entry or an ExitReason value")
    created_ms: int = 0
    updated_ms: int = 0

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled_qty

    @property
    def is_open(self) -> bool:
        return not self.status.is_terminal


class Fill(Frozen):
    """One execution; ``fill_id`` is the venue's trade id and makes fills idempotent.

    ``qty`` is what the order executed (the venue's ``executedQty`` counts it). The commission
    is ``fee``, valued in the quote asset (every ledger sums it), charged in ``fee_asset``;
    ``actors.core.fees`` holds the rule. A buy charged in the base asset it bought (Binance's
    default) leaves the account ``credited_qty = qty - fee_base_qty``, and its ``fee`` is
    ``fee_base_qty * price`` exactly, so the quote paid, ``price * qty``, is
    ``price * credited_qty + fee`` (``cash_flow``).
    """

    fill_id: str
    client_id: str
    market: str
    side: Side
    price: Decimal = Field(gt=0)
    qty: Decimal = Field(gt=0)
    fee: Decimal = ZERO
    liquidity: Liquidity = Liquidity.TAKER
    ts_ms: int
    fee_asset: str | None = None
    """The asset the venue took the commission in (``USDT``, ``BTC``, ``BNB``); None: the quote asset
    (paper fills, and records written before fills carried it)."""
    fee_base_qty: Decimal = Field(default=ZERO, ge=0)
    """The part of a buy's ``qty`` the venue kept as its commission (charged in the base asset)."""

    @model_validator(mode="after")
    def _base_fee_within_buy(self) -> Fill:
        if self.fee_base_qty > 0 and (self.side is not Side.BUY or self.fee_base_qty >= self.qty):
            raise ValueError(
                "a base-asset commission is taken from a buy's quantity, and less than all of it"
            )
        return self

    @property
    def notional(self) -> Decimal:
        return self.price * self.qty

    @property
    def credited_qty(self) -> Decimal:
        """The base quantity the account received (buy) or gave (sell): ``qty`` less a base commission."""
        return self.qty - self.fee_base_qty

    @property
    def cash_flow(self) -> Decimal:
        """Signed change of the quote cash, a commission in another asset valued in: a buy pays
        ``price * credited_qty + fee`` (= ``price * qty`` when the fee was taken in base), a sell
        receives ``price * qty - fee``."""
        if self.side is Side.BUY:
            return -(self.price * self.credited_qty + self.fee)
        return self.notional - self.fee


class Position(Mutable):
    """A long position and its exit plan (the Polymarket bot design's schema)."""

    position_id: str
    strategy: str
    market: str
    entry_price: Decimal = Field(ge=0, description="average entry fill price; 0 until the first fill")
    entry_qty: Decimal = Field(
        ge=0, description="quantity the entry fills credited so far (bought, less a commission taken in base)"
    )
    entry_ms: int
    stop_price: Decimal
    target_one_price: Decimal
    target_two_price: Decimal
    status: ExitStatus = ExitStatus.OPEN
    target_one_filled_ms: int | None = None
    target_two_filled_ms: int | None = None
    signal_strength: float = Field(default=1.0, ge=0.0, le=1.0)
    mark_price: Decimal | None = None
    sold_qty: Decimal = ZERO
    sale_proceeds: Decimal = ZERO
    fees: Decimal = ZERO
    exit_reason: ExitReason | None = None
    closed_ms: int | None = None
    settled_qty: Decimal = Field(default=ZERO, ge=0, description="shares held when the market resolved")
    settled_value: Decimal = Field(
        default=ZERO, ge=0, description="what they pay (shares x payout): to redeem on chain when live"
    )

    @property
    def open_qty(self) -> Decimal:
        return self.entry_qty - self.sold_qty

    @property
    def cost(self) -> Decimal:
        return self.entry_price * self.entry_qty

    @property
    def mark_value(self) -> Decimal:
        """Mark-to-market value of what is still held."""
        price = self.mark_price if self.mark_price is not None else self.entry_price
        return price * self.open_qty

    @property
    def realized_pnl(self) -> Decimal:
        """Proceeds of what was sold, less its cost, less every fee paid (entry and exits)."""
        return self.sale_proceeds - self.entry_price * self.sold_qty - self.fees

    @property
    def unrealized_pnl(self) -> Decimal:
        return self.mark_value - self.entry_price * self.open_qty


# --------------------------------------------------------------------------- commands
# What a core asks its shell to do. Cores never do I/O; shells carry these out.


class PlaceOrder(Frozen):
    order: Order


class CancelOrder(Frozen):
    client_id: str
    market: str
    reason: str = ""


class PositionClosed(Frozen):
    position_id: str
    strategy: str
    market: str
    realized_pnl: Decimal
    fees: Decimal
    exit_reason: ExitReason
    ts_ms: int


Command = PlaceOrder | CancelOrder | PositionClosed


class Settlement(Frozen):
    """A binary market resolved: each share of ``market`` pays ``payout`` (1 or 0)."""

    market: str
    payout: Decimal = Field(ge=0, le=1)
    ts_ms: int


MarketEvent = Candle | OrderBook | Instrument | Settlement


class RoundTrip(Frozen):
    """One closed position, entry to last exit: the unit of the trade log and of reports."""

    position_id: str
    strategy: str
    market: str
    side: Side = Side.BUY
    qty: Decimal
    entry_time_ms: int
    exit_time_ms: int
    entry_price: Decimal
    exit_price: Decimal = Field(description="quantity-weighted average of the exit fills")
    exit_reason: ExitReason
    fees: Decimal
    pnl: Decimal = Field(description="realised, after every fee")
    data: str = Field(
        default="replay",
        pattern="^(replay|live)$",
        description="where its prices came from: only live-data paper trades count towards going live",
    )

    @property
    def holding_ms(self) -> int:
        return self.exit_time_ms - self.entry_time_ms
