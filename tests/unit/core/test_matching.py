"""The matching engine and the fee model: priority, partial fills, candle rules, fees, funds, state."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.core.fees import FeeModel
from actors.core.matching import Balance, MatchingEngine
from actors.domain.messages import OrderUpdate, Reason, UpdateKind
from actors.domain.model import (
    BookLevel,
    Candle,
    Instrument,
    Liquidity,
    MarketKind,
    Order,
    OrderBook,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from config.models import CostConfig, PolymarketFees, VenueFees

D = Decimal
BTC = Instrument(
    venue="binance", symbol="BTC/USDT", tick_size=D("0.01"), lot_size=D("0.00001"), min_size=D("0.0001")
)
UP = Instrument(
    venue="polymarket",
    symbol="72690798903588392269001731007662425920353908498880709179939493847828858696064",
    kind=MarketKind.BINARY,
    tick_size=D("0.01"),
    lot_size=D("0.01"),
    min_size=D("5"),
)
M = BTC.market_id


def order(
    cid: str,
    side: Side = Side.BUY,
    price: str | None = "100",
    qty: str = "1",
    *,
    market: str = M,
    type_: OrderType = OrderType.LIMIT,
    tif: TimeInForce = TimeInForce.GTC,
) -> Order:
    return Order(
        client_id=cid,
        market=market,
        side=side,
        type=type_,
        tif=tif,
        price=None if price is None else D(price),
        qty=D(qty),
    )


def book(bids: list[tuple[str, str]], asks: list[tuple[str, str]], market: str = M, ts: int = 0) -> OrderBook:
    return OrderBook(
        market=market,
        ts_ms=ts,
        bids=tuple(BookLevel(price=D(p), size=D(s)) for p, s in bids),
        asks=tuple(BookLevel(price=D(p), size=D(s)) for p, s in asks),
    )


def candle(o: float, h: float, low: float, c: float, ts: int = 60_000, volume: float = 10.0) -> Candle:
    return Candle(market=M, ts_ms=ts, open=o, high=h, low=low, close=c, volume=volume)


def kinds(events: list[OrderUpdate]) -> list[UpdateKind]:
    return [e.kind for e in events]


def fills_of(events: list[OrderUpdate]) -> list[tuple[str, Decimal, Decimal, Liquidity]]:
    return [(e.order.client_id, e.fill.price, e.fill.qty, e.fill.liquidity) for e in events if e.fill]


@pytest.fixture
def engine() -> MatchingEngine:
    return MatchingEngine(FeeModel(), [BTC, UP])


# --------------------------------------------------------------------------- fees


def test_binance_fees_taker_and_maker_exact() -> None:
    fees = FeeModel()  # maker 0.001, taker 0.002
    price, qty = D("61234.56"), D("0.12345")
    assert fees.fee("binance", BTC, Side.BUY, price, qty, Liquidity.TAKER) == D("15.11881286")
    assert fees.fee("binance", BTC, Side.SELL, price, qty, Liquidity.MAKER) == D("7.55940643")
    assert fees.fee("binance", BTC, Side.BUY, D("60000"), D("0.5"), Liquidity.TAKER) == D("60")


def test_polymarket_fee_crypto_schedule_exact() -> None:
    fees = FeeModel()  # rate 0.07, exponent 1, taker only
    assert fees.fee("polymarket", UP, Side.BUY, D("0.65"), D("10"), Liquidity.TAKER) == D("0.15925")
    assert fees.fee("polymarket", UP, Side.SELL, D("0.50"), D("100"), Liquidity.TAKER) == D("1.75")
    # 7 * 0.07 * 0.33 * 0.67 = 0.108339, truncated to 1e-5 USDC
    assert fees.fee("polymarket", UP, Side.BUY, D("0.33"), D("7"), Liquidity.TAKER) == D("0.10833")
    assert fees.fee("polymarket", UP, Side.BUY, D("0.50"), D("100"), Liquidity.MAKER) == 0


def test_polymarket_fee_exponent_two_and_maker_when_not_taker_only() -> None:
    costs = CostConfig(polymarket=PolymarketFees(rate=0.25, exponent=2, taker_only=False))
    fees = FeeModel(costs)
    # 100 * 0.25 * (0.5 * 0.5) ** 2 = 1.5625
    assert fees.fee("polymarket", UP, Side.BUY, D("0.5"), D("100"), Liquidity.MAKER) == D("1.5625")


def test_fee_unknown_venue_raises() -> None:
    with pytest.raises(ValueError, match="no fee schedule"):
        FeeModel().fee("kraken", BTC, Side.BUY, D("1"), D("1"), Liquidity.TAKER)


def test_max_fee_rounds_up_fee_rounds_down() -> None:
    fees = FeeModel()
    assert fees.fee("polymarket", UP, Side.BUY, D("0.33"), D("7"), Liquidity.TAKER) == D("0.10833")
    assert fees.max_fee("polymarket", D("0.33"), D("7")) == D("0.10834")


def test_max_fee_of_an_absurd_quantity_rounds_up_without_error() -> None:
    """Fuzzing the CLOB sandbox: 1e25 shares overflowed the default 28-digit context on
    quantize (InvalidOperation), and the sandbox answered 500 instead of refusing the order."""
    fee = FeeModel().max_fee("polymarket", D("0.5"), D("1E+25"))
    assert fee == D("1.75E+23")  # 1e25 * 0.07 * 0.5 * 0.5, exact


def test_slipped_price_adverse_and_tick_aligned() -> None:
    fees = FeeModel(CostConfig(slippage_pct=0.001))
    assert fees.slipped_price(Side.BUY, D("100")) == D("100.100")
    assert fees.slipped_price(Side.SELL, D("100")) == D("99.900")
    assert fees.slipped_price(Side.BUY, D("100.005"), BTC) == D("100.11")  # 100.105005 -> up
    assert fees.slipped_price(Side.SELL, D("100.005"), BTC) == D("99.90")  # 99.904995 -> down
    assert fees.slipped_price(Side.BUY, D("0.99"), UP) == D("0.99")  # a binary token stays below 1


# --------------------------------------------------------------------------- validation, idempotency


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (order("t", price="100.005"), Reason.TICK_SIZE),
        (order("l", qty="0.000015"), Reason.LOT_SIZE),
        (order("m", qty="0.00005"), Reason.MIN_SIZE),
        (order("u", market="binance:ETH/USDT"), Reason.UNKNOWN_MARKET),
        (order("p", price=None), Reason.INVALID_PRICE),
        (order("b", price="1.00", qty="5", market=UP.market_id), Reason.INVALID_PRICE),
        (order("z").model_copy(update={"qty": D(0)}), Reason.INVALID_QTY),
        (order("k", price=None, type_=OrderType.MARKET, tif=TimeInForce.POST_ONLY), Reason.INVALID_ORDER),
    ],
)
def test_invalid_order_rejected_with_reason(engine: MatchingEngine, bad: Order, reason: Reason) -> None:
    events = engine.submit(bad, 1)
    assert kinds(events) == [UpdateKind.REJECTED]
    assert events[0].reason is reason
    assert events[0].order.status is OrderStatus.REJECTED
    stored = engine.order(bad.client_id)
    assert stored is not None
    assert stored.status is OrderStatus.REJECTED
    assert engine.open_orders() == []


def test_duplicate_client_id_returns_existing_order_and_creates_none(engine: MatchingEngine) -> None:
    first = engine.submit(order("a", price="100"), 1)
    assert kinds(first) == [UpdateKind.ACCEPTED]
    again = engine.submit(order("a", price="105", qty="3"), 2)
    assert kinds(again) == [UpdateKind.UNCHANGED]
    assert again[0].reason is Reason.DUPLICATE_CLIENT_ID
    assert again[0].order.price == D("100")
    assert again[0].order.qty == D("1")
    assert len(engine.orders()) == 1
    assert len(engine.open_orders()) == 1


def test_duplicate_of_rejected_order_stays_rejected(engine: MatchingEngine) -> None:
    engine.submit(order("a", price="100.001"), 1)
    again = engine.submit(order("a", price="100"), 2)
    assert kinds(again) == [UpdateKind.UNCHANGED]
    assert again[0].order.status is OrderStatus.REJECTED
    assert len(engine.orders()) == 1


def test_submit_does_not_mutate_callers_order(engine: MatchingEngine) -> None:
    mine = order("a", price="101")
    engine.on_book(book([], [("100", "5")]), 1)
    engine.submit(mine, 2)
    assert mine.status is OrderStatus.PENDING
    assert mine.filled_qty == 0


# --------------------------------------------------------------------------- book mode


def test_price_time_priority_better_price_then_earlier_order_fills_first(engine: MatchingEngine) -> None:
    engine.on_book(book([("98", "1")], [("105", "1")]), 0)  # a book is known: orders rest at once
    engine.submit(order("a", price="100"), 1)
    engine.submit(order("b", price="100"), 2)
    engine.submit(order("c", price="101"), 3)
    events = engine.on_book(book([("98", "1")], [("99", "1.5")]), 4)
    assert fills_of(events) == [
        ("c", D("101"), D("1"), Liquidity.MAKER),
        ("a", D("100"), D("0.5"), Liquidity.MAKER),
    ]
    b = engine.order("b")
    assert b is not None
    assert b.filled_qty == 0
    assert b.status is OrderStatus.OPEN
    a = engine.order("a")
    assert a is not None
    assert a.status is OrderStatus.PARTIALLY_FILLED


def test_resting_sells_fill_when_bid_reaches_price_in_priority(engine: MatchingEngine) -> None:
    engine.on_book(book([("98", "1")], [("105", "1")]), 0)
    engine.submit(order("s1", Side.SELL, price="102"), 1)
    engine.submit(order("s2", Side.SELL, price="101"), 2)
    events = engine.on_book(book([("102", "0.4"), ("101", "2")], [("103", "1")]), 3)
    # s2 (best price) meets the best bids first: one fill per crossing level, at its own price
    assert fills_of(events) == [
        ("s2", D("101"), D("0.4"), Liquidity.MAKER),
        ("s2", D("101"), D("0.6"), Liquidity.MAKER),
    ]
    s1 = engine.order("s1")
    assert s1 is not None
    assert s1.filled_qty == 0


def test_book_not_crossing_leaves_resting_orders_unfilled(engine: MatchingEngine) -> None:
    engine.submit(order("a", price="100"), 1)
    assert engine.on_book(book([("99", "1")], [("100.01", "5")]), 2) == []


def test_thin_book_market_buy_partially_fills_and_cancels_remainder(engine: MatchingEngine) -> None:
    engine.on_book(book([("99", "1")], [("100", "0.3"), ("101", "0.2")]), 1)
    events = engine.submit(order("m", price=None, type_=OrderType.MARKET), 2)
    assert kinds(events) == [UpdateKind.ACCEPTED, UpdateKind.FILL, UpdateKind.FILL, UpdateKind.CANCELLED]
    assert fills_of(events) == [
        ("m", D("100"), D("0.3"), Liquidity.TAKER),
        ("m", D("101"), D("0.2"), Liquidity.TAKER),
    ]
    assert events[-1].reason is Reason.UNFILLED_REMAINDER
    assert events[-1].order.filled_qty == D("0.5")
    assert events[-1].order.status is OrderStatus.CANCELLED
    remaining = engine.book(M)
    assert remaining is not None
    assert remaining.asks == ()


def test_ioc_limit_remainder_cancelled(engine: MatchingEngine) -> None:
    engine.on_book(book([], [("100", "0.4"), ("102", "5")]), 1)
    events = engine.submit(order("i", price="101", tif=TimeInForce.IOC), 2)
    assert fills_of(events) == [("i", D("100"), D("0.4"), Liquidity.TAKER)]
    assert events[-1].kind is UpdateKind.CANCELLED
    assert events[-1].reason is Reason.UNFILLED_REMAINDER
    assert engine.open_orders() == []


def test_gtc_limit_remainder_rests_at_its_price(engine: MatchingEngine) -> None:
    engine.on_book(book([], [("100", "0.4"), ("102", "5")]), 1)
    events = engine.submit(order("g", price="101"), 2)
    assert fills_of(events) == [("g", D("100"), D("0.4"), Liquidity.TAKER)]
    (resting,) = engine.open_orders()
    assert resting.client_id == "g"
    assert resting.remaining == D("0.6")
    assert resting.status is OrderStatus.PARTIALLY_FILLED
    later = engine.on_book(book([], [("101", "1")]), 3)
    assert fills_of(later) == [("g", D("101"), D("0.6"), Liquidity.MAKER)]


def test_post_only_that_would_cross_rejected(engine: MatchingEngine) -> None:
    engine.on_book(book([], [("100", "1")]), 1)
    events = engine.submit(order("p", price="100", tif=TimeInForce.POST_ONLY), 2)
    assert kinds(events) == [UpdateKind.REJECTED]
    assert events[0].reason is Reason.POST_ONLY_WOULD_TAKE
    ok = engine.submit(order("q", price="99.99", tif=TimeInForce.POST_ONLY), 3)
    assert kinds(ok) == [UpdateKind.ACCEPTED]


def test_market_order_before_any_book_waits_and_takes_next_snapshot(engine: MatchingEngine) -> None:
    events = engine.submit(order("m", price=None, type_=OrderType.MARKET), 1)
    assert kinds(events) == [UpdateKind.ACCEPTED]
    later = engine.on_book(book([], [("100", "2")]), 2)
    assert fills_of(later) == [("m", D("100"), D("1"), Liquidity.TAKER)]


# --------------------------------------------------------------------------- candle mode


def test_candle_low_equal_to_buy_price_does_not_fill(engine: MatchingEngine) -> None:
    engine.submit(order("a", price="100"), 0)
    assert engine.on_candle(candle(101, 102, 100, 101), 60_000) == []


def test_candle_trading_through_buy_price_fills_at_limit_as_maker(engine: MatchingEngine) -> None:
    engine.submit(order("a", price="100"), 0)
    events = engine.on_candle(candle(101, 102, 99.99, 101), 60_000)
    assert fills_of(events) == [("a", D("100"), D("1"), Liquidity.MAKER)]
    assert events[0].fill is not None
    assert events[0].fill.fee == D("0.1")


def test_candle_high_equal_to_sell_price_does_not_fill(engine: MatchingEngine) -> None:
    engine.submit(order("s", Side.SELL, price="105"), 0)
    assert engine.on_candle(candle(101, 105, 100, 101), 60_000) == []
    events = engine.on_candle(candle(101, 105.01, 100, 101, ts=120_000), 120_000)
    assert fills_of(events) == [("s", D("105"), D("1"), Liquidity.MAKER)]


def test_candle_market_order_fills_at_next_open_with_slippage(engine: MatchingEngine) -> None:
    engine.submit(order("m", price=None, type_=OrderType.MARKET), 0)
    events = engine.on_candle(candle(100, 110, 90, 105), 60_000)
    assert fills_of(events) == [("m", D("100.10"), D("1"), Liquidity.TAKER)]  # slippage 0.001
    assert events[0].fill is not None
    assert events[0].fill.fee == D("0.2002")


def test_candle_marketable_limit_fills_at_slipped_open_as_taker(engine: MatchingEngine) -> None:
    engine.submit(order("a", price="105"), 0)
    events = engine.on_candle(candle(100, 110, 90, 105), 60_000)
    assert fills_of(events) == [("a", D("100.10"), D("1"), Liquidity.TAKER)]


def test_candle_opened_before_order_does_not_fill(engine: MatchingEngine) -> None:
    engine.submit(order("m", price=None, type_=OrderType.MARKET), 30_000)
    assert engine.on_candle(candle(100, 110, 90, 105, ts=0), 60_000) == []  # no look-ahead
    assert fills_of(engine.on_candle(candle(100, 110, 90, 105, ts=60_000), 120_000))


def test_candle_ioc_not_marketable_at_open_cancelled(engine: MatchingEngine) -> None:
    engine.submit(order("i", price="95", tif=TimeInForce.IOC), 0)
    events = engine.on_candle(candle(100, 110, 90, 105), 60_000)
    assert kinds(events) == [UpdateKind.CANCELLED]
    assert events[0].reason is Reason.UNFILLED_REMAINDER


def test_candle_post_only_marketable_at_open_cancelled(engine: MatchingEngine) -> None:
    engine.submit(order("p", price="101", tif=TimeInForce.POST_ONLY), 0)
    events = engine.on_candle(candle(100, 110, 90, 105), 60_000)
    assert kinds(events) == [UpdateKind.CANCELLED]
    assert events[0].reason is Reason.POST_ONLY_WOULD_TAKE


def test_intrabar_buys_fill_before_sells_low_before_high(engine: MatchingEngine) -> None:
    engine.submit(order("s", Side.SELL, price="104"), 0)
    engine.submit(order("b1", price="96"), 0)
    engine.submit(order("b2", price="98"), 0)
    events = engine.on_candle(candle(100, 105, 95, 100), 60_000)
    assert [f[0] for f in fills_of(events)] == ["b2", "b1", "s"]


def test_candle_participation_cap_limits_fills(engine: MatchingEngine) -> None:
    capped = MatchingEngine(FeeModel(), [BTC], participation=0.1)
    capped.submit(order("a", price="100", qty="2"), 0)
    capped.submit(order("b", price="100", qty="2"), 0)
    events = capped.on_candle(candle(101, 102, 99, 101, volume=25.0), 60_000)
    assert fills_of(events) == [
        ("a", D("100"), D("2"), Liquidity.MAKER),
        ("b", D("100"), D("0.5"), Liquidity.MAKER),
    ]


def test_on_candle_without_orders_is_cheap(engine: MatchingEngine) -> None:
    bar = candle(100, 101, 99, 100)
    n = 20_000
    started = time.perf_counter()
    for _ in range(n):
        engine.on_candle(bar, 60_000)
    assert (time.perf_counter() - started) / n < 20e-6  # ~0.5 us in practice; loose for slow CI


# --------------------------------------------------------------------------- cancel


def test_cancel_open_order_cancels_and_second_cancel_is_noop(engine: MatchingEngine) -> None:
    engine.submit(order("a"), 1)
    events = engine.cancel("a", 2)
    assert kinds(events) == [UpdateKind.CANCELLED]
    assert events[0].order.status is OrderStatus.CANCELLED
    again = engine.cancel("a", 3)
    assert kinds(again) == [UpdateKind.UNCHANGED]
    assert again[0].reason is Reason.NOT_OPEN


def test_cancel_filled_order_is_noop_with_filled_status(engine: MatchingEngine) -> None:
    engine.on_book(book([], [("100", "5")]), 1)
    engine.submit(order("a", price="100"), 2)
    events = engine.cancel("a", 3)
    assert kinds(events) == [UpdateKind.UNCHANGED]
    assert events[0].order.status is OrderStatus.FILLED
    assert events[0].order.filled_qty == D("1")
    stored = engine.order("a")
    assert stored is not None
    assert stored.status is OrderStatus.FILLED


def test_cancel_unknown_order_returns_nothing(engine: MatchingEngine) -> None:
    assert engine.cancel("nope", 1) == []


def test_no_fill_after_cancel(engine: MatchingEngine) -> None:
    engine.submit(order("a", price="100"), 0)
    engine.cancel("a", 1)
    assert engine.on_candle(candle(100, 101, 50, 100), 60_000) == []
    assert engine.on_book(book([], [("1", "100")]), 60_001) == []
    assert engine.fills() == []


def test_cancel_all_by_market(engine: MatchingEngine) -> None:
    engine.submit(order("a"), 1)
    engine.submit(order("b", price="0.50", qty="10", market=UP.market_id), 2)
    events = engine.cancel_all(M)
    assert [e.order.client_id for e in events] == ["a"]
    assert [o.client_id for o in engine.open_orders()] == ["b"]


# --------------------------------------------------------------------------- balances


def funded(quote: str = "1000", base: str = "0") -> MatchingEngine:
    e = MatchingEngine(FeeModel(), [BTC, UP], balances=True)
    e.deposit("alice", "USDT", D(quote))
    if D(base) > 0:
        e.deposit("alice", "BTC", D(base))
    return e


def test_refused_sell_without_holdings_leaves_balances_unchanged() -> None:
    """Fuzzing the CLOB sandbox: a sell refused for want of the token created a zero balance of
    it, so a refused order still changed the account's books."""
    e = funded("100")
    before = e.balances("alice")
    events = e.submit(order("s", Side.SELL, price="100"), 1, account="alice")
    assert [x.reason for x in events] == [Reason.INSUFFICIENT_FUNDS]
    assert e.balances("alice") == before


