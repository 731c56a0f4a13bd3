"""Market data from the Binance sandbox (ccxt.pro streams, REST fallback) and its ground-truth endpoints."""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from actors.domain.model import Order, OrderStatus, OrderType, Side
from actors.venues.binance.client import ws_supported
from actors.venues.binance.gateway import BinanceGateway
from actors.venues.gateway import VenueError
from ops.sandbox.binance import Credentials, SandboxBinance
from tests.integration.sandbox.binance_support import (
    MARKET,
    START_BAR,
    below_bid,
    limit_order,
    make_test_gateway,
    next_item,
)

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
    candle_task = asyncio.create_task(next_item(candles))
    trade_task = asyncio.create_task(next_item(trades))
    book_task = asyncio.create_task(next_item(books))  # ccxt.pro wakes only callers already waiting
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
    first = asyncio.create_task(next_item(candles))
    await venue.wait_for(lambda: "btcusdt@kline_1m" in set().union(*venue.subscriptions()))
    venue.advance(1)
    got = [await asyncio.wait_for(first, 5)]
    assert await venue.faults.close_websockets("/ws*") >= 1
    venue.advance(2)  # streamed to nobody
    nxt = asyncio.create_task(next_item(candles))
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
    gw = make_test_gateway(venue, creds, use_websockets=False, poll_interval_s=0.01)
    try:
        now_bar = venue.bar()[0]
        candles = gw.watch_candles(MARKET, since_ms=now_bar)
        trades = gw.watch_trades(MARKET, since_ms=now_bar + 60_000)
        assert (await asyncio.wait_for(anext(candles), 5)).ts_ms == now_bar  # backfilled from REST
        trade_task = asyncio.create_task(next_item(trades))
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
        await gateway.submit(limit_order("gt-2", Side.BUY, below_bid(venue, "50"), "5"))  # rejected: funds
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
