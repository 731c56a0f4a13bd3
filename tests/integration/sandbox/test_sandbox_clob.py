"""The Polymarket CLOB sandbox driven by the REAL py-clob-client and by PolymarketGateway.

Every test starts its own sandbox on 127.0.0.1, port 0. py-clob-client is synchronous, so its
calls run in a worker thread (``asyncio.to_thread``) while the server runs on the test's loop.
The sandbox clock only moves when a test moves it: nothing here waits on wall time.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from py_clob_client.client import ClobClient
from py_clob_client.clob_types import (
    ApiCreds,
    AssetType,
    BalanceAllowanceParams,
    BookParams,
    OpenOrderParams,
    OrderArgs,
    RequestArgs,
    TradeParams,
)
from py_clob_client.exceptions import PolyApiException
from py_clob_client.headers.headers import create_level_1_headers, create_level_2_headers
from py_clob_client.http_helpers.helpers import post
from py_clob_client.signer import Signer
from py_clob_client.utilities import order_to_json

from actors.data.live import polymarket_live
from actors.domain.model import (
    Instrument,
    Liquidity,
    Order,
    OrderBook,
    OrderStatus,
    Side,
    TimeInForce,
    floor_to,
)
from actors.venues.gateway import OrderRefusedError, VenueError, VenueErrorKind, VenueGateway
from actors.venues.polymarket.gateway import PolymarketGateway, map_error, salt_for
from actors.venues.polymarket.market_stream import (
    BookMessage,
    LastTradeMessage,
    MarketMessage,
    MarketStreamParser,
    MarketStreamStats,
    ResolvedMessage,
    TickSizeMessage,
    polymarket_market_stream,
)
from config.loader import load_settings
from ops.sandbox.clob import END_CURSOR, decode_cursor, encode_cursor
from tests.integration.sandbox.clob_support import (
    FIXTURES,
    MAKER,
    MAKER_KEY,
    OTHER_KEY,
    RECV_S,
    Sandbox,
    StartSandbox,
    current_tokens,
    find_cross,
    gateway,
    l2_client,
    resting_buy,
    run,
    taker_buy,
    until,
)


async def next_message(stream: AsyncIterator[MarketMessage]) -> MarketMessage:
    return await asyncio.wait_for(anext(stream), RECV_S)


def levels(book: Any) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
    return [(lv.price, lv.size) for lv in book.bids], [(lv.price, lv.size) for lv in book.asks]


# --------------------------------------------------------------------------- auth


async def test_l1_create_then_derive_same_creds_and_funded(sandbox: Sandbox) -> None:
    client = ClobClient(sandbox.host, chain_id=137, key=MAKER_KEY, signature_type=0)
    created = await run(client.create_or_derive_api_creds)
    again = await run(client.create_or_derive_api_creds)  # create refused -> derive
    derived = await run(client.derive_api_key)
    assert created == again == derived
    with pytest.raises(PolyApiException) as exc:
        await run(client.create_api_key)
    assert exc.value.status_code == 400
    client.set_api_creds(created)
    collateral = await run(
        client.get_balance_allowance, BalanceAllowanceParams(asset_type=AssetType.COLLATERAL)
    )
    assert collateral["balance"] == "10000000000"  # 10,000 USDC in 1e-6 units, credited once
    assert sandbox.venue.balance(MAKER.address) == Decimal(10_000)


async def test_l1_signature_of_another_key_refused(sandbox: Sandbox) -> None:
    headers = create_level_1_headers(Signer(OTHER_KEY, 137))
    headers["POLY_ADDRESS"] = MAKER.address  # claims the maker's wallet, signed by another key
    async with (
        aiohttp.ClientSession() as http,
        http.post(sandbox.host + "/auth/api-key", headers=headers) as resp,
    ):
        assert resp.status == 401
        assert await resp.json() == {"error": "Invalid L1 Request headers"}
    assert sandbox.venue.balance(MAKER.address) == 0


async def test_wrong_l2_hmac_or_api_key_refused_401(sandbox: Sandbox) -> None:
    good = await run(l2_client, sandbox.host)
    creds = good.creds
    wrong_secret = ApiCreds(creds.api_key, base64.urlsafe_b64encode(b"x" * 32).decode(), creds.api_passphrase)
    wrong_key = ApiCreds("11111111-2222-4333-8444-555555555555", creds.api_secret, creds.api_passphrase)
    for bad in (wrong_secret, wrong_key):
        client = ClobClient(sandbox.host, chain_id=137, key=MAKER_KEY, signature_type=0, creds=bad)
        with pytest.raises(PolyApiException) as exc:
            await run(client.get_orders)
        assert exc.value.status_code == 401
        assert exc.value.error_msg == {"error": "Unauthorized/Invalid api key"}
    gw = await gateway(sandbox.host)
    gw.client.set_api_creds(wrong_secret)
    with pytest.raises(VenueError) as venue_exc:
        await gw.open_orders()
    assert venue_exc.value.kind is VenueErrorKind.AUTH
    assert await run(good.get_orders) == []  # the good creds still work


# --------------------------------------------------------------------------- public market data


async def test_markets_paging_returns_every_market_once(start_sandbox: StartSandbox) -> None:
    sb = await start_sandbox(page_size=100)
    client = ClobClient(sb.host)
    cursor, pages, seen = "MA==", 0, []
    while cursor != END_CURSOR:
        page = await run(client.get_markets, cursor)
        seen += [m["condition_id"] for m in page["data"]]
        cursor, pages = page["next_cursor"], pages + 1
    assert pages == 3
    assert len(seen) == len(set(seen)) == 292
    one = await run(client.get_market, seen[5])
    assert one["condition_id"] == seen[5]
    assert len(one["tokens"]) == 2
    assert one["closed"] is False
    assert one["neg_risk"] is False
    assert one["minimum_order_size"] == 5
    assert (decode_cursor(encode_cursor(200)), decode_cursor(END_CURSOR)) == (200, -1)
    with pytest.raises(PolyApiException) as exc:
        await run(client.get_markets, "!!not-base64")
    assert exc.value.status_code == 400


async def test_book_midpoint_price_tick_negrisk_fee_match_model(sandbox: Sandbox) -> None:
    venue = sandbox.venue
    up, down = current_tokens(venue)
    client = ClobClient(sandbox.host)
    summary = await run(client.get_order_book, up)
    book = venue.current_book(up)
    assert summary.asset_id == up
    assert summary.tick_size == "0.01"
    assert summary.min_order_size == "5"
    assert Decimal(summary.bids[-1].price) == book.best_bid  # best last, as the real CLOB lists it
    assert Decimal(summary.asks[-1].price) == book.best_ask
    assert client.get_order_book_hash(summary) == summary.hash
    assert Decimal((await run(client.get_midpoint, up))["mid"]) == book.mid
    assert Decimal((await run(client.get_price, up, "BUY"))["price"]) == book.best_bid
    assert Decimal((await run(client.get_price, up, "SELL"))["price"]) == book.best_ask
    assert await run(client.get_tick_size, up) == "0.01"
    assert await run(client.get_neg_risk, up) is False
    assert await run(client.get_fee_rate_bps, up) == 1000
    books = await run(client.get_order_books, [BookParams(token_id=up), BookParams(token_id=down)])
    assert [b.asset_id for b in books] == [up, down]
    assert Decimal(books[1].asks[-1].price) == 1 - book.best_bid  # Down mirrors Up
    with pytest.raises(PolyApiException) as exc:
        await run(client.get_order_book, "12345")
    assert exc.value.status_code == 400
    gw = await gateway(sandbox.host)
    assert levels(await gw.order_book(f"polymarket:{up}")) == levels(book)
    assert await gw.tick_size(f"polymarket:{up}") == Decimal("0.01")
    assert await gw.fee_rate_bps(f"polymarket:{up}") == 1000
    instruments = {i.symbol: i for i in await gw.instruments()}
    assert instruments[up].outcome == "Up"
    assert instruments[up].min_size == 5
    assert instruments[up].end_ms == venue.open_markets()[0].end_ms


# --------------------------------------------------------------------------- orders


async def test_limit_order_partially_filled_then_rest_cancelled(sandbox: Sandbox) -> None:
    venue = sandbox.venue
    gw = await gateway(sandbox.host)
    token, price, cross_ms = find_cross(venue, current_tokens(venue), horizon_s=280)
    crossing = sum(lv.size for lv in venue.model_book_at(token, cross_ms).asks if lv.price <= price)
    qty = crossing + 50
    market = f"polymarket:{token}"
    order = Order(client_id="cid-lifecycle", market=market, side=Side.BUY, price=price, qty=qty)

    placed = await gw.submit(order)
    assert placed.status is OrderStatus.OPEN
    assert placed.client_id == order.client_id
    assert placed.venue_order_id == await gw.order_id_for(order)
    looked = await gw.order(order.client_id, market)
    assert looked is not None
    assert looked.status is OrderStatus.OPEN
    assert looked.filled_qty == 0
    assert [o.client_id for o in await gw.open_orders(market)] == [order.client_id]

    venue.advance_to(cross_ms - 1000)
    assert (await gw.order(order.client_id, market)).filled_qty == 0  # type: ignore[union-attr]
    venue.advance_to(cross_ms)
    partial = await gw.order(order.client_id, market)
    assert partial is not None
    assert partial.status is OrderStatus.PARTIALLY_FILLED
    assert partial.filled_qty == crossing

    fills = await gw.fills(market)
    truth = venue.fills()
    assert sum(f.qty for f in fills) == crossing == sum(Decimal(f["qty"]) for f in truth)
    assert {f.price for f in fills} == {price}
    assert {f.liquidity for f in fills} == {Liquidity.MAKER}
    assert all(f.client_id == order.client_id and f.fee == 0 for f in fills)
    assert len({f.fill_id for f in fills}) == len(fills) == len(truth)
    assert all(
        f.fill_id.startswith("polymarket:") and f.fill_id.endswith(placed.venue_order_id or "") for f in fills
    )

    cancelled = await gw.cancel(order.client_id, market)
    assert cancelled.status is OrderStatus.CANCELLED
    assert cancelled.filled_qty == crossing
    assert await gw.open_orders(market) == []
    balances = await gw.balances()
    assert balances[token] == crossing
    assert balances["USDC"] == Decimal(10_000) - crossing * price
    assert venue.open_orders() == []


async def test_open_orders_and_trades_listed_across_pages(start_sandbox: StartSandbox) -> None:
    sb = await start_sandbox(initial_usdc=10_000, page_size=2)
    venue = sb.venue
    up, down = current_tokens(venue)
    client = await run(l2_client, sb.host)
    bid = venue.current_book(up).best_bid
    ask = venue.current_book(down).best_ask
    assert bid is not None
    assert ask is not None
    for i in range(5):  # resting buys, one tick apart
        signed = await run(
            client.create_order,
            OrderArgs(token_id=up, price=float(bid - i * Decimal("0.01")), size=10, side="BUY"),
        )
        assert (await run(client.post_order, signed))["status"] == "live"
    for size in (5, 6, 7):  # marketable buys: three taker trades
        signed = await run(
            client.create_order, OrderArgs(token_id=down, price=float(ask), size=size, side="BUY")
        )
        assert (await run(client.post_order, signed))["status"] == "matched"
    open_orders = await run(client.get_orders)  # the client follows next_cursor to LTE=
    assert len(open_orders) == 5
    assert {o["asset_id"] for o in open_orders} == {up}
    assert len(await run(client.get_orders, OpenOrderParams(asset_id=down))) == 0
    trades = await run(client.get_trades)
    assert sorted(Decimal(t["size"]) for t in trades) == [5, 6, 7]
    assert {t["trader_side"] for t in trades} == {"TAKER"}
    assert len(await run(client.get_trades, TradeParams(asset_id=up))) == 0
    one = await run(client.get_order, open_orders[0]["id"])
    assert one["status"] == "LIVE"
    assert one["original_size"] == "10.00"


async def test_same_signed_order_posted_twice_is_one_order(sandbox: Sandbox) -> None:
    venue = sandbox.venue
    up, _ = current_tokens(venue)
    client = await run(l2_client, sandbox.host)
    bid = venue.current_book(up).best_bid
    assert bid is not None
    signed = await run(client.create_order, OrderArgs(token_id=up, price=float(bid), size=20, side="BUY"))
    first = await run(client.post_order, signed)
    with pytest.raises(PolyApiException) as exc:
        await run(client.post_order, signed)
    assert exc.value.status_code == 400
    assert "Duplicated" in exc.value.error_msg["errorMsg"]
    assert exc.value.error_msg["success"] is False
    assert exc.value.error_msg["orderID"] is None
    assert [o["id"] for o in venue.orders()] == [first["orderID"]]

    gw = await gateway(sandbox.host)
    order = Order(client_id="cid-twice", market=f"polymarket:{up}", side=Side.BUY, price=bid, qty=Decimal(30))
    one, two = await gw.submit(order), await gw.submit(order)
    assert one.venue_order_id == two.venue_order_id
    assert len(venue.orders()) == 2  # the client's order and the gateway's, each once
    assert venue.balance(MAKER.address) == Decimal(10_000)  # resting buys hold, they do not spend


async def test_deterministic_salt_same_order_id_across_gateway_restarts(sandbox: Sandbox) -> None:
    venue = sandbox.venue
    up, _ = current_tokens(venue)
    bid = venue.current_book(up).best_bid
    assert bid is not None
    order = Order(
        client_id="cid-restart", market=f"polymarket:{up}", side=Side.BUY, price=bid, qty=Decimal(25)
    )
    first = await gateway(sandbox.host)
    placed = await first.submit(order)
    await first.close()

    second = await gateway(sandbox.host)  # a restarted process: no memory of the order
    assert await second.order(order.client_id, order.market) is None
    assert await second.order_id_for(order) == placed.venue_order_id
    again = await second.submit(order)  # the retry after a crash: the venue says Duplicated
    assert again.venue_order_id == placed.venue_order_id
    assert again.client_id == order.client_id
    assert len(venue.orders()) == 1
    cancelled = await second.cancel(order.client_id, order.market)
    assert cancelled.status is OrderStatus.CANCELLED
    other = order.model_copy(update={"client_id": "cid-restart-2"})
    assert await second.order_id_for(other) != placed.venue_order_id
    assert salt_for("cid-restart") == salt_for("cid-restart") < 2**53


async def test_order_signed_by_another_key_refused(sandbox: Sandbox) -> None:
    venue = sandbox.venue
    up, _ = current_tokens(venue)
    maker = await run(l2_client, sandbox.host)
    other = ClobClient(sandbox.host, chain_id=137, key=OTHER_KEY, signature_type=0)
    bid = float(venue.current_book(up).best_bid or 0)
    foreign = await run(other.create_order, OrderArgs(token_id=up, price=bid, size=10, side="BUY"))

    with pytest.raises(PolyApiException) as exc:  # signed and made by OTHER, sent with MAKER's key
        await run(maker.post_order, foreign)
    assert exc.value.status_code == 400
    assert exc.value.error_msg["error"] == "the order signer address has to be the address of the API KEY"

    body = order_to_json(foreign, maker.creds.api_key, "GTC")
    body["order"]["maker"] = body["order"]["signer"] = MAKER.address  # OTHER's signature kept
    serialized = json.dumps(body, separators=(",", ":"))
    args = RequestArgs(method="POST", request_path="/order", body=body, serialized_body=serialized)
    headers = create_level_2_headers(maker.signer, maker.creds, args)
    with pytest.raises(PolyApiException) as tampered:
        await run(post, sandbox.host + "/order", headers, serialized)
    assert tampered.value.status_code == 400
    assert tampered.value.error_msg["error"] == "invalid signature"
    assert venue.orders() == []


async def test_order_below_minimum_size_rejected_by_venue_and_refused_by_gateway(sandbox: Sandbox) -> None:
    venue = sandbox.venue
    up, _ = current_tokens(venue)
    client = await run(l2_client, sandbox.host)
    bid = venue.current_book(up).best_bid
    assert bid is not None
    small = await run(client.create_order, OrderArgs(token_id=up, price=float(bid), size=1, side="BUY"))
    with pytest.raises(PolyApiException) as exc:
        await run(client.post_order, small)
    assert "lower than the minimum" in exc.value.error_msg["errorMsg"]
    gw = await gateway(sandbox.host)
    rejected_by_venue = len(venue.order_rejections)
    small_order = Order(
        client_id="cid-small", market=f"polymarket:{up}", side=Side.BUY, price=bid, qty=Decimal(1)
    )
    with pytest.raises(OrderRefusedError) as refused:
        await gw.submit(small_order)
    assert refused.value.kind is VenueErrorKind.REJECTED
    assert refused.value.rule == "lot_size"
    assert len(venue.order_rejections) == rejected_by_venue  # refused before it left
    broke = Order(
        client_id="cid-broke", market=f"polymarket:{up}", side=Side.BUY, price=bid, qty=Decimal(100_000)
    )
    with pytest.raises(VenueError) as funds:
        await gw.submit(broke)
    assert funds.value.kind is VenueErrorKind.INSUFFICIENT_FUNDS
    assert venue.orders() == []


async def test_immediate_order_takes_book_as_taker_with_fee(sandbox: Sandbox) -> None:
    venue = sandbox.venue
    up, _ = current_tokens(venue)
    gw = await gateway(sandbox.host)
    order = taker_buy(venue, up, "cid-ioc")
    ask = order.price
    done = await gw.submit(order)
    assert done.status is OrderStatus.FILLED
    assert done.filled_qty == 10
    (fill,) = await gw.fills(order.market)
    (truth,) = venue.fills()
    assert fill.liquidity is Liquidity.TAKER
    assert fill.price == ask
    assert fill.fee == Decimal(truth["fee"]) > 0  # the gateway charges what the venue charged


async def test_venue_faults_map_to_retryable_kinds(sandbox: Sandbox) -> None:
    gw = await gateway(sandbox.host)
    sandbox.faults.add({"path": "/data/orders", "kind": "status", "status": 503, "when": {"first": 1}})
    sandbox.faults.add({"path": "/data/orders", "kind": "status", "status": 429, "when": {"first": 2}})
    with pytest.raises(VenueError) as unavailable:
        await gw.open_orders()
    with pytest.raises(VenueError) as limited:
        await gw.open_orders()
    assert unavailable.value.kind is VenueErrorKind.UNAVAILABLE
    assert unavailable.value.retryable
    assert limited.value.kind is VenueErrorKind.RATE_LIMITED
    assert limited.value.retryable
    assert await gw.open_orders() == []
    assert map_error(PolyApiException(error_msg="Request exception!")).kind is VenueErrorKind.UNAVAILABLE


async def test_bad_input_answered_with_errors_never_crashes(sandbox: Sandbox) -> None:
    client = await run(l2_client, sandbox.host)
    garbage = [
        "",
        "{",
        "[]",
        '{"order": 5}',
        '{"order": {"salt": -1}, "owner": "x"}',
        json.dumps({"order": {}, "owner": client.creds.api_key}),
    ]
    statuses = []
    async with aiohttp.ClientSession() as http:
        for body in garbage:
            args = RequestArgs(method="POST", request_path="/order", serialized_body=body or None)
            headers = create_level_2_headers(client.signer, client.creds, args)
            async with http.post(sandbox.host + "/order", data=body, headers=headers) as resp:
                statuses.append(resp.status)
                assert "error" in await resp.json()
        for path in (
            "/book?token_id=abc",
            "/markets?next_cursor=%%%",
            "/price?token_id=1&side=UP",
            "/nowhere",
        ):
            async with http.get(sandbox.host + path) as resp:
                assert resp.status in (400, 404)
                assert "error" in await resp.json()
        async with http.delete(sandbox.host + "/order", data="{not json") as resp:
            assert resp.status == 401  # authentication comes first
        async with http.get(sandbox.host + "/time") as resp:
            assert resp.status == 200
            assert await resp.json() == sandbox.venue.now_ms // 1000
    assert statuses == [400] * len(garbage)


# --------------------------------------------------------------------------- market channel


async def test_market_ws_book_and_price_change_parsed_into_books(sandbox: Sandbox) -> None:
    venue = sandbox.venue
    up, down = current_tokens(venue)
    stats = MarketStreamStats()
    stream = polymarket_market_stream(sandbox.ws_url, [up, down], stats=stats, reconnect=False)
    try:
        snapshots = [await next_message(stream), await next_message(stream)]
        assert all(isinstance(m, BookMessage) and m.kind == "book" for m in snapshots)
        by_asset = {m.asset_id: m for m in snapshots if isinstance(m, BookMessage)}
        assert levels(by_asset[up].book) == levels(venue.current_book(up))
        assert levels(by_asset[down].book) == levels(venue.current_book(down))

        venue.advance(1)  # the modelled depth is re-drawn every second: sizes change
        changed: dict[str, BookMessage] = {}
        while len(changed) < 2:
            message = await next_message(stream)
            assert isinstance(message, BookMessage)
            assert message.kind == "price_change"
            changed[message.asset_id] = message
        for token in (up, down):
            assert levels(changed[token].book) == levels(venue.current_book(token))
            assert changed[token].book.ts_ms == venue.book_ms
        assert stats.malformed == 0
        assert stats.messages == 4
    finally:
        await stream.aclose()


async def test_malformed_ws_messages_rejected_and_counted(sandbox: Sandbox) -> None:
    venue = sandbox.venue
    up, _ = current_tokens(venue)
    condition = venue.open_markets()[0].condition_id
    stats = MarketStreamStats()
    stream = polymarket_market_stream(sandbox.ws_url, [up], stats=stats, reconnect=False)
    try:
        assert isinstance(await next_message(stream), BookMessage)
        bad = [
            "definitely not json",
            '{"event_type": "book"}',
            "[1, 2]",
            json.dumps(
                {
                    "event_type": "price_change",
                    "market": condition,
                    "timestamp": "1",
                    "price_changes": [{"asset_id": up, "price": "abc", "size": "1", "side": "BUY"}],
                }
            ),
            json.dumps(
                {
                    "event_type": "last_trade_price",
                    "market": condition,
                    "asset_id": up,
                    "price": "1.5",
                    "size": "1",
                    "side": "BUY",
                    "timestamp": "1",
                }
            ),
        ]
        for text in bad:
            assert venue.inject_ws_raw(text) == 1
        venue.inject_ws_raw(
            json.dumps({"event_type": "best_bid_ask", "market": condition})
        )  # unknown: ignored
        good = {
            "event_type": "tick_size_change",
            "market": condition,
            "asset_id": up,
            "old_tick_size": "0.01",
            "new_tick_size": "0.001",
            "timestamp": "1784851200000",
        }
        venue.inject_ws_raw(json.dumps(good))
        message = await next_message(stream)  # the stream survived every bad frame
        assert isinstance(message, TickSizeMessage)
        assert message.new_tick_size == Decimal("0.001")
        assert stats.malformed == 6
        assert stats.ignored == 1
    finally:
        await stream.aclose()


def test_stream_parser_reads_every_fixture_shape() -> None:
    parser = MarketStreamParser()
    fixture = {p.stem: p.read_text() for p in FIXTURES.glob("ws_*.json")}
    (book,) = parser.feed(fixture["ws_market_book_msg"])
    assert isinstance(book, BookMessage)
    assert book.book.best_bid == Decimal("0.50")
    (changed,) = parser.feed(fixture["ws_market_price_change_msg"])
    assert isinstance(changed, BookMessage)
    assert changed.book.best_bid == Decimal("0.51")
    assert changed.book.bids[0].size == Decimal("150.0")
    (trade,) = parser.feed(fixture["ws_market_last_trade_msg"])
    assert isinstance(trade, LastTradeMessage)
    assert trade.side is Side.BUY
    assert trade.size == 25
    (tick,) = parser.feed(fixture["ws_market_tick_size_msg"])
    assert isinstance(tick, TickSizeMessage)
    assert tick.old_tick_size == Decimal("0.1")
    (resolved,) = parser.feed(fixture["ws_market_resolved_msg"])
    assert isinstance(resolved, ResolvedMessage)
    assert [s.payout for s in resolved.settlements()] == [1, 0]
    (snapshot,) = parser.feed(fixture["ws_book_snapshot"])  # the older frame without event_type
    assert isinstance(snapshot, BookMessage)
    assert snapshot.book.best_ask == Decimal("0.51")
    assert parser.feed(fixture["ws_market_best_bid_ask_msg"]) == []
    assert parser.feed(fixture["ws_market_new_market_msg"]) == []
    assert parser.feed(b"\xff\xfe") == []
    assert parser.feed("PONG") == []
    assert parser.stats.malformed == 1
    assert parser.stats.ignored == 2


# --------------------------------------------------------------------------- settlement


async def test_settlement_pays_winning_token_and_cancels_open_orders(sandbox: Sandbox) -> None:
    venue = sandbox.venue
    window = venue.open_markets()[0]
    up, down = window.token_ids
    gw = await gateway(sandbox.host)
    stream = polymarket_market_stream(sandbox.ws_url, [up], reconnect=False)
    try:
        assert isinstance(await next_message(stream), BookMessage)
        bought = {}
        for token in (up, down):
            ask = venue.current_book(token).best_ask
            assert ask is not None
            order = Order(
                client_id=f"cid-buy-{token[:6]}",
                market=f"polymarket:{token}",
                side=Side.BUY,
                price=ask,
                qty=Decimal(20),
                tif=TimeInForce.IOC,
            )
            assert (await gw.submit(order)).status is OrderStatus.FILLED
            bought[token] = order
        # a resting sell the model's bid (at most 1 - tick - half-spread) can never reach
        resting = Order(
            client_id="cid-resting",
            market=f"polymarket:{up}",
            side=Side.SELL,
            price=Decimal("0.99"),
            qty=Decimal(10),
        )
        await gw.submit(resting)
        before = await gw.balances()
        assert before[up] == before[down] == 20

        venue.advance_to(window.end_ms)
        resolved = None
        while resolved is None:
            message = await next_message(stream)
            if isinstance(message, ResolvedMessage):
                resolved = message
        winner = up if window.outcome == "Up" else down
        assert resolved.winning_asset_id == winner
        assert resolved.condition_id == window.condition_id
        after = await gw.balances()
        assert up not in after
        assert down not in after
        assert after["USDC"] == before["USDC"] + 20  # 20 winning shares pay 1 USDC each
        payouts = {p.token: p.usdc for p in venue.payouts()}
        assert payouts == {winner: Decimal(20), (down if winner == up else up): Decimal(0)}
        final = await gw.order(resting.client_id, resting.market)
        assert final is not None
        assert final.status is OrderStatus.CANCELLED
        closed = await run(ClobClient(sandbox.host).get_market, window.condition_id)
        assert closed["closed"] is True
        assert closed["accepting_orders"] is False
        assert [t["winner"] for t in closed["tokens"]] == [winner == up, winner == down]
        late = Order(
            client_id="cid-late",
            market=f"polymarket:{up}",
            side=Side.BUY,
            price=Decimal("0.5"),
            qty=Decimal(10),
        )
        with pytest.raises(VenueError):
            await gw.submit(late)
    finally:
        await stream.aclose()


# --------------------------------------------------------------------------- faults, clock, truth


async def test_lost_order_answer_then_lookup_and_resend_one_order(sandbox: Sandbox) -> None:
    venue = sandbox.venue
    up, _ = current_tokens(venue)
    gw = await gateway(sandbox.host)
    assert isinstance(gw, VenueGateway)
    bid = venue.current_book(up).best_bid
    assert bid is not None
    order = Order(client_id="cid-lost", market=f"polymarket:{up}", side=Side.BUY, price=bid, qty=Decimal(15))
    sandbox.faults.add({"path": "/order", "method": "POST", "kind": "lose_answer", "when": {"first": 1}})
    with pytest.raises(VenueError) as lost:
        await gw.submit(order)
    assert lost.value.retryable  # the order WAS placed; the answer never came back
    found = await gw.order(order.client_id, order.market)
    assert found is not None
    assert found.status is OrderStatus.OPEN
    again = await gw.submit(order)  # a blind re-send is harmless too: same hash, Duplicated
    assert again.venue_order_id == found.venue_order_id
    assert len(venue.orders()) == 1
    assert sandbox.faults.stats.count("lose_answer") == 1


async def test_ground_truth_and_clock_endpoints_answer_json(sandbox: Sandbox) -> None:
    venue = sandbox.venue
    up, _ = current_tokens(venue)
    gw = await gateway(sandbox.host)
    ask = venue.current_book(up).best_ask
    assert ask is not None
    order = Order(
        client_id="cid-truth",
        market=f"polymarket:{up}",
        side=Side.BUY,
        price=ask,
        qty=Decimal(5),
        tif=TimeInForce.IOC,
    )
    placed = await gw.submit(order)
    start = venue.now_ms
    async with aiohttp.ClientSession() as http:
        async with http.get(sandbox.host + "/_sandbox/orders") as resp:
            orders = (await resp.json())["orders"]
        async with http.get(sandbox.host + "/_sandbox/fills") as resp:
            fills = (await resp.json())["fills"]
        async with http.get(sandbox.host + f"/_sandbox/balances?address={MAKER.address}") as resp:
            balances = (await resp.json())["balances"]
        async with http.post(sandbox.host + "/_sandbox/clock", json={"advance_s": 5}) as resp:
            clock = await resp.json()
    assert [o["id"] for o in orders] == [placed.venue_order_id]
    assert orders[0]["status"] == "MATCHED"
    assert [f["order_id"] for f in fills] == [placed.venue_order_id]
    assert Decimal(balances[up]["total"]) == 5
    assert clock["now_ms"] == start + 5000 == venue.now_ms


async def test_background_clock_moves_books_without_being_driven(start_sandbox: StartSandbox) -> None:
    sb = await start_sandbox(speed=600.0)  # ten sandbox minutes a wall second
    up, _ = current_tokens(sb.venue)
    start = sb.venue.now_ms
    stream = polymarket_market_stream(sb.ws_url, [up], reconnect=False)
    try:
        assert isinstance(await next_message(stream), BookMessage)
        message = await next_message(stream)  # nobody advances the clock here: the task does
        assert isinstance(message, BookMessage | ResolvedMessage)
        assert sb.venue.now_ms > start
    finally:
        await stream.aclose()


# --------------------------------------------------------------------------- tick size changes


async def test_tick_change_pushed_then_order_off_the_new_tick_rejected_by_sandbox(sandbox: Sandbox) -> None:
    venue = sandbox.venue
    up, _ = current_tokens(venue)
    client = await run(l2_client, sandbox.host)
    assert await run(client.get_tick_size, up) == "0.01"  # py-clob-client now caches it for 300 s
    stream = polymarket_market_stream(sandbox.ws_url, [up], reconnect=False)
    try:
        assert isinstance(await next_message(stream), BookMessage)
        venue.set_tick_size(up, "0.1")
        change = await next_message(stream)
        assert isinstance(change, TickSizeMessage)
        assert (change.asset_id, change.old_tick_size, change.new_tick_size) == (
            up,
            Decimal("0.01"),
            Decimal("0.1"),
        )
    finally:
        await stream.aclose()
    off = resting_buy(venue, up, "raw", "0.02", off="0.1").price
    assert off is not None
    stale = await run(client.create_order, OrderArgs(token_id=up, price=float(off), size=10, side="BUY"))
    with pytest.raises(PolyApiException) as exc:
        await run(client.post_order, stale)
    assert "breaks minimum tick size rule: 0.1" in exc.value.error_msg["errorMsg"]
    assert venue.order_rejections == [exc.value.error_msg["errorMsg"]]


async def test_gateway_follows_pushed_tick_change_next_order_on_new_tick_accepted(sandbox: Sandbox) -> None:
    venue = sandbox.venue
    up, _ = current_tokens(venue)
    gw = PolymarketGateway(sandbox.host, MAKER_KEY, ws_url=sandbox.ws_url)
    await gw.start()
    try:
        first = await gw.submit(resting_buy(venue, up, "tick-1", "0.05"))
        assert first.status is OrderStatus.OPEN
        await until(lambda: up in venue.subscribed_assets())  # the gateway watches what it trades

        venue.set_tick_size(up, "0.1")  # coarser: an order on the old tick would be rejected
        await until(lambda: gw.known_tick(up) == Decimal("0.1"))
        order = resting_buy(venue, up, "tick-2", "0.02", off="0.1")
        assert order.price is not None
        coarse = await gw.submit(order)
        assert coarse.status is OrderStatus.OPEN
        assert coarse.price == floor_to(order.price, Decimal("0.1"))  # down to the new tick: a buy

        venue.set_tick_size(up, "0.001")  # finer: a price the old tick had no room for is valid now
        await until(lambda: gw.known_tick(up) == Decimal("0.001"))
        fine_order = resting_buy(venue, up, "tick-3", "0.045", "0.001")
        fine = await gw.submit(fine_order)
        assert fine.price == fine_order.price
        assert fine.price is not None
        assert fine.price % Decimal("0.01") != 0
        assert await gw.tick_size(f"polymarket:{up}") == Decimal("0.001")
        assert venue.order_rejections == []
        assert {o["id"] for o in venue.orders()} >= {
            first.venue_order_id,
            coarse.venue_order_id,
            fine.venue_order_id,
        }
    finally:
        await gw.close()


async def test_gateway_without_market_channel_signs_on_stale_tick_and_is_rejected(sandbox: Sandbox) -> None:
    venue = sandbox.venue
    up, _ = current_tokens(venue)
    gw = await gateway(sandbox.host)  # no ws_url: the tick is py-clob-client's 300 s cache
    await gw.submit(resting_buy(venue, up, "stale-1", "0.05"))
    venue.set_tick_size(up, "0.1")
    order = resting_buy(venue, up, "stale-2", "0.02", off="0.1")
    with pytest.raises(VenueError) as exc:
        await gw.submit(order)
    assert not isinstance(exc.value, OrderRefusedError)  # it went out, and came back rejected
    assert "breaks minimum tick size rule" in exc.value.message
    assert len(venue.order_rejections) == 1


async def test_live_polymarket_feed_yields_instrument_on_new_tick_after_change(sandbox: Sandbox) -> None:
    venue = sandbox.venue
    up, _ = current_tokens(venue)
    settings = load_settings(
        None,
        env={"RAYTRADER_SECRETS__POLYMARKET_PRIVATE_KEY": MAKER_KEY},
        overrides=[f'live.polymarket.url="{sandbox.host}"', f'live.polymarket.ws_url="{sandbox.ws_url}"'],
    )
    feed = polymarket_live(settings, "polymarket", None)
    try:
        listed: dict[str, Instrument] = {}
        while True:  # the listing, then the books of the subscription
            event = await asyncio.wait_for(anext(feed), RECV_S)
            if isinstance(event, Instrument):
                listed[event.symbol] = event
            elif isinstance(event, OrderBook) and event.market == f"polymarket:{up}":
                break
        assert listed[up].tick_size == Decimal("0.01")
        venue.set_tick_size(up, "0.1")
        while not isinstance(event, Instrument):
            event = await asyncio.wait_for(anext(feed), RECV_S)
        assert event == listed[up].model_copy(update={"tick_size": Decimal("0.1")})
    finally:
        await feed.aclose()