def test_buy_without_enough_quote_rejected_insufficient_funds() -> None:
    e = funded("100")
    events = e.submit(order("a", price="100"), 1, account="alice")  # needs 100 + 0.2 max taker fee
    assert kinds(events) == [UpdateKind.REJECTED]
    assert events[0].reason is Reason.INSUFFICIENT_FUNDS
    assert Reason.INSUFFICIENT_FUNDS.value == "insufficient funds"
    assert e.balance("alice", "USDT") == Balance(free=D("100"), locked=D("0"))


def test_sell_without_base_rejected_insufficient_funds() -> None:
    e = funded()
    events = e.submit(order("s", Side.SELL, price="100"), 1, account="alice")
    assert events[0].reason is Reason.INSUFFICIENT_FUNDS


def test_resting_buy_locks_then_fill_moves_exact_amounts() -> None:
    e = funded("1000")
    e.on_book(book([], [("105", "1")]), 0)
    e.submit(order("a", price="100", qty="2"), 1, account="alice")
    assert e.balance("alice", "USDT") == Balance(free=D("799.6"), locked=D("200.4"))
    e.on_book(book([], [("99", "0.5")]), 2)  # maker fill at 100: pays 50 + 0.05 fee
    assert e.balance("alice", "BTC") == Balance(free=D("0.5"), locked=D("0"))
    usdt = e.balance("alice", "USDT")
    assert usdt.total == D("1000") - D("50.05")
    assert usdt.locked == D("1.5") * 100 + D("0.3")  # exactly what the remainder can still cost
    e.cancel("a", 3)
    assert e.balance("alice", "USDT") == Balance(free=D("949.95"), locked=D("0"))


