"""Binance's symbol filters: the sandbox enforces them as Binance does (-1013 "Filter failure: ..."),
and the gateway (real ccxt) adjusts or refuses every breaking order before it leaves, so the venue
never sees an order it would reject."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from actors.core.exchange_rules import Rule
from actors.domain.model import Order, OrderStatus, OrderType, Side
from actors.venues.binance.gateway import BinanceGateway
from actors.venues.gateway import OrderRefusedError, VenueErrorKind
from ops.sandbox.binance import Credentials, SandboxBinance
from tests.integration.sandbox.binance_support import (
    MARKET,
    below_bid,
    limit_order,
    raw_request,
    signed_query,
)


def _order_query(creds: Credentials, cid: str, side: str, price: Decimal | None, qty: str) -> str:
    params: dict[str, Any] = {"symbol": "BTCUSDT", "side": side, "quantity": qty, "newClientOrderId": cid}
    if price is None:
        params["type"] = "MARKET"
    else:
        params.update(type="LIMIT", timeInForce="GTC", price=str(price))
    return signed_query(creds, params)


async def test_exchange_info_lists_filters_and_avg_price_answers_binance_shape(exchange: Any) -> None:
    info = await exchange.publicGetExchangeInfo({"symbol": "BTCUSDT"})
    filters = {f["filterType"]: f for f in info["symbols"][0]["filters"]}
    assert set(filters) == {
        "PRICE_FILTER",
        "LOT_SIZE",
        "MARKET_LOT_SIZE",
        "NOTIONAL",
        "PERCENT_PRICE_BY_SIDE",
    }
    assert filters["MARKET_LOT_SIZE"] == {
        "filterType": "MARKET_LOT_SIZE",
        "minQty": "0.00000000",
        "maxQty": "63.94567891",
        "stepSize": "0.00000000",
    }
    assert filters["PERCENT_PRICE_BY_SIDE"]["bidMultiplierUp"] == "5"
    assert filters["PERCENT_PRICE_BY_SIDE"]["askMultiplierDown"] == "0.2"
    avg = await exchange.publicGetAvgPrice({"symbol": "BTCUSDT"})
    assert avg["mins"] == 5
    assert Decimal(avg["price"]) > 0
    assert set(avg) == {"mins", "price", "closeTime"}


@pytest.mark.parametrize(
    ("side", "price_of", "qty", "filter_name"),
    [
        ("BUY", lambda avg: avg.quantize(Decimal("0.01")) - Decimal("0.005"), "0.001", "PRICE_FILTER"),
        ("BUY", lambda avg: avg.quantize(Decimal("0.01")) - 100, "0.0012345", "LOT_SIZE"),
        ("BUY", lambda avg: avg.quantize(Decimal("0.01")) - 100, "0.00005", "NOTIONAL"),
        ("SELL", lambda avg: None, "0.00005", "NOTIONAL"),
        ("SELL", lambda avg: None, "63.94568", "MARKET_LOT_SIZE"),
        ("BUY", lambda avg: (avg / 10).quantize(Decimal("0.01")), "0.01", "PERCENT_PRICE_BY_SIDE"),
        ("SELL", lambda avg: (avg * 6).quantize(Decimal("0.01")), "0.001", "PERCENT_PRICE_BY_SIDE"),
    ],
)
async def test_sandbox_rejects_order_breaking_filter_with_1013(
    venue: SandboxBinance, creds: Credentials, side: str, price_of: Any, qty: str, filter_name: str
) -> None:
    price = price_of(venue.avg_price(venue.primary))
    status, body, _ = await raw_request(
        venue,
        "POST",
        "/api/v3/order",
        _order_query(creds, "raw-1", side, price, qty),
        {"X-MBX-APIKEY": creds.api_key},
    )
    assert status == 400
    assert body == {"code": -1013, "msg": f"Filter failure: {filter_name}"}
    assert venue.order_rejections == [("raw-1", -1013, f"Filter failure: {filter_name}")]
    status, truth, _ = await raw_request(venue, "GET", "/_sandbox/rejections")
    assert truth == {
        "rejections": [{"client_id": "raw-1", "code": -1013, "msg": f"Filter failure: {filter_name}"}]
    }
    assert venue.orders() == []


async def test_gateway_puts_off_tick_price_and_off_step_qty_on_the_grid_and_venue_accepts(
    venue: SandboxBinance, gateway: BinanceGateway
) -> None:
    price = below_bid(venue, "50").quantize(Decimal("0.01")) - Decimal("0.009")
    buy = await gateway.submit(limit_order("adj-buy", Side.BUY, price, "0.0012345"))
    assert buy.status is OrderStatus.OPEN
    assert buy.price == price - Decimal("0.001")  # down to the tick: never pays more than asked
    assert buy.qty == Decimal("0.00123")  # down to the step: never buys more than sized
    ask = venue.book().best_ask
    assert ask is not None
    sell_price = ask.quantize(Decimal("0.01")) + Decimal("50.001")
    sell = await gateway.submit(limit_order("adj-sell", Side.SELL, sell_price, "0.001"))
    assert sell.price == sell_price + Decimal("0.009")  # up to the tick: never sells for less
    assert venue.order_rejections == []
    assert {o.client_id: (o.price, o.qty) for o in venue.orders()} == {
        "adj-buy": (buy.price, Decimal("0.00123")),
        "adj-sell": (sell.price, Decimal("0.001")),
    }


@pytest.mark.parametrize(
    ("side", "kind", "price_of", "qty", "rule"),
    [
        (Side.BUY, OrderType.LIMIT, lambda avg: avg - 100, "0.000001", Rule.LOT_SIZE),
        (Side.BUY, OrderType.LIMIT, lambda avg: avg - 100, "0.00005", Rule.NOTIONAL),
        (Side.SELL, OrderType.MARKET, lambda avg: None, "0.00005", Rule.NOTIONAL),
        (Side.SELL, OrderType.MARKET, lambda avg: None, "63.94568", Rule.MARKET_LOT_SIZE),
        (Side.BUY, OrderType.LIMIT, lambda avg: avg / 10, "0.01", Rule.PERCENT_PRICE),
        (Side.SELL, OrderType.LIMIT, lambda avg: avg * 6, "0.001", Rule.PERCENT_PRICE),
        (Side.SELL, OrderType.LIMIT, lambda avg: Decimal(2_000_000), "0.001", Rule.PRICE_FILTER),
    ],
)
async def test_gateway_refuses_unfixable_order_locally_without_venue_rejection(
    venue: SandboxBinance,
    gateway: BinanceGateway,
    side: Side,
    kind: OrderType,
    price_of: Any,
    qty: str,
    rule: Rule,
) -> None:
    raw_price = price_of(venue.avg_price(venue.primary))
    order = Order(
        client_id="refused",
        market=MARKET,
        side=side,
        type=kind,
        price=raw_price.quantize(Decimal("0.01")) if raw_price is not None else None,
        qty=Decimal(qty),
    )
    with pytest.raises(OrderRefusedError) as refused:
        await gateway.submit(order)
    assert refused.value.kind is VenueErrorKind.REJECTED
    assert refused.value.rule == rule.value
    assert refused.value.message.startswith(f"refused before sending: {rule.value}: ")
    assert venue.order_rejections == []  # it never left
    assert venue.orders() == []


async def test_gateway_floors_market_order_onto_lot_step_and_venue_fills_it(
    venue: SandboxBinance, gateway: BinanceGateway
) -> None:
    market = Order(
        client_id="mkt-step", market=MARKET, side=Side.BUY, type=OrderType.MARKET, qty=Decimal("0.0009876")
    )
    taken = await gateway.submit(market)
    assert taken.qty == Decimal("0.00098")  # MARKET_LOT_SIZE's step is 0: LOT_SIZE's, down
    assert venue.order_rejections == []
    assert [(o.client_id, o.qty, o.status) for o in venue.orders()] == [
        ("mkt-step", Decimal("0.00098"), OrderStatus.FILLED)
    ]
