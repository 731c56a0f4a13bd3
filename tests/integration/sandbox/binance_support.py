"""Shared pieces of the Binance sandbox tests: clients on loopback, orders, raw signed requests."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlencode

import aiohttp

from actors.domain.model import Order, OrderStatus, Side, TimeInForce
from actors.venues.binance.ccxt_client import make_exchange
from actors.venues.binance.gateway import BinanceGateway
from ops.sandbox.binance import Credentials, SandboxBinance

MARKET = "binance:BTC/USDT"
SYMBOL = "BTC/USDT"
START_BAR = 100
T = TypeVar("T")


def ccxt_client(venue: SandboxBinance, creds: Credentials | None, **over: Any) -> Any:
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


def make_test_gateway(venue: SandboxBinance, creds: Credentials, **kw: Any) -> BinanceGateway:
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


def limit_order(
    client_id: str, side: Side, price: Decimal, qty: str, tif: TimeInForce = TimeInForce.GTC
) -> Order:
    return Order(client_id=client_id, market=MARKET, side=side, price=price, qty=Decimal(qty), tif=tif)


async def next_item(stream: AsyncIterator[T]) -> T:
    """``anext`` as a coroutine, for ``asyncio.create_task``."""
    return await anext(stream)


def status_is(venue: SandboxBinance, client_id: str, status: OrderStatus) -> Callable[[], bool]:
    def check() -> bool:
        order = venue.order(client_id)
        return order is not None and order.status is status

    return check


def advance_until(venue: SandboxBinance, done: Callable[[], bool], max_bars: int = 2000) -> None:
    """Replay bar by bar until ``done()``; the data is fixed, so this is deterministic."""
    for _ in range(max_bars):
        if done():
            return
        venue.advance(1)
    raise AssertionError(f"condition not reached within {max_bars} bars")


def below_bid(venue: SandboxBinance, usdt: str) -> Decimal:
    bid = venue.book().best_bid
    assert bid is not None
    return bid - Decimal(usdt)


def signed_query(creds: Credentials, params: dict[str, Any], ts_ms: int | None = None) -> str:
    query = urlencode({**params, "timestamp": ts_ms if ts_ms is not None else int(time.time() * 1000)})
    signature = hmac.new(creds.api_secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    return f"{query}&signature={signature}"


async def raw_request(
    venue: SandboxBinance, method: str, path: str, query: str = "", headers: dict[str, str] | None = None
) -> tuple[int, Any, dict[str, str]]:
    async with aiohttp.ClientSession() as session:
        url = f"{venue.rest_url}{path}" + (f"?{query}" if query else "")
        async with session.request(method, url, headers=headers or {}) as resp:
            return resp.status, await resp.json(content_type=None), dict(resp.headers)