def test_sell_fill_credits_quote_less_fee() -> None:
    e = MatchingEngine(FeeModel(), [BTC], balances=True)
    e.deposit("alice", "BTC", D("1"))
    e.submit(order("s", Side.SELL, price="100"), 1, account="alice")
    assert e.balance("alice", "BTC") == Balance(free=D("0"), locked=D("1"))
    e.on_candle(candle(99, 101, 98, 99), 60_000)
    assert e.balance("alice", "BTC").total == 0
    assert e.balance("alice", "USDT") == Balance(free=D("99.9"), locked=D("0"))  # 100 - 0.1 maker fee


def test_polymarket_taker_buy_charges_fee_in_usdc() -> None:
    e = MatchingEngine(FeeModel(), [UP], balances=True)
    e.deposit("bob", "USDC", D("10"))
    e.on_book(book([("0.60", "100")], [("0.65", "100")], market=UP.market_id), 1)
    events = e.submit(order("u", price="0.70", qty="10", market=UP.market_id), 2, account="bob")
    assert fills_of(events) == [("u", D("0.65"), D("10"), Liquidity.TAKER)]
    assert e.balance("bob", "USDC") == Balance(free=D("10") - D("6.5") - D("0.15925"), locked=D("0"))
    assert e.balance("bob", UP.symbol).free == D("10")


