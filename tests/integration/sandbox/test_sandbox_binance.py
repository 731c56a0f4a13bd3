"""The Binance sandbox on loopback, driven by the real ccxt client and by BinanceGateway.

Every test starts its own sandbox on 127.0.0.1 port 0. Synchronisation is by awaiting the
venue's state (``venue.wait_for``) or the client's answers, never by sleeping.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlencode

import aiohttp
import ccxt.async_support as ccxt_async
import pytest
from pydantic import SecretStr

from actors.domain.model import Order, OrderStatus, OrderType, Side, TimeInForce
from actors.venues.binance.ccxt_client import make_exchange
from actors.venues.binance.gateway import BinanceGateway, ws_supported
from actors.venues.gateway import VenueError, VenueErrorKind
from ops.sandbox.binance import BookModel, Credentials, SandboxBinance
from ops.sandbox.faults import FaultInjector, FaultKind, FaultPlan, FaultRule, When

MARKET = "binance:BTC/USDT"
SYMBOL = "BTC/USDT"
START_BAR = 100
T = TypeVar("T")


@pytest.fixture
async def venue() -> AsyncIterator[SandboxBinance]:
    # one level a side of 0.001 BTC: each snapshot that crosses a resting order fills 0.001 of it
    sandbox = SandboxBinance(start_bar=START_BAR, book=BookModel(level_qty=Decimal("0.001"), levels=1))
    await sandbox.start_server()
    yield sandbox
    await sandbox.stop_server()


@pytest.fixture
def creds(venue: SandboxBinance) -> Credentials:
    return venue.create_account({"USDT": "10000", "BTC": "0.5"})


def _ccxt(venue: SandboxBinance, creds: Credentials | None, **over: Any) -> Any:
    exchange = make_exchange(
        "binance",
        rest_url=venue.rest_url,
        api_key=over.get("api_key", creds.key if creds else None),
        api_secret=over.get("api_secret", creds.secret if creds else None),
        timeout_ms=over.get("timeout_ms", 5000),
    )
    exchange.enableRateLimit = False
    exchange.timeout_on_exit = 0
    return exchange


@pytest.fixture
async def exchange(venue: SandboxBinance, creds: Credentials) -> AsyncIterator[Any]:
    ex = _ccxt(venue, creds)
    yield ex
    await ex.close()


def _gateway(venue: SandboxBinance, creds: Credentials, **kw: Any) -> BinanceGateway:
    gw = BinanceGateway(
        rest_url=venue.rest_url,
        api_key=kw.pop("api_key", creds.key),
        api_secret=kw.pop("api_secret", creds.secret),
        rate_limit=False,
        timeout_ms=kw.pop("timeout_ms", 5000),
        poll_interval_s=kw.pop("poll_interval_s", 0.05),
        **kw,
    )
    gw.exchange.timeout_on_exit = 0
    return gw


@pytest.fixture
async def gateway(venue: SandboxBinance, creds: Credentials) -> AsyncIterator[BinanceGateway]:
    gw = _gateway(venue, creds)
    await gw.start()
    yield gw
    await gw.close()


def _limit(client_id: str, side: Side, price: Decimal, qty: str, tif: TimeInForce = TimeInForce.GTC) -> Order:
    return Order(client_id=client_id, market=MARKET, side=side, price=price, qty=Decimal(qty), tif=tif)


async def _next(stream: AsyncIterator[T]) -> T:
    """``anext`` as a coroutine, for ``asyncio.create_task``."""
    return await anext(stream)


def _status_is(venue: SandboxBinance, client_id: str, status: OrderStatus) -> Callable[[], bool]:
    def check() -> bool:
        order = venue.order(client_id)
        return order is not None and order.status is status

    return check


def _advance_until(venue: SandboxBinance, done: Callable[[], bool], max_bars: int = 2000) -> None:
    """Replay bar by bar until ``done()``; the data is fixed, so this is deterministic."""
    for _ in range(max_bars):
        if done():
            return
        venue.advance(1)
    raise AssertionError(f"condition not reached within {max_bars} bars")


def _below_bid(venue: SandboxBinance, usdt: str) -> Decimal:
    bid = venue.book().best_bid
    assert bid is not None
    return bid - Decimal(usdt)


def _signed_query(creds: Credentials, params: dict[str, Any], ts_ms: int | None = None) -> str:
    query = urlencode({**params, "timestamp": ts_ms if ts_ms is not None else int(time.time() * 1000)})
    signature = hmac.new(creds.api_secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    return f"{query}&signature={signature}"


async def _raw(
    venue: SandboxBinance, method: str, path: str, query: str = "", headers: dict[str, str] | None = None
) -> tuple[int, Any, dict[str, str]]:
    async with aiohttp.ClientSession() as session:
        url = f"{venue.rest_url}{path}" + (f"?{query}" if query else "")
        async with session.request(method, url, headers=headers or {}) as resp:
            return resp.status, await resp.json(content_type=None), dict(resp.headers)


# --------------------------------------------------------------------------- lifecycle


async def test_ccxt_lifecycle_limit_order_partially_then_fully_fills(
    venue: SandboxBinance, creds: Credentials, exchange: Any
) -> None:
    markets = await exchange.load_markets()
    market = markets[SYMBOL]
    assert market["precision"]["price"] == 0.01
    assert market["precision"]["amount"] == 0.00001
    assert market["limits"]["cost"]["min"] == 5.0
    book = await exchange.fetch_order_book(SYMBOL, 5)
    assert book["bids"][0][0] < book["asks"][0][0]
    assert book["nonce"] is not None

    price = _below_bid(venue, "25")
    placed = await exchange.create_order(
        SYMBOL, "limit", "buy", 0.005, float(price), {"newClientOrderId": "life-1"}
    )
    assert placed["clientOrderId"] == "life-1"
    assert placed["status"] == "open"
    looked = await exchange.fetch_order("", SYMBOL, {"origClientOrderId": "life-1"})
    assert looked["id"] == placed["id"]
    assert looked["filled"] == 0.0
    assert venue.balances(creds.account)["USDT"][1] > 0  # the buy locks quote

    _advance_until(venue, _status_is(venue, "life-1", OrderStatus.PARTIALLY_FILLED))
    partial = await exchange.fetch_order("", SYMBOL, {"origClientOrderId": "life-1"})
    assert partial["status"] == "open"
    assert 0 < partial["filled"] < 0.005

    _advance_until(venue, _status_is(venue, "life-1", OrderStatus.FILLED))
    done = await exchange.fetch_order("", SYMBOL, {"origClientOrderId": "life-1"})
    assert done["status"] == "closed"
    assert done["filled"] == 0.005
    assert await exchange.fetch_open_orders(SYMBOL) == []

    trades = await exchange.fetch_my_trades(SYMBOL)
    truth = venue.fills(creds.account)
    assert [Decimal(t["info"]["qty"]) for t in trades] == [f.qty for f in truth]
    assert all(t["takerOrMaker"] == "maker" and Decimal(t["info"]["price"]) == price for t in trades)
    assert sum(Decimal(t["info"]["commission"]) for t in trades) == sum(f.fee for f in truth)

    balance = await exchange.fetch_balance()
    cost = sum(f.price * f.qty + f.fee for f in truth)
    usdt = next(b for b in balance["info"]["balances"] if b["asset"] == "USDT")
    btc = next(b for b in balance["info"]["balances"] if b["asset"] == "BTC")
    assert Decimal(usdt["free"]) == Decimal(10000) - cost
    assert Decimal(usdt["locked"]) == 0
    assert Decimal(btc["free"]) == Decimal("0.505")


async def test_gateway_lifecycle_partial_fill_then_cancel_keeps_filled_qty(
    venue: SandboxBinance, creds: Credentials, gateway: BinanceGateway
) -> None:
    instruments = {i.symbol: i for i in await gateway.instruments()}
    btc = instruments[SYMBOL]
    assert (btc.tick_size, btc.lot_size, btc.min_size) == (
        Decimal("0.01"),
        Decimal("0.00001"),
        Decimal("0.00001"),
    )
    book = await gateway.order_book(MARKET, 5)
    assert book.best_bid == venue.book().best_bid
    assert book.best_ask == venue.book().best_ask

    order = _limit("gw-1", Side.BUY, _below_bid(venue, "25"), "0.01")
    placed = await gateway.submit(order)
    assert placed.status is OrderStatus.OPEN
    assert placed.venue_order_id is not None
    assert placed.client_id == "gw-1"
    assert placed.price == order.price

    seen = await gateway.order("gw-1", MARKET)
    assert seen is not None
    assert seen.qty == Decimal("0.01")
    assert seen.status is OrderStatus.OPEN
    assert [o.client_id for o in await gateway.open_orders()] == ["gw-1"]

    _advance_until(venue, _status_is(venue, "gw-1", OrderStatus.PARTIALLY_FILLED))
    partial = await gateway.order("gw-1", MARKET)
    assert partial is not None
    assert partial.status is OrderStatus.PARTIALLY_FILLED

    cancelled = await gateway.cancel("gw-1", MARKET)
    truth = venue.order("gw-1")
    assert truth is not None
    assert truth.status is OrderStatus.CANCELLED
    assert cancelled.status is OrderStatus.CANCELLED
    assert cancelled.filled_qty == truth.filled_qty > 0
    assert await gateway.open_orders(MARKET) == []
    again = await gateway.cancel("gw-1", MARKET)  # idempotent: the final state, not an error
    assert again.status is OrderStatus.CANCELLED
    assert again.filled_qty == truth.filled_qty

    fills = await gateway.fills(MARKET)
    truth_fills = venue.fills(creds.account)
    assert [f.qty for f in fills] == [f.qty for f in truth_fills]
    assert [f.fee for f in fills] == [f.fee for f in truth_fills]
    assert all(f.fill_id.startswith("binance:BTCUSDT:") and f.client_id == "gw-1" for f in fills)
    assert sum(f.qty for f in fills) == truth.filled_qty
    assert await gateway.fills(MARKET, since_ms=fills[-1].ts_ms + 1) == []

    balances = await gateway.balances()
    engine = venue.engine.balances(creds.account)
    assert balances == {asset: b.total for asset, b in engine.items()}


async def test_market_order_takes_book_with_exact_amounts(
    venue: SandboxBinance, creds: Credentials, gateway: BinanceGateway
) -> None:
    ask = venue.book().best_ask
    filled = await gateway.submit(
        Order(client_id="mkt-1", market=MARKET, side=Side.BUY, type=OrderType.MARKET, qty=Decimal("0.001"))
    )
    assert filled.status is OrderStatus.FILLED
    assert filled.filled_qty == Decimal("0.001")
    (fill,) = await gateway.fills(MARKET)
    assert fill.price == ask
    assert fill.liquidity.value == "taker"
    assert fill.fee == (ask * Decimal("0.001") * Decimal("0.002")).quantize(
        Decimal("1e-8"), rounding="ROUND_DOWN"
    )
    # that took the only ask level shown: a second market buy finds no liquidity and expires
    thin = await gateway.submit(
        Order(client_id="mkt-2", market=MARKET, side=Side.BUY, type=OrderType.MARKET, qty=Decimal("0.002"))
    )
    assert thin.status is OrderStatus.CANCELLED
    assert thin.filled_qty == 0
    status, body, _ = await _raw(
        venue,
        "GET",
        "/api/v3/order",
        _signed_query(creds, {"symbol": "BTCUSDT", "origClientOrderId": "mkt-2"}),
        {"X-MBX-APIKEY": creds.api_key},
    )
    assert status == 200
    assert body["status"] == "EXPIRED"


async def test_cancel_all_clears_every_open_order_then_answers_nothing(
    venue: SandboxBinance, exchange: Any, gateway: BinanceGateway
) -> None:
    await gateway.submit(_limit("all-1", Side.BUY, _below_bid(venue, "40"), "0.001"))
    await gateway.submit(_limit("all-2", Side.SELL, _below_bid(venue, "-40"), "0.001"))
    cancelled = await gateway.cancel_all()
    assert sorted((o.client_id, o.status) for o in cancelled) == [
        ("all-1", OrderStatus.CANCELLED),
        ("all-2", OrderStatus.CANCELLED),
    ]
    assert venue.engine.open_orders() == []
    assert await gateway.cancel_all(MARKET) == []  # Binance answers -2011 when nothing is open
    bought = await exchange.create_market_buy_order_with_cost(SYMBOL, 100)  # quoteOrderQty
    assert bought["status"] == "closed"
    assert bought["info"]["origQuoteOrderQty"] == "100.00000000"
    assert Decimal(bought["info"]["cummulativeQuoteQty"]) <= 100


async def test_post_only_that_would_take_rejected_and_resting_one_accepted(
    venue: SandboxBinance, gateway: BinanceGateway
) -> None:
    ask = venue.book().best_ask
    assert ask is not None
    with pytest.raises(VenueError) as err:
        await gateway.submit(_limit("po-1", Side.BUY, ask, "0.001", TimeInForce.POST_ONLY))
    assert err.value.kind is VenueErrorKind.REJECTED
    assert "immediately match" in err.value.message
    resting = await gateway.submit(
        _limit("po-2", Side.BUY, _below_bid(venue, "1"), "0.001", TimeInForce.POST_ONLY)
    )
    assert resting.status is OrderStatus.OPEN
    looked = await gateway.order("po-2", MARKET)
    assert looked is not None
    assert looked.tif is TimeInForce.POST_ONLY


# --------------------------------------------------------------------------- refusals


async def test_duplicate_client_id_refused_2010_maps_to_rejected(
    venue: SandboxBinance, exchange: Any, gateway: BinanceGateway
) -> None:
    order = _limit("dup-1", Side.BUY, _below_bid(venue, "50"), "0.001")
    await gateway.submit(order)
    with pytest.raises(VenueError) as err:
        await gateway.submit(order)
    assert err.value.kind is VenueErrorKind.REJECTED
    assert "-2010" in err.value.message
    with pytest.raises(ccxt_async.InvalidOrder, match="Duplicate order sent"):
        await exchange.create_order(
            SYMBOL, "limit", "buy", 0.001, float(order.price or 0), {"newClientOrderId": "dup-1"}
        )
    assert [o.client_id for o in venue.orders()] == ["dup-1"]


async def test_insufficient_balance_refused_2010_maps_to_insufficient_funds(
    venue: SandboxBinance, gateway: BinanceGateway
) -> None:
    with pytest.raises(VenueError) as err:
        await gateway.submit(_limit("big-1", Side.BUY, _below_bid(venue, "50"), "1"))
    assert err.value.kind is VenueErrorKind.INSUFFICIENT_FUNDS
    assert await gateway.order("big-1", MARKET) is None  # Binance keeps no rejected orders
    with pytest.raises(VenueError) as again:  # the id stays refused the same way
        await gateway.submit(_limit("big-1", Side.BUY, _below_bid(venue, "50"), "1"))
    assert again.value.kind is VenueErrorKind.INSUFFICIENT_FUNDS


async def test_wrong_signature_refused_1022_maps_to_auth(venue: SandboxBinance, creds: Credentials) -> None:
    ex = _ccxt(venue, creds, api_secret=SecretStr("not-the-secret"))
    try:
        with pytest.raises(ccxt_async.AuthenticationError, match="-1022"):
            await ex.fetch_balance()
    finally:
        await ex.close()
    gw = _gateway(venue, creds, api_secret=SecretStr("not-the-secret"))
    try:
        with pytest.raises(VenueError) as err:
            await gw.balances()
        assert err.value.kind is VenueErrorKind.AUTH
    finally:
        await gw.close()


@pytest.mark.parametrize(("key", "code"), [("NoSuchKey123", "-2015"), ("bad key!", "-2014")])
async def test_unknown_or_malformed_api_key_refused_maps_to_auth(
    venue: SandboxBinance, creds: Credentials, key: str, code: str
) -> None:
    status, body, _ = await _raw(
        venue, "GET", "/api/v3/account", _signed_query(creds, {}), {"X-MBX-APIKEY": key}
    )
    assert status == 401
    assert str(body["code"]) == code
    if code == "-2015":
        gw = _gateway(venue, creds, api_key=SecretStr(key))
        try:
            with pytest.raises(VenueError) as err:
                await gw.balances()
            assert err.value.kind is VenueErrorKind.AUTH
            assert code in err.value.message
        finally:
            await gw.close()


async def test_timestamp_outside_recv_window_refused_1021_and_gateway_resyncs(
    venue: SandboxBinance, creds: Credentials
) -> None:
    ex = _ccxt(venue, creds)
    ex.options["timeDifference"] = 120_000  # our clock two minutes behind
    try:
        with pytest.raises(ccxt_async.InvalidNonce, match="-1021"):
            await ex.fetch_balance()
    finally:
        await ex.close()
    status, body, _ = await _raw(
        venue,
        "GET",
        "/api/v3/account",
        _signed_query(creds, {}, int(time.time() * 1000) + 5000),
        {"X-MBX-APIKEY": creds.api_key},
    )
    assert (status, body["code"]) == (400, -1021)
    assert "ahead" in body["msg"]

    gw = _gateway(venue, creds)
    gw.exchange.options["timeDifference"] = 120_000
    try:
        assert (await gw.balances())["USDT"] == Decimal(10000)  # re-measured the offset, retried
        assert abs(gw.exchange.options["timeDifference"]) < 5000
    finally:
        await gw.close()
    strict = _gateway(venue, creds, resync_clock=False)
    strict.exchange.options["timeDifference"] = 120_000
    try:
        with pytest.raises(VenueError) as err:
            await strict.balances()
        assert err.value.kind is VenueErrorKind.AUTH
    finally:
        await strict.close()


async def test_weight_over_budget_answers_429_retry_after_and_maps_to_rate_limited(
    venue: SandboxBinance, exchange: Any, gateway: BinanceGateway
) -> None:
    venue.weight_limit = 40
    venue.reset_weights()
    status, _, headers = await _raw(venue, "GET", "/api/v3/depth", "symbol=BTCUSDT&limit=5")
    assert status == 200
    assert headers["X-MBX-USED-WEIGHT-1M"] == "5"
    refused: Exception | None = None
    for _ in range(20):  # 5 weight each: the 8th call is over 40
        try:
            await exchange.fetch_order_book(SYMBOL, 5)
        except ccxt_async.DDoSProtection as exc:
            refused = exc
            break
    assert refused is not None
    assert "429" in str(refused)
    status, body, headers = await _raw(venue, "GET", "/api/v3/ping")
    assert status == 429
    assert body["code"] == -1003
    assert int(headers["Retry-After"]) >= 1
    assert int(headers["X-MBX-USED-WEIGHT-1M"]) > 40
    with pytest.raises(VenueError) as err:
        await gateway.order_book(MARKET)
    assert err.value.kind is VenueErrorKind.RATE_LIMITED
    assert err.value.retryable
    assert err.value.retry_after_s is not None
    assert err.value.retry_after_s >= 1
    venue.reset_weights()  # the next window
    assert (await gateway.order_book(MARKET)).best_bid is not None


async def test_malformed_requests_get_binance_errors_and_server_survives(
    venue: SandboxBinance, creds: Credentials, gateway: BinanceGateway
) -> None:
    key = {"X-MBX-APIKEY": creds.api_key}
    cases: list[tuple[str, str, dict[str, Any], int]] = [
        ("GET", "/api/v3/klines", {"symbol": "BTCUSDT"}, -1102),
        ("GET", "/api/v3/klines", {"symbol": "BTCUSDT", "interval": "7m"}, -1120),
        ("GET", "/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": "x"}, -1100),
        ("GET", "/api/v3/depth", {"symbol": "ETHBTC"}, -1121),
        ("GET", "/api/v3/depth", {"symbol": "BTCUSDT", "limit": "-5"}, -1100),
    ]
    for method, path, params, code in cases:
        status, body, _ = await _raw(venue, method, path, urlencode(params))
        assert (status, body["code"]) == (400, code), (path, params, body)
    status, body, _ = await _raw(venue, "GET", "/api/v3/depth", "symbol=BTCUSDT&symbol=BTCUSDT")
    assert body["code"] == -1101
    status, body, _ = await _raw(venue, "GET", "/api/v3/nope")
    assert status == 404
    assert "code" in body

    bid = _below_bid(venue, "50")
    order_cases: list[tuple[dict[str, Any], int]] = [
        ({"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "abc", "price": str(bid)}, -1100),
        (
            {"side": "UP", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001", "price": str(bid)},
            -1117,
        ),
        ({"side": "BUY", "type": "ICEBERG", "quantity": "0.001"}, -1116),
        ({"side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": str(bid)}, -1102),
        (
            {
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.0010001",
                "price": str(bid),
            },
            -1013,
        ),
        (
            {"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001", "price": "60000.001"},
            -1013,
        ),
        (
            {"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.00001", "price": str(bid)},
            -1013,
        ),
        ({"side": "BUY", "type": "MARKET", "quantity": "0.001", "price": str(bid)}, -1106),
        (
            {
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.001",
                "price": str(bid),
                "newClientOrderId": "has space",
            },
            -1100,
        ),
    ]
    for params, code in order_cases:
        query = _signed_query(creds, {"symbol": "BTCUSDT", **params})
        status, body, _ = await _raw(venue, "POST", "/api/v3/order", query, key)
        assert (status, body["code"]) == (400, code), (params, body)
    status, body, _ = await _raw(
        venue,
        "DELETE",
        "/api/v3/order",
        _signed_query(creds, {"symbol": "BTCUSDT", "origClientOrderId": "none"}),
        key,
    )
    assert body["code"] == -2011
    status, body, _ = await _raw(
        venue, "GET", "/api/v3/order", _signed_query(creds, {"symbol": "BTCUSDT", "orderId": "77"}), key
    )
    assert body["code"] == -2013
    status, body, _ = await _raw(venue, "GET", "/api/v3/account", "timestamp=1", key)
    assert body["code"] == -1102  # no signature
    assert venue.orders() == []
    with pytest.raises(VenueError) as err:
        await gateway.cancel("none", MARKET)
    assert err.value.kind is VenueErrorKind.NOT_FOUND
    assert await gateway.order("none", MARKET) is None
    assert (await _raw(venue, "GET", "/api/v3/ping"))[0] == 200


# --------------------------------------------------------------------------- faults


async def test_5xx_burst_gateway_reports_unavailable_then_succeeds(
    venue: SandboxBinance, gateway: BinanceGateway
) -> None:
    venue.faults.add(
        {"path": "/api/v3/order", "method": "POST", "kind": "status", "status": 503, "when": {"first": 2}}
    )
    order = _limit("burst-1", Side.BUY, _below_bid(venue, "50"), "0.001")
    for _ in range(2):
        with pytest.raises(VenueError) as err:
            await gateway.submit(order)
        assert err.value.kind is VenueErrorKind.UNAVAILABLE
        assert err.value.retryable
        assert await gateway.order("burst-1", MARKET) is None  # a refused request did nothing
    placed = await gateway.submit(order)
    assert placed.status is OrderStatus.OPEN
    assert venue.faults.stats.count("status") == 2
    assert [o.client_id for o in venue.orders()] == ["burst-1"]


@pytest.mark.parametrize("lose_mode", ["close", "504"])
async def test_lost_order_answer_order_found_by_client_id_and_resubmit_makes_no_second_order(
    venue: SandboxBinance, gateway: BinanceGateway, lose_mode: Literal["close", "504"]
) -> None:
    rule = FaultRule(
        path="/api/v3/order",
        method="POST",
        kind=FaultKind.LOSE_ANSWER,
        lose_mode=lose_mode,
        when=When(first=1),
    )
    venue.faults.add(rule)
    order = _limit("lost-1", Side.BUY, _below_bid(venue, "50"), "0.001")
    with pytest.raises(VenueError) as err:
        await gateway.submit(order)
    assert err.value.kind is VenueErrorKind.UNAVAILABLE
    found = await gateway.order("lost-1", MARKET)  # what the shell does before any retry
    assert found is not None
    assert found.status is OrderStatus.OPEN
    assert found.qty == order.qty
    with pytest.raises(VenueError) as dup:
        await gateway.submit(order)
    assert dup.value.kind is VenueErrorKind.REJECTED
    truth = [o for o in venue.orders() if o.client_id == "lost-1"]
    assert len(truth) == 1
    assert len(venue.orders()) == 1
    assert venue.faults.stats.count("lose_answer") == 1


async def test_request_timeout_fault_maps_to_unavailable_and_order_not_placed(
    venue: SandboxBinance, creds: Credentials
) -> None:
    venue.faults.add(
        {"path": "/api/v3/order", "method": "POST", "kind": "timeout", "duration_s": 5, "when": {"first": 1}}
    )
    gw = _gateway(venue, creds, timeout_ms=300)
    try:
        await gw.start()
        with pytest.raises(VenueError) as err:
            await gw.submit(_limit("slow-1", Side.BUY, _below_bid(venue, "50"), "0.001"))
        assert err.value.kind is VenueErrorKind.UNAVAILABLE
        assert await gw.order("slow-1", MARKET) is None
    finally:
        await gw.close()
    assert venue.orders() == []


async def test_fault_admin_endpoints_add_count_and_clear(venue: SandboxBinance) -> None:
    async with aiohttp.ClientSession() as session:
        rule = {"path": "/api/v3/time", "kind": "status", "status": 500, "when": {"every": 2}}
        async with session.post(f"{venue.rest_url}/_sandbox/faults", json=rule) as resp:
            added = (await resp.json())["rules"][0]
        assert resp.status == 200
        assert added["id"]
        statuses = []
        for _ in range(4):
            async with session.get(f"{venue.rest_url}/api/v3/time") as r:
                statuses.append(r.status)
        assert statuses == [200, 500, 200, 500]
        async with session.get(f"{venue.rest_url}/_sandbox/faults") as resp:
            report = await resp.json()
        assert report["injected"] == {"status": 2}
        assert report["by_rule"] == {added["id"]: 2}
        async with session.post(f"{venue.rest_url}/_sandbox/faults", json={"kind": "nonsense"}) as resp:
            assert resp.status == 400
        async with session.delete(f"{venue.rest_url}/_sandbox/faults") as resp:
            assert (await resp.json())["removed"] == 1
        async with session.get(f"{venue.rest_url}/api/v3/time") as r:
            assert r.status == 200


def test_fault_plan_loads_from_json_and_toml_and_when_is_reproducible(tmp_path: Path) -> None:
    toml = tmp_path / "plan.toml"
    toml.write_text(
        '[[rules]]\npath = "/api/v3/order"\nmethod = "POST"\nkind = "status"\nstatus = 429\n'
        "retry_after_s = 2\n[rules.when]\ncalls = [2, 4]\n"
    )
    jsn = tmp_path / "plan.json"
    jsn.write_text(
        json.dumps(
            {"rules": [{"kind": "latency", "duration_s": 0.01, "when": {"probability": 0.5, "seed": 7}}]}
        )
    )
    plan = FaultPlan.from_file(toml)
    assert plan.rules[0].when.calls == (2, 4)
    assert plan.rules[0].retry_after_s == 2
    injector = FaultInjector(plan)
    hits = [injector.decide("POST", "/api/v3/order") is not None for _ in range(5)]
    assert hits == [False, True, True, False, False]
    assert injector.decide("GET", "/api/v3/order") is None
    draws = []
    for _ in range(2):
        inj = FaultInjector(FaultPlan.from_file(jsn))
        draws.append([inj.decide("GET", "/x") is not None for _ in range(20)])
    assert draws[0] == draws[1]
    assert 0 < sum(draws[0]) < 20
    with pytest.raises(ValueError, match="calls"):
        When(calls=(3, 1))


async def test_ws_gate_stall_then_drop_follow_their_call_windows() -> None:
    injector = FaultInjector()
    injector.add({"path": "/ws/*", "kind": "stall_ws", "duration_s": 0, "when": {"first": 1}})
    injector.add({"path": "/ws/*", "kind": "drop_ws", "when": {"calls": [2, 3]}})
    assert [await injector.ws_gate("/ws/btcusdt@trade") for _ in range(3)] == [True, False, True]
    assert await injector.ws_gate("/stream") is True  # other paths untouched
    assert injector.stats.injected == {"stall_ws": 1, "drop_ws": 1}
    assert injector.decide("GET", "/ws/x") is None  # websocket rules never fault HTTP


# --------------------------------------------------------------------------- websockets


@pytest.mark.skipif(not ws_supported(), reason="ccxt.pro not importable")
async def test_ccxt_pro_streams_kline_trade_and_depth_from_sandbox(
    venue: SandboxBinance, gateway: BinanceGateway
) -> None:
    candles = gateway.watch_candles(MARKET)
    trades = gateway.watch_trades(MARKET)
    books = gateway.watch_order_book(MARKET, 5)
    first_book = await anext(books)  # REST snapshot + stream, as ccxt.pro syncs it
    assert first_book.best_bid == venue.book().best_bid
    candle_task = asyncio.create_task(_next(candles))
    trade_task = asyncio.create_task(_next(trades))
    book_task = asyncio.create_task(_next(books))  # ccxt.pro wakes only callers already waiting
    await venue.wait_for(lambda: {"btcusdt@kline_1m", "btcusdt@trade"} <= set().union(*venue.subscriptions()))
    ts, o, h, lo, c, v = venue.bar(START_BAR + 1)
    venue.advance(1)
    candle = await asyncio.wait_for(candle_task, 5)
    assert (candle.ts_ms, candle.open, candle.high, candle.low, candle.close) == (
        ts,
        float(o),
        float(h),
        float(lo),
        float(c),
    )
    trade = await asyncio.wait_for(trade_task, 5)
    assert trade.price == o
    assert trade.ts_ms == ts
    # the bar was played as four snapshots (open, low, high, close); ccxt.pro resolves on a diff
    # and the book it hands over may already hold later diffs: it is one of the four
    book = await asyncio.wait_for(book_task, 5)
    path = [venue.model_book(ref, v, ts) for ref in (o, lo, h, c)]
    assert (book.best_bid, book.best_ask) in [(p.best_bid, p.best_ask) for p in path]
    for gen in (candles, trades, books):
        await gen.aclose()


@pytest.mark.skipif(not ws_supported(), reason="ccxt.pro not importable")
async def test_dropped_kline_socket_resubscribes_and_backfills_missed_bars(
    venue: SandboxBinance, gateway: BinanceGateway
) -> None:
    candles = gateway.watch_candles(MARKET)
    first = asyncio.create_task(_next(candles))
    await venue.wait_for(lambda: "btcusdt@kline_1m" in set().union(*venue.subscriptions()))
    venue.advance(1)
    got = [await asyncio.wait_for(first, 5)]
    assert await venue.faults.close_websockets("/ws*") >= 1
    venue.advance(2)  # streamed to nobody
    nxt = asyncio.create_task(_next(candles))
    await venue.wait_for(lambda: "btcusdt@kline_1m" in set().union(*venue.subscriptions()))
    venue.advance(1)
    got.append(await asyncio.wait_for(nxt, 5))
    got += [await asyncio.wait_for(anext(candles), 5) for _ in range(2)]
    steps = {b.ts_ms - a.ts_ms for a, b in itertools.pairwise(got)}
    assert steps == {60_000}
    assert got[-1].ts_ms == venue.bar()[0]
    assert venue.faults.stats.count("drop_ws") >= 1
    await candles.aclose()


async def test_rest_polling_fallback_yields_closed_candles_and_new_trades(
    venue: SandboxBinance, creds: Credentials
) -> None:
    gw = _gateway(venue, creds, use_websockets=False, poll_interval_s=0.01)
    try:
        now_bar = venue.bar()[0]
        candles = gw.watch_candles(MARKET, since_ms=now_bar)
        trades = gw.watch_trades(MARKET, since_ms=now_bar + 60_000)
        assert (await asyncio.wait_for(anext(candles), 5)).ts_ms == now_bar  # backfilled from REST
        trade_task = asyncio.create_task(_next(trades))
        books = gw.watch_order_book(MARKET, 3)
        assert (await asyncio.wait_for(anext(books), 5)).best_bid == venue.book().best_bid
        venue.advance(2)
        got = [await asyncio.wait_for(anext(candles), 5) for _ in range(2)]
        assert [c.ts_ms for c in got] == [now_bar + 60_000, now_bar + 120_000]
        trade = await asyncio.wait_for(trade_task, 5)
        ts, o, *_ = venue.bar(START_BAR + 1)
        assert (trade.ts_ms, trade.price) == (ts, o)  # the first trade of the next bar, its open
        for gen in (candles, trades, books):
            await gen.aclose()
    finally:
        await gw.close()


async def test_raw_combined_stream_shapes_and_injected_ws_drop(venue: SandboxBinance) -> None:
    url = venue.ws_url.removesuffix("/ws") + "/stream?streams=btcusdt@kline_1m/btcusdt@depth5"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        await venue.wait_for(lambda: {"btcusdt@kline_1m", "btcusdt@depth5"} in venue.subscriptions())
        await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 3})
        assert await ws.receive_json() == {"result": ["btcusdt@depth5", "btcusdt@kline_1m"], "id": 3}
        await ws.send_json({"method": "SUBSCRIBE", "params": ["nosuch@stream"], "id": 4})
        assert (await ws.receive_json())["error"]["code"] == 2
        venue.advance(1)
        kinds: dict[str, dict[str, Any]] = {}
        while len(kinds) < 2 or not kinds["btcusdt@kline_1m"]["data"]["k"]["x"]:
            msg = await asyncio.wait_for(ws.receive_json(), 5)
            kinds[msg["stream"]] = msg
        kline = kinds["btcusdt@kline_1m"]["data"]
        assert kline["e"] == "kline"
        assert kline["k"]["t"] == venue.bar()[0]
        assert kline["k"]["i"] == "1m"
        assert set(kinds["btcusdt@depth5"]["data"]) == {"lastUpdateId", "bids", "asks"}
        venue.faults.add({"path": "/stream", "kind": "drop_ws", "when": {"first": 1}})
        venue.advance(1)
        closing = await asyncio.wait_for(ws.receive(), 5)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    assert venue.faults.stats.count("drop_ws") == 1


# --------------------------------------------------------------------------- ground truth


async def test_ground_truth_endpoints_list_every_order_and_fill(
    venue: SandboxBinance, creds: Credentials, gateway: BinanceGateway
) -> None:
    await gateway.submit(
        Order(client_id="gt-1", market=MARKET, side=Side.BUY, type=OrderType.MARKET, qty=Decimal("0.001"))
    )
    with pytest.raises(VenueError):
        await gateway.submit(_limit("gt-2", Side.BUY, _below_bid(venue, "50"), "5"))  # rejected: funds
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{venue.rest_url}/_sandbox/orders") as resp:
            orders = (await resp.json())["orders"]
        async with session.get(f"{venue.rest_url}/_sandbox/fills") as resp:
            fills = (await resp.json())["fills"]
        async with session.post(f"{venue.rest_url}/_sandbox/advance", json={"bars": 3}) as resp:
            state = await resp.json()
    assert [(o["client_id"], o["status"], o["account"]) for o in orders] == [
        ("gt-1", "filled", creds.account),
        ("gt-2", "rejected", creds.account),
    ]
    assert [f["client_id"] for f in fills] == ["gt-1"]
    assert fills[0]["trade_id"] is not None
    assert Decimal(fills[0]["qty"]) == venue.fills()[0].qty
    assert state["bar_index"] == START_BAR + 3 == venue.bar_index


async def test_fill_polls_read_only_new_trades_after_the_first(
    venue: SandboxBinance, creds: Credentials, gateway: BinanceGateway
) -> None:
    """Issue 10: every fill poll re-read the account's whole trade history (``fromId`` 0), so its
    weight and payload grew with history until the venue rate-limited and banned the key."""

    async def buy(client_id: str) -> None:
        order = Order(
            client_id=client_id, market=MARKET, side=Side.BUY, type=OrderType.MARKET, qty=Decimal("0.001")
        )
        assert (await gateway.submit(order)).status is OrderStatus.FILLED
        venue.advance(1)  # a fresh book level for the next one

    for n in range(3):
        await buy(f"poll-{n}")
    first = await gateway.fills(MARKET)
    assert [f.client_id for f in first] == ["poll-0", "poll-1", "poll-2"]
    newest = max(int(f.fill_id.rsplit(":", 1)[1]) for f in first)
    await gateway.fills(MARKET)
    assert f"fromId={newest + 1}" in gateway.exchange.last_request_url  # only what came after
    await buy("poll-3")
    after = await gateway.fills(MARKET)
    assert [f.client_id for f in after] == ["poll-0", "poll-1", "poll-2", "poll-3"]
    assert [f.qty for f in after] == [f.qty for f in venue.fills(creds.account)]
