"""Orders through the Binance sandbox: lifecycles, partial fills, refusals and their error mapping."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import ccxt.async_support as ccxt_async
import pytest
from pydantic import SecretStr

from actors.domain.model import Order, OrderStatus, OrderType, Side, TimeInForce
from actors.venues.binance.gateway import BinanceGateway
from actors.venues.gateway import VenueError, VenueErrorKind
from ops.sandbox.binance import Credentials, SandboxBinance
from tests.integration.sandbox.binance_support import (
    MARKET,
    SYMBOL,
    advance_until,
    below_bid,
    ccxt_client,
    limit_order,
    make_test_gateway,
    raw_request,
    signed_query,
    status_is,
)

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

    price = below_bid(venue, "25")
    placed = await exchange.create_order(
        SYMBOL, "limit", "buy", 0.005, float(price), {"newClientOrderId": "life-1"}
    )
    assert placed["clientOrderId"] == "life-1"
    assert placed["status"] == "open"
    looked = await exchange.fetch_order("", SYMBOL, {"origClientOrderId": "life-1"})
    assert looked["id"] == placed["id"]
    assert looked["filled"] == 0.0
    assert venue.balances(creds.account)["USDT"][1] > 0  # the buy locks quote

    advance_until(venue, status_is(venue, "life-1", OrderStatus.PARTIALLY_FILLED))
    partial = await exchange.fetch_order("", SYMBOL, {"origClientOrderId": "life-1"})
    assert partial["status"] == "open"
    assert 0 < partial["filled"] < 0.005

    advance_until(venue, status_is(venue, "life-1", OrderStatus.FILLED))
    done = await exchange.fetch_order("", SYMBOL, {"origClientOrderId": "life-1"})
    assert done["status"] == "closed"
    assert done["filled"] == 0.005
    assert await exchange.fetch_open_orders(SYMBOL) == []

    trades = await exchange.fetch_my_trades(SYMBOL)
    truth = venue.fills(creds.account)
    assert [Decimal(t["info"]["qty"]) for t in trades] == [f.qty for f in truth]
    assert all(t["takerOrMaker"] == "maker" and Decimal(t["info"]["price"]) == price for t in trades)
    # a buy's commission is in BTC, as on Binance: out of the BTC bought, the USDT pays the notional
    assert all(t["fee"]["currency"] == "BTC" for t in trades)
    commission = sum(Decimal(t["info"]["commission"]) for t in trades)
    assert commission == sum(f.fee_base_qty for f in truth) > 0

    balance = await exchange.fetch_balance()
    cost = sum(f.price * f.qty for f in truth)
    usdt = next(b for b in balance["info"]["balances"] if b["asset"] == "USDT")
    btc = next(b for b in balance["info"]["balances"] if b["asset"] == "BTC")
    assert Decimal(usdt["free"]) == Decimal(10000) - cost
    assert Decimal(usdt["locked"]) == 0
    assert Decimal(btc["free"]) == Decimal("0.505") - commission


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

    order = limit_order("gw-1", Side.BUY, below_bid(venue, "25"), "0.01")
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

    advance_until(venue, status_is(venue, "gw-1", OrderStatus.PARTIALLY_FILLED))
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
    held = {asset: amount for asset, amount in balances.items() if amount}  # Binance lists zeros too
    assert held == {asset: b.total for asset, b in engine.items()}
    assert balances["ETH"] == 0  # every replayed pair's assets are listed


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
    status, body, _ = await raw_request(
        venue,
        "GET",
        "/api/v3/order",
        signed_query(creds, {"symbol": "BTCUSDT", "origClientOrderId": "mkt-2"}),
        {"X-MBX-APIKEY": creds.api_key},
    )
    assert status == 200
    assert body["status"] == "EXPIRED"


async def test_cancel_all_clears_every_open_order_then_answers_nothing(
    venue: SandboxBinance, exchange: Any, gateway: BinanceGateway
) -> None:
    await gateway.submit(limit_order("all-1", Side.BUY, below_bid(venue, "40"), "0.001"))
    await gateway.submit(limit_order("all-2", Side.SELL, below_bid(venue, "-40"), "0.001"))
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
        await gateway.submit(limit_order("po-1", Side.BUY, ask, "0.001", TimeInForce.POST_ONLY))
    assert err.value.kind is VenueErrorKind.REJECTED
    assert "immediately match" in err.value.message
    resting = await gateway.submit(
        limit_order("po-2", Side.BUY, below_bid(venue, "1"), "0.001", TimeInForce.POST_ONLY)
    )
    assert resting.status is OrderStatus.OPEN
    looked = await gateway.order("po-2", MARKET)
    assert looked is not None
    assert looked.tif is TimeInForce.POST_ONLY


# --------------------------------------------------------------------------- refusals


async def test_duplicate_client_id_refused_2010_maps_to_rejected(
    venue: SandboxBinance, exchange: Any, gateway: BinanceGateway
) -> None:
    order = limit_order("dup-1", Side.BUY, below_bid(venue, "50"), "0.001")
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
        await gateway.submit(limit_order("big-1", Side.BUY, below_bid(venue, "50"), "1"))
    assert err.value.kind is VenueErrorKind.INSUFFICIENT_FUNDS
    assert await gateway.order("big-1", MARKET) is None  # Binance keeps no rejected orders
    with pytest.raises(VenueError) as again:  # the id stays refused the same way
        await gateway.submit(limit_order("big-1", Side.BUY, below_bid(venue, "50"), "1"))
    assert again.value.kind is VenueErrorKind.INSUFFICIENT_FUNDS


async def test_wrong_signature_refused_1022_maps_to_auth(venue: SandboxBinance, creds: Credentials) -> None:
    ex = ccxt_client(venue, creds, api_secret=SecretStr("not-the-secret"))
    try:
        with pytest.raises(ccxt_async.AuthenticationError, match="-1022"):
            await ex.fetch_balance()
    finally:
        await ex.close()
    gw = make_test_gateway(venue, creds, api_secret=SecretStr("not-the-secret"))
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
    status, body, _ = await raw_request(
        venue, "GET", "/api/v3/account", signed_query(creds, {}), {"X-MBX-APIKEY": key}
    )
    assert status == 401
    assert str(body["code"]) == code
    if code == "-2015":
        gw = make_test_gateway(venue, creds, api_key=SecretStr(key))
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
    ex = ccxt_client(venue, creds)
    ex.options["timeDifference"] = 120_000  # our clock two minutes behind
    try:
        with pytest.raises(ccxt_async.InvalidNonce, match="-1021"):
            await ex.fetch_balance()
    finally:
        await ex.close()
    status, body, _ = await raw_request(
        venue,
        "GET",
        "/api/v3/account",
        signed_query(creds, {}, int(time.time() * 1000) + 5000),
        {"X-MBX-APIKEY": creds.api_key},
    )
    assert (status, body["code"]) == (400, -1021)
    assert "ahead" in body["msg"]

    gw = make_test_gateway(venue, creds)
    gw.exchange.options["timeDifference"] = 120_000
    try:
        assert (await gw.balances())["USDT"] == Decimal(10000)  # re-measured the offset, retried
        assert abs(gw.exchange.options["timeDifference"]) < 5000
    finally:
        await gw.close()
    strict = make_test_gateway(venue, creds, resync_clock=False)
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
    status, _, headers = await raw_request(venue, "GET", "/api/v3/depth", "symbol=BTCUSDT&limit=5")
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
    status, body, headers = await raw_request(venue, "GET", "/api/v3/ping")
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
        status, body, _ = await raw_request(venue, method, path, urlencode(params))
        assert (status, body["code"]) == (400, code), (path, params, body)
    status, body, _ = await raw_request(venue, "GET", "/api/v3/depth", "symbol=BTCUSDT&symbol=BTCUSDT")
    assert body["code"] == -1101
    status, body, _ = await raw_request(venue, "GET", "/api/v3/nope")
    assert status == 404
    assert "code" in body

    bid = below_bid(venue, "50")
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
        query = signed_query(creds, {"symbol": "BTCUSDT", **params})
        status, body, _ = await raw_request(venue, "POST", "/api/v3/order", query, key)
        assert (status, body["code"]) == (400, code), (params, body)
    status, body, _ = await raw_request(
        venue,
        "DELETE",
        "/api/v3/order",
        signed_query(creds, {"symbol": "BTCUSDT", "origClientOrderId": "none"}),
        key,
    )
    assert body["code"] == -2011
    status, body, _ = await raw_request(
        venue, "GET", "/api/v3/order", signed_query(creds, {"symbol": "BTCUSDT", "orderId": "77"}), key
    )
    assert body["code"] == -2013
    status, body, _ = await raw_request(venue, "GET", "/api/v3/account", "timestamp=1", key)
    assert body["code"] == -1102  # no signature
    assert venue.orders() == []
    with pytest.raises(VenueError) as err:
        await gateway.cancel("none", MARKET)
    assert err.value.kind is VenueErrorKind.NOT_FOUND
    assert await gateway.order("none", MARKET) is None
    assert (await raw_request(venue, "GET", "/api/v3/ping"))[0] == 200