def test_market_buy_in_candle_mode_unaffordable_at_open_cancelled() -> None:
    e = funded("50")
    e.submit(order("m", price=None, type_=OrderType.MARKET), 0, account="alice")
    events = e.on_candle(candle(100, 110, 90, 105), 60_000)
    assert kinds(events) == [UpdateKind.CANCELLED]
    assert events[0].reason is Reason.INSUFFICIENT_FUNDS
    assert e.balance("alice", "USDT") == Balance(free=D("50"), locked=D("0"))


def test_balances_disabled_deposit_raises(engine: MatchingEngine) -> None:
    with pytest.raises(RuntimeError):
        engine.deposit("a", "USDT", D(1))


# --------------------------------------------------------------------------- state


def _activity(e: MatchingEngine) -> None:
    e.deposit("alice", "USDT", D("10000"))
    e.deposit("alice", "BTC", D("3"))
    e.submit(order("a", price="100", qty="2"), 1, account="alice")
    e.submit(order("b", Side.SELL, price="110"), 2, account="alice")
    e.submit(order("r", price="100.001"), 3, account="alice")
    e.on_book(book([("98", "1")], [("99", "0.7")]), 4)
    e.submit(order("m", price=None, type_=OrderType.MARKET, qty="0.5"), 5, account="alice")


