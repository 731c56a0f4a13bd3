"""The sandbox's user data stream, as real ccxt (listen keys) and a plain websocket client see it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from actors.domain.messages import OrderUpdate, UpdateKind
from actors.domain.model import OrderStatus, Side
from actors.venues.binance.gateway import BinanceGateway
from actors.venues.user_stream import StreamState, UserStreamEvent
from config.models import UserStreamConfig
from ops.sandbox.binance import Credentials, SandboxBinance
from tests.integration.sandbox.binance_support import MARKET, SYMBOL, below_bid, limit_order

EXECUTION_REPORT_FIELDS = frozenset("eEscSofqpPFgCxXrilzLnNTtIwmMOZYQV")
"""Every field Binance documents for a spot ``executionReport`` (``W`` only while on the book)."""


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def _listen(
    venue: SandboxBinance, exchange: Any, session: aiohttp.ClientSession
) -> tuple[str, aiohttp.ClientWebSocketResponse]:
    """A listen key from the real ccxt, and a socket on it the venue has registered."""
    key = str((await exchange.publicPostUserDataStream())["listenKey"])
    ws = await session.ws_connect(f"{venue.ws_url}/{key}")
    await venue.wait_for(lambda: venue.user_sockets(key) == 1)
    return key, ws


async def _events(ws: aiohttp.ClientWebSocketResponse, until: Any) -> list[dict[str, Any]]:
    """Messages of ``ws`` until one satisfies ``until`` (each within 5 s)."""
    out: list[dict[str, Any]] = []
    while True:
        msg = await ws.receive(timeout=5)
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        out.append(json.loads(msg.data))
        if until(out[-1]):
            return out


async def test_filled_order_pushes_execution_reports_with_the_documented_fields(
    venue: SandboxBinance, creds: Credentials, exchange: Any, session: aiohttp.ClientSession
) -> None:
    key, ws = await _listen(venue, exchange, session)
    assert len(key) == 60
    ask = venue.book().best_ask
    await exchange.create_order(SYMBOL, "limit", "buy", "0.001", str(ask), {"newClientOrderId": "us-1"})
    events = await _events(ws, lambda e: e.get("x") == "TRADE")
    reports = [e for e in events if e["e"] == "executionReport"]
    new, trade = reports
    assert set(new) >= EXECUTION_REPORT_FIELDS
    assert set(trade) >= EXECUTION_REPORT_FIELDS
    assert (new["x"], new["X"], new["c"], new["s"], new["S"], new["o"], new["f"]) == (
        "NEW",
        "NEW",
        "us-1",
        "BTCUSDT",
        "BUY",
        "LIMIT",
        "GTC",
    )
    assert new["t"] == -1
    assert new["N"] is None
    (mine,) = await exchange.fetch_my_trades(SYMBOL)
    assert (trade["x"], trade["X"], trade["c"]) == ("TRADE", "FILLED", "us-1")
    assert trade["t"] == mine["info"]["id"]  # the trade id REST lists: one fill, one id, both ways
    assert trade["i"] == new["i"] == mine["info"]["orderId"]
    assert Decimal(trade["l"]) == Decimal(trade["z"]) == Decimal("0.001")
    assert Decimal(trade["L"]) == ask
    assert (trade["n"], trade["N"]) == (mine["info"]["commission"], mine["info"]["commissionAsset"])
    assert trade["m"] is False  # it took the book
    assert [e["e"] for e in events] == ["executionReport", "outboundAccountPosition", "executionReport"]
    (position,) = await _events(ws, lambda e: True)  # the trade's balances follow its report
    assert position["e"] == "outboundAccountPosition"
    balances = {b["a"]: b for b in position["B"]}
    held = venue.balances(creds.account)
    assert Decimal(balances["BTC"]["f"]) == held["BTC"][0]
    assert Decimal(balances["USDT"]["f"]) == held["USDT"][0]
    await ws.close()


async def test_cancel_reports_the_request_id_and_the_original_client_id(
    venue: SandboxBinance, exchange: Any, session: aiohttp.ClientSession
) -> None:
    _key, ws = await _listen(venue, exchange, session)
    price = str(below_bid(venue, "500"))
    await exchange.create_order(SYMBOL, "limit", "buy", "0.001", price, {"newClientOrderId": "us-2"})
    await exchange.cancel_order("", SYMBOL, {"origClientOrderId": "us-2", "newClientOrderId": "us-2-x"})
    events = await _events(ws, lambda e: e.get("x") == "CANCELED")
    assert (events[-1]["X"], events[-1]["c"], events[-1]["C"]) == ("CANCELED", "us-2-x", "us-2")
    await ws.close()


async def test_listen_key_keepalive_and_close_end_the_stream(
    venue: SandboxBinance, exchange: Any, session: aiohttp.ClientSession
) -> None:
    key, ws = await _listen(venue, exchange, session)
    assert (await exchange.publicPostUserDataStream())["listenKey"] == key  # the live key, extended
    assert await exchange.publicPutUserDataStream({"listenKey": key}) == {}
    assert await exchange.publicDeleteUserDataStream({"listenKey": key}) == {}
    msg = await ws.receive(timeout=5)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    with pytest.raises(Exception, match="-1125"):
        await exchange.publicPutUserDataStream({"listenKey": key})
    assert (await exchange.publicPostUserDataStream())["listenKey"] != key


async def test_lapsed_listen_key_pushes_listen_key_expired_and_is_refused(
    venue: SandboxBinance, creds: Credentials, exchange: Any, session: aiohttp.ClientSession
) -> None:
    key, ws = await _listen(venue, exchange, session)
    venue.listen_key_expiry[key] = 0.0  # its hour is up
    await exchange.create_order(SYMBOL, "limit", "buy", "0.001", str(below_bid(venue, "500")))
    (event,) = await _events(ws, lambda e: True)
    assert (event["e"], event["listenKey"]) == ("listenKeyExpired", key)
    with pytest.raises(Exception, match="-1125"):
        await exchange.publicPutUserDataStream({"listenKey": key})
    await ws.close()


async def test_drop_ws_fault_on_the_user_stream_closes_it_instead_of_pushing(
    venue: SandboxBinance, exchange: Any, session: aiohttp.ClientSession
) -> None:
    key, ws = await _listen(venue, exchange, session)
    venue.faults.add({"path": f"/ws/{key}", "kind": "drop_ws", "when": {"first": 1}})
    await exchange.create_order(SYMBOL, "limit", "buy", "0.001", str(below_bid(venue, "500")))
    msg = await ws.receive(timeout=5)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert venue.faults.stats.count("drop_ws") == 1
    assert key in venue.listen_keys  # the socket went, the key lives: a client reconnects with it


# --------------------------------------------------------------------------- the gateway's side


async def _next(updates: AsyncIterator[UserStreamEvent]) -> UserStreamEvent:
    return await asyncio.wait_for(anext(updates), 5)


async def test_gateway_pushed_fill_is_the_polled_fill_with_the_same_id(
    venue: SandboxBinance, gateway: BinanceGateway
) -> None:
    updates = gateway.user_updates(UserStreamConfig())
    assert await _next(updates) == StreamState(connected=True, opened=1)
    ask = venue.book().best_ask
    assert ask is not None
    await gateway.submit(limit_order("gw-1", Side.BUY, ask, "0.001"))
    accepted, filled = await _next(updates), await _next(updates)
    assert isinstance(accepted, OrderUpdate)
    assert isinstance(filled, OrderUpdate)
    assert (accepted.kind, accepted.order.client_id) == (UpdateKind.ACCEPTED, "gw-1")
    assert (filled.kind, filled.order.status, filled.order.filled_qty) == (
        UpdateKind.FILL,
        OrderStatus.FILLED,
        Decimal("0.001"),
    )
    (polled,) = await gateway.fills(MARKET)
    assert filled.fill == polled  # id, price, qty, fee and its asset: one fill whichever way it came
    await updates.aclose()


async def test_gateway_user_stream_dropped_is_reopened_and_pushes_again(
    venue: SandboxBinance, gateway: BinanceGateway
) -> None:
    updates = gateway.user_updates(UserStreamConfig(reconnect_s=0.05))
    await _next(updates)
    assert gateway.user_stream is not None
    key = gateway.user_stream.listen_key
    assert await venue.faults.close_websockets(f"/ws/{key}") == 1
    assert await _next(updates) == StreamState(connected=False, opened=1)
    assert await _next(updates) == StreamState(connected=True, opened=2)
    assert gateway.user_stream.listen_key == key  # still live: Binance answers the same key
    await gateway.submit(limit_order("gw-2", Side.BUY, below_bid(venue, "500"), "0.001"))
    pushed = await _next(updates)
    assert isinstance(pushed, OrderUpdate)
    assert pushed.order.client_id == "gw-2"
    await updates.aclose()


async def test_gateway_keeps_the_listen_key_alive_and_replaces_a_closed_one(
    venue: SandboxBinance, exchange: Any, gateway: BinanceGateway
) -> None:
    updates = gateway.user_updates(UserStreamConfig(keepalive_s=0.05, reconnect_s=0.05))
    await _next(updates)
    stream = gateway.user_stream
    assert stream is not None
    key = stream.listen_key
    assert key is not None
    await venue.wait_for(lambda: stream.keepalives >= 2)
    await exchange.publicDeleteUserDataStream({"listenKey": key})  # the key is gone
    assert await _next(updates) == StreamState(connected=False, opened=1)
    assert await _next(updates) == StreamState(connected=True, opened=2)
    assert stream.listen_key not in (None, key)
    assert stream.listen_key in venue.listen_keys
    await updates.aclose()


async def test_gateway_user_stream_that_cannot_open_retries_until_it_does(
    venue: SandboxBinance, gateway: BinanceGateway
) -> None:
    venue.faults.add(
        {
            "path": "/api/v3/userDataStream",
            "method": "POST",
            "kind": "status",
            "status": 503,
            "when": {"first": 2},
        }
    )
    updates = gateway.user_updates(UserStreamConfig(reconnect_s=0.01))
    assert await _next(updates) == StreamState(connected=True, opened=1)  # no drop told for a failed open
    assert venue.faults.stats.count("status") == 2
    await updates.aclose()
