"""The CLOB sandbox's user channel (``/ws/user``): an account's own order and trade events, in the
real shapes (tests/fixtures/polymarket/ws_user_*), driven by orders placed through the real
py-clob-client (PolymarketGateway)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import aiohttp

from tests.integration.sandbox.clob_support import (
    FIXTURES,
    OTHER_KEY,
    RECV_S,
    Sandbox,
    current_tokens,
    gateway,
    resting_buy,
    run,
    taker_buy,
)


def _user_url(sandbox: Sandbox) -> str:
    return "ws" + sandbox.host.removeprefix("http") + "/ws/user"


def _auth(gw: Any) -> dict[str, str]:
    creds = gw.client.creds
    return {"apiKey": creds.api_key, "secret": creds.api_secret, "passphrase": creds.api_passphrase}


@asynccontextmanager
async def _user_socket(
    sandbox: Sandbox, auth: dict[str, str], markets: list[str] | None = None
) -> AsyncIterator[Any]:
    async with aiohttp.ClientSession() as session, session.ws_connect(_user_url(sandbox)) as ws:
        await ws.send_str(json.dumps({"auth": auth, "markets": markets or [], "type": "user"}))
        await ws.send_str("PING")  # answered after the subscription is in: the socket is live
        pong = await asyncio.wait_for(ws.receive(), RECV_S)
        assert pong.data == "PONG"
        yield ws


async def _events(ws: Any, count: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(count):
        message = await asyncio.wait_for(ws.receive(), RECV_S)
        out.append(json.loads(message.data))
    return out


def _fixture_keys(name: str) -> set[str]:
    return set(json.loads((FIXTURES / name).read_text()))


async def test_user_channel_pushes_placement_then_cancellation_of_a_resting_order(sandbox: Sandbox) -> None:
    venue = sandbox.venue
    up, _ = current_tokens(venue)
    gw = await gateway(sandbox.host)
    async with _user_socket(sandbox, _auth(gw)) as ws:
        order = resting_buy(venue, up, "cid-user-rest", below="0.05")
        placed = await gw.submit(order)
        (placement,) = await _events(ws, 1)
        await gw.cancel(order.client_id, order.market)
        (cancellation,) = await _events(ws, 1)
    assert placement["event_type"] == "order"
    assert placement["type"] == "PLACEMENT"
    assert placement["id"] == placed.venue_order_id
    assert placement["status"] == "LIVE"
    assert placement["asset_id"] == up
    assert Decimal(placement["price"]) == order.price
    assert Decimal(placement["original_size"]) == order.qty
    assert cancellation["type"] == "CANCELLATION"
    assert cancellation["status"] == "CANCELED"
    assert cancellation["id"] == placed.venue_order_id
    real = _fixture_keys("ws_user_order_msg.json")
    assert real <= set(placement) | {"created_at", "expiration"}, real - set(placement)


async def test_user_channel_pushes_trade_with_the_rest_trade_id_for_a_taker_fill(sandbox: Sandbox) -> None:
    venue = sandbox.venue
    up, _ = current_tokens(venue)
    gw = await gateway(sandbox.host)
    order = taker_buy(venue, up, "cid-user-take")
    async with _user_socket(sandbox, _auth(gw)) as ws:
        await gw.submit(order)
        events = await _events(ws, 4)  # placement, the trade matched and confirmed, the order's update
    kinds = [(e["event_type"], e.get("status") if e["event_type"] == "trade" else e["type"]) for e in events]
    assert kinds == [
        ("order", "PLACEMENT"),
        ("trade", "MATCHED"),
        ("trade", "CONFIRMED"),
        ("order", "UPDATE"),
    ]
    trades = [e for e in events if e["event_type"] == "trade"]
    (rest_trade,) = await run(gw.client.get_trades)  # sync client: off the loop the sandbox runs on
    assert {t["id"] for t in trades} == {rest_trade["id"]}
    assert trades[0]["trader_side"] == "TAKER"
    assert Decimal(trades[0]["size"]) == 10
    assert _fixture_keys("ws_user_trade_msg.json") <= set(trades[0]) | {"transaction_hash"}
    (fill,) = await gw.fills(order.market)
    assert fill.fill_id == f"polymarket:{trades[0]['id']}:{trades[0]['taker_order_id']}"


async def test_user_channel_refuses_bad_credentials_and_keeps_accounts_apart(sandbox: Sandbox) -> None:
    venue = sandbox.venue
    up, _ = current_tokens(venue)
    mine = await gateway(sandbox.host)
    other = await gateway(sandbox.host, OTHER_KEY)
    wrong = {**_auth(mine), "secret": _auth(other)["secret"]}
    async with aiohttp.ClientSession() as session, session.ws_connect(_user_url(sandbox)) as ws:
        await ws.send_str(json.dumps({"auth": wrong, "markets": [], "type": "user"}))
        closed = await asyncio.wait_for(ws.receive(), RECV_S)
        assert closed.type is aiohttp.WSMsgType.CLOSE
        assert ws.close_code == 4001
    async with _user_socket(sandbox, _auth(mine)) as ws:
        await other.submit(resting_buy(venue, up, "cid-theirs", below="0.05"))
        await mine.submit(resting_buy(venue, up, "cid-mine", below="0.06"))
        (event,) = await _events(ws, 1)
    assert event["id"] == await mine.order_id_for(resting_buy(venue, up, "cid-mine", below="0.06"))


async def test_gateway_user_updates_push_a_taker_fill_with_its_rest_fill_id(sandbox: Sandbox) -> None:
    """PolymarketGateway.user_updates (what the live venue actor reads) against the sandbox's
    channel: a connect state, then the fill of an order placed through the gateway."""
    from actors.venues.polymarket.gateway import PolymarketGateway
    from actors.venues.user_stream import StreamState
    from config.models import UserStreamConfig
    from tests.integration.sandbox.clob_support import MAKER_KEY

    venue = sandbox.venue
    up, _ = current_tokens(venue)
    gw = PolymarketGateway(sandbox.host, MAKER_KEY, ws_url=sandbox.ws_url)
    await gw.start()
    stream = aiter(gw.user_updates(UserStreamConfig()))
    try:
        state = await asyncio.wait_for(anext(stream), RECV_S)
        assert state == StreamState(connected=True, opened=1)
        order = taker_buy(venue, up, "cid-pushed")
        await gw.submit(order)
        pushed = await asyncio.wait_for(anext(stream), RECV_S)
        while pushed.fill is None:  # the order's own events (placed, ended) come first
            pushed = await asyncio.wait_for(anext(stream), RECV_S)
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
        await gw.close()
    (polled,) = await gw.fills(order.market)
    assert pushed.fill == polled
    assert pushed.order.client_id == "cid-pushed"
    assert pushed.order.filled_qty == order.qty