def test_state_round_trip_is_exact_and_behaves_identically() -> None:
    e = MatchingEngine(FeeModel(), [BTC, UP], balances=True, participation=0.5)
    _activity(e)
    state = e.state()
    json.dumps(state)  # JSON-serialisable
    restored = MatchingEngine.from_state(json.loads(json.dumps(state)), FeeModel())
    assert restored.state() == state
    bar = candle(105, 111, 97, 108)
    ours = [x.model_dump(mode="json") for x in e.on_candle(bar, 60_000) + e.submit(order("n"), 60_001)]
    theirs = [
        x.model_dump(mode="json")
        for x in restored.on_candle(bar, 60_000) + restored.submit(order("n"), 60_001)
    ]
    assert ours == theirs
    assert restored.state() == e.state()


def test_checkpoint_without_history_stays_small_and_restores_with_the_store_history() -> None:
    """A paper venue checkpointed its engine's whole history on every order (O(n) per order,
    O(n^2) over a run of weeks): the compact checkpoint holds open orders only, and the engine
    rebuilt from it plus the terminal orders and fills kept elsewhere behaves identically."""
    e = MatchingEngine(FeeModel(), [BTC, UP], balances=True, participation=0.5)
    e.deposit("default", "USDT", D("100000"))
    for i in range(40):  # forty round trips: history the compact checkpoint must not carry
        e.on_book(book([("98", "5")], [("99", "5")]), 10 * i)
        e.submit(order(f"b{i}", price="99", qty="1"), 10 * i + 1)
        e.submit(order(f"s{i}", Side.SELL, price="98", qty="1"), 10 * i + 2)
    e.submit(order("rest", price="90"), 500)
    compact = json.loads(json.dumps(e.state(history=False)))
    assert [row["order"]["client_id"] for row in compact["orders"]] == ["rest"]
    assert compact["fills"] == []
    assert len(json.dumps(compact)) * 10 < len(json.dumps(e.state()))
    restored = MatchingEngine.from_state(compact, FeeModel())
    restored.restore_history(e.orders(), e.fills())
    assert [o.model_dump() for o in restored.orders()] == [o.model_dump() for o in e.orders()]
    assert [f.model_dump() for f in restored.fills()] == [f.model_dump() for f in e.fills()]
    bar = candle(105, 111, 89, 108)
    ours = e.on_candle(bar, 60_000) + e.submit(order("b0"), 60_001) + e.submit(order("n"), 60_002)
    theirs = restored.on_candle(bar, 60_000) + restored.submit(order("b0"), 60_001)
    theirs += restored.submit(order("n"), 60_002)
    assert [x.model_dump(mode="json") for x in theirs] == [x.model_dump(mode="json") for x in ours]
    assert theirs[1].reason is Reason.DUPLICATE_CLIENT_ID  # a restored terminal id is still spent
    assert restored.state(history=False) == e.state(history=False)


def test_checkpoint_without_history_drops_ended_markets_without_open_orders() -> None:
    ended = UP.model_copy(update={"symbol": "ended-token", "end_ms": 1_000})
    e = MatchingEngine(FeeModel(), [BTC, UP, ended])
    e.on_book(book([("98", "5")], [("99", "5")]), 5_000)
    kept = {i["symbol"] for i in e.state(history=False)["instruments"]}
    assert kept == {BTC.symbol, UP.symbol}
    assert {i["symbol"] for i in e.state()["instruments"]} == {BTC.symbol, UP.symbol, "ended-token"}


def test_fill_ids_deterministic_across_runs() -> None:
    one, two = MatchingEngine(balances=True), MatchingEngine(balances=True)
    for e in (one, two):
        e.add_instrument(BTC)
        _activity(e)
    assert [f.fill_id for f in one.fills()] == [f.fill_id for f in two.fills()]
    assert len({f.fill_id for f in one.fills()}) == len(one.fills()) > 0


def test_fills_cursor_and_filters() -> None:
    e = MatchingEngine(balances=True)
    e.add_instrument(BTC)
    _activity(e)
    total = e.fill_count
    assert e.fills(since=total) == []
    assert all(f.client_id == "m" for f in e.fills(client_id="m"))
    assert len(e.fills(account="alice")) == total


# --------------------------------------------------------------------------- property

SPOT = Instrument(venue="binance", symbol="X/USD", tick_size=D("1"), lot_size=D("0.1"), min_size=D("0.1"))
TOKEN = Instrument(
    venue="polymarket",
    symbol="tok",
    kind=MarketKind.BINARY,
    tick_size=D("0.01"),
    lot_size=D("1"),
    min_size=D("1"),
)
MARKETS = (SPOT, TOKEN)
INITIAL = {"USD": D("2000"), "X": D("10"), "USDC": D("50"), "tok": D("40")}


def _price(market: int, ticks: int) -> Decimal:
    return D(90 + ticks % 21) if market == 0 else D(1 + ticks % 99) / 100


@st.composite
def ops(draw: st.DrawFn) -> tuple[Any, ...]:
    kind = draw(
        st.sampled_from(["submit", "submit", "submit", "cancel", "book", "book", "candle", "candle", "dup"])
    )
    m = draw(st.integers(0, 1))
    if kind in ("submit", "dup"):
        return (
            kind,
            m,
            draw(st.sampled_from(list(Side))),
            draw(st.sampled_from([OrderType.LIMIT, OrderType.LIMIT, OrderType.MARKET])),
            draw(st.sampled_from(list(TimeInForce))),
            draw(st.integers(0, 200)),
            draw(st.integers(1, 30)),
        )
    if kind == "cancel":
        return (kind, draw(st.integers(0, 40)))
    if kind == "book":
        mid = draw(st.integers(2, 200))
        levels = draw(st.lists(st.tuples(st.integers(1, 5), st.integers(1, 40)), max_size=3))
        return (kind, m, mid, levels)
    o, h_up, l_down = draw(st.integers(0, 200)), draw(st.integers(0, 15)), draw(st.integers(0, 15))
    return (kind, m, o, h_up, l_down, draw(st.integers(0, 50)))


def _apply(e: MatchingEngine, op: tuple[Any, ...], step: int, ids: list[str]) -> list[OrderUpdate]:
    now = step * 1000
    kind, args = op[0], op[1:]
    if kind in ("submit", "dup"):
        m, side, type_, tif, ticks, lots = args
        inst = MARKETS[m]
        if type_ is OrderType.MARKET and tif is TimeInForce.POST_ONLY:
            tif = TimeInForce.IOC
        cid = ids[ticks % len(ids)] if kind == "dup" and ids else f"o{step}"
        if cid not in ids:
            ids.append(cid)
        new = Order(
            client_id=cid,
            market=inst.market_id,
            side=side,
            type=type_,
            tif=tif,
            price=None if type_ is OrderType.MARKET else _price(m, ticks),
            qty=inst.lot_size * lots,
        )
        return e.submit(new, now, account="acct")
    if kind == "cancel":
        return e.cancel(ids[args[0] % len(ids)], now) if ids else []
    if kind == "book":
        m, mid, levels = args
        inst = MARKETS[m]
        center = _price(m, mid)
        tick, lot = inst.tick_size, inst.lot_size
        asks = {center + tick * off: lot * size for off, size in levels}
        bids = {center - tick * off: lot * size for off, size in levels if center - tick * off > 0}
        snap = OrderBook(
            market=inst.market_id,
            ts_ms=now,
            bids=tuple(BookLevel(price=p, size=s) for p, s in bids.items()),
            asks=tuple(BookLevel(price=p, size=s) for p, s in asks.items() if m == 0 or p < 1),
        )
        return e.on_book(snap, now)
    m, o, h_up, l_down, volume = args
    inst = MARKETS[m]
    open_px = float(_price(m, o))
    high = open_px + float(inst.tick_size) * h_up
    low = max(float(inst.tick_size), open_px - float(inst.tick_size) * l_down)
    bar = Candle(
        market=inst.market_id,
        ts_ms=now,
        open=open_px,
        high=high,
        low=low,
        close=open_px,
        volume=float(volume),
    )
    return e.on_candle(bar, now)


def _check(e: MatchingEngine, events: list[OrderUpdate], cancelled: set[str]) -> None:
    for ev in events:
        if ev.kind is UpdateKind.FILL:
            assert ev.order.client_id not in cancelled, "fill after cancel"
        if ev.kind is UpdateKind.CANCELLED:
            cancelled.add(ev.order.client_id)
    fills = e.fills()
    assert len({f.fill_id for f in fills}) == len(fills)
    per_order: dict[str, Decimal] = {}
    for f in fills:
        per_order[f.client_id] = per_order.get(f.client_id, D(0)) + f.qty
    for o in e.orders():
        assert D(0) <= o.filled_qty <= o.qty
        assert per_order.get(o.client_id, D(0)) == o.filled_qty
        assert (o.status is OrderStatus.FILLED) == (o.filled_qty == o.qty)
    # balances conserve: initial + flows of every fill (fees in quote), never negative
    expected = dict(INITIAL)
    for f in fills:
        inst = SPOT if f.market == SPOT.market_id else TOKEN
        base, quote = ("X", "USD") if inst is SPOT else ("tok", "USDC")
        sign = 1 if f.side is Side.BUY else -1
        expected[base] += sign * f.qty
        expected[quote] -= sign * f.price * f.qty + f.fee
    locked: dict[str, Decimal] = dict.fromkeys(INITIAL, D(0))
    for o in e.open_orders():
        base, quote = ("X", "USD") if o.market == SPOT.market_id else ("tok", "USDC")
        locked[quote if o.side is Side.BUY else base] += e.reserved(o.client_id)
    for asset, amount in expected.items():
        bal = e.balance("acct", asset)
        assert bal.free >= 0, (asset, bal)
        assert bal.locked >= 0, (asset, bal)
        assert bal.total == amount, (asset, bal, amount)
        assert bal.locked == locked[asset], (asset, bal, locked[asset])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sequence=st.lists(ops(), min_size=1, max_size=60),
    participation=st.sampled_from([None, 0.5]),
    split=st.integers(0, 60),
)
def test_random_sequences_keep_invariants(
    sequence: list[tuple[Any, ...]], participation: float | None, split: int
) -> None:
    fees = FeeModel(CostConfig(binance=VenueFees(maker=0.001, taker=0.002), slippage_pct=0.001))
    e = MatchingEngine(fees, MARKETS, balances=True, participation=participation)
    for asset, amount in INITIAL.items():
        e.deposit("acct", asset, amount)
    ids: list[str] = []
    cancelled: set[str] = set()
    twin: MatchingEngine | None = None
    compact: MatchingEngine | None = None  # rebuilt from a checkpoint without history + the history
    for step, op in enumerate(sequence, start=1):
        if step == split:
            twin = MatchingEngine.from_state(json.loads(json.dumps(e.state())), fees)
            compact = MatchingEngine.from_state(json.loads(json.dumps(e.state(history=False))), fees)
            compact.restore_history(e.orders(), e.fills(), account="acct")
        before = len(e.orders())
        twin_ids = list(ids)
        events = _apply(e, op, step, ids)
        if op[0] == "dup" and ids and len(e.orders()) == before:
            assert kinds(events) == [UpdateKind.UNCHANGED]
        assert len(e.orders()) == len(set(ids))
        _check(e, events, cancelled)
        for other in (twin, compact):
            if other is not None:
                mirrored = _apply(other, op, step, list(twin_ids))
                assert [x.model_dump(mode="json") for x in mirrored] == [
                    x.model_dump(mode="json") for x in events
                ]
    if twin is not None and compact is not None:
        assert twin.state() == e.state()
        assert compact.state(history=False) == e.state(history=False)
        assert [f.model_dump() for f in compact.fills()] == [f.model_dump() for f in e.fills()]


def test_has_open_orders_follows_the_open_orders_per_market_and_overall(engine: MatchingEngine) -> None:
    assert not engine.has_open_orders()
    assert not engine.has_open_orders(M)
    engine.submit(order("rest", price="90"), 1)
    assert engine.has_open_orders()
    assert engine.has_open_orders(M)
    assert not engine.has_open_orders(UP.market_id)
    engine.cancel("rest", 2)
    assert not engine.has_open_orders()
    assert not engine.has_open_orders(M)
    assert engine.has_open_orders(M) == bool(engine.open_orders(M))
