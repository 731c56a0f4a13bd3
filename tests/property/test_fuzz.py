"""Hardening by fuzzing: venue message parsers, both sandbox venues and the domain models.

Every input here is something a venue, a client or a bug could send: malformed JSON, missing
fields, NaN/inf/negative prices and sizes, huge numbers, wrong types. The properties:

* the Polymarket market-channel parser never raises; whatever it refuses is counted, and a refused
  message leaves its books exactly as they were (nothing is written);
* the sandboxes answer every request with JSON, a 4xx (never a 5xx from an unhandled exception)
  for what they refuse, and a refused request leaves their ground truth (orders, fills, balances)
  unchanged;
* the domain models refuse NaN, infinite, zero or negative prices and sizes;
* the Binance gateway's parsing of ccxt results either builds valid domain objects or raises a
  plain error, never passes a non-finite amount on.

The sandboxes run in a server thread with its own event loop, so hypothesis can drive them with a
plain blocking HTTP client; their state is read on that loop's thread.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import http.client
import json
import math
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from decimal import Decimal
from fractions import Fraction
from types import SimpleNamespace
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import pytest
from aiohttp import WSMsgType, web
from eth_account import Account
from eth_utils.crypto import keccak
from hypothesis import HealthCheck, assume, currently_in_test_context, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from actors.domain.model import BookLevel, Candle, Fill, Instrument, Order, OrderBook, Side, Signal
from actors.venues.binance.gateway import BinanceGateway, _candle, _instrument, dec
from actors.venues.polymarket.market_stream import (
    BookMessage,
    LastTradeMessage,
    MarketStreamParser,
    MarketStreamStats,
    ResolvedMessage,
    TickSizeMessage,
    polymarket_market_stream,
)
from ops.sandbox.binance import BookModel, SandboxBinance
from ops.sandbox.clob import EXCHANGES, ZERO_ADDRESS, SandboxClob, clob_app, hmac_signature, order_message
from tests.paths import FIXTURES, REPO_ROOT

T = TypeVar("T")
PM_FIXTURES = sorted((FIXTURES / "polymarket").glob("ws_*.json"))
FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
MAKER = Account.from_key(keccak(text="raytrader fuzz maker"))

# --------------------------------------------------------------------------- shared strategies

NASTY_TEXT = [
    "",
    " ",
    "NaN",
    "nan",
    "sNaN",
    "Infinity",
    "-Infinity",
    "inf",
    "1e999",
    "-1e999",
    "1e-999",
    "-1",
    "-0",
    "0",
    "0.0",
    "-0.0000001",
    "99999999999999999999",
    "99999999999999999999.99999999999999999999",
    "9" * 400,
    "9" * 4400,
    "0x10",
    "1_000",
    "1,5",
    "1.2.3",
    "--1",
    "+1",
    " 1",
    "１２３",
    "²",
    "٣",
    "null",
    "true",
    "[]",
    "{}",
    "\x00",
    "é",
    "💥",
    "%",
    "&",
    "=",
    "'",
    '"',
]
NASTY_NUMBERS: list[Any] = [
    math.nan,
    math.inf,
    -math.inf,
    -1,
    0,
    -0.0,
    1e308,
    -1e308,
    2**63,
    2**64 + 1,
    2**256,
    10**30,
    -(10**30),
    1e-300,
]
nasty_text = st.sampled_from(NASTY_TEXT) | st.text(max_size=12)
json_leaves = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.sampled_from(NASTY_NUMBERS) | nasty_text
)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def mutated(draw: st.DrawFn, value: Any, depth: int = 0) -> Any:
    """`value` with a few random edits: a field dropped, replaced by nonsense or a wrong type, deeper."""
    if isinstance(value, dict) and value and depth < 4:
        out = dict(value)
        for key in draw(st.lists(st.sampled_from(sorted(out)), min_size=1, max_size=3, unique=True)):
            action = draw(st.sampled_from(["drop", "replace", "recurse", "recurse"]))
            if action == "drop":
                del out[key]
            elif action == "replace":
                out[key] = draw(json_values)
            else:
                out[key] = draw(mutated(out[key], depth + 1))
        if draw(st.booleans()):
            out[draw(st.text(max_size=8))] = draw(json_values)
        return out
    if isinstance(value, list) and value and depth < 4:
        out_list = list(value)
        i = draw(st.integers(0, len(out_list) - 1))
        action = draw(st.sampled_from(["drop", "replace", "recurse", "duplicate"]))
        if action == "drop":
            del out_list[i]
        elif action == "replace":
            out_list[i] = draw(json_values)
        elif action == "duplicate":
            out_list.append(copy.deepcopy(out_list[i]))
        else:
            out_list[i] = draw(mutated(out_list[i], depth + 1))
        return out_list
    return draw(json_values)


def dumps(value: Any) -> str:
    """JSON as a venue might (mis)send it: NaN and Infinity literals included, no sorting."""
    return json.dumps(value, allow_nan=True)


# --------------------------------------------------------------------------- (a) Polymarket parser


def fixture_messages(*, user_channel: bool = True) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in PM_FIXTURES:
        if not user_channel and path.name.startswith("ws_user_"):
            continue
        doc = json.loads(path.read_text())
        out += [d for d in (doc if isinstance(doc, list) else [doc]) if isinstance(d, dict)]
    return out


MESSAGES = fixture_messages()
"""Every ws_* fixture, the user channel's too: to the market parser those are foreign input."""


def seeded_parser() -> MarketStreamParser:
    """A parser holding a book for every asset any fixture names, so diffs and resolutions apply."""
    parser = MarketStreamParser()
    assets: set[str] = set()
    for m in MESSAGES:
        for key in ("asset_id", "winning_asset_id"):
            if isinstance(m.get(key), str):
                assets.add(m[key])
        assets.update(a for a in m.get("assets_ids", []) if isinstance(a, str))
        assets.update(c["asset_id"] for c in m.get("price_changes", []) if isinstance(c, dict))
    for asset in sorted(assets):
        book = {
            "event_type": "book",
            "market": "0xfeed",
            "asset_id": asset,
            "timestamp": "1703875200000",
            "bids": [{"price": "0.40", "size": "10"}, {"price": "0.50", "size": "200"}],
            "asks": [{"price": "0.52", "size": "250"}, {"price": "0.60", "size": "10"}],
        }
        assert len(parser.feed(json.dumps(book))) == 1
    return parser


def books_of(parser: MarketStreamParser) -> dict[str, Any]:
    """Every book the parser holds, as plain data (what "nothing was written" is checked against)."""
    return {a: (dict(s.bids), dict(s.asks), s.condition_id) for a, s in parser._books.items()}


def assert_sane(messages: list[Any]) -> None:
    """Whatever the parser lets through is a finite, positive, in-range market message."""
    for m in messages:
        if isinstance(m, BookMessage):
            for level in (*m.book.bids, *m.book.asks):
                assert level.price.is_finite()
                assert 0 < level.price < 1
                assert level.size.is_finite()
                assert level.size > 0
        elif isinstance(m, LastTradeMessage):
            assert 0 < m.price < 1
            assert m.size.is_finite()
            assert m.size > 0
        elif isinstance(m, TickSizeMessage):
            assert 0 < m.new_tick_size < 1
        else:
            assert isinstance(m, ResolvedMessage)
            assert m.winning_asset_id in m.asset_ids


@FUZZ
@given(raw=st.text(max_size=300) | st.binary(max_size=300))
def test_parser_never_raises_on_arbitrary_text_or_bytes(raw: str | bytes) -> None:
    parser = MarketStreamParser()
    out = parser.feed(raw)
    assert_sane(out)
    assert parser.stats.frames == 1


@FUZZ
@given(value=json_values)
def test_parser_never_raises_on_arbitrary_json(value: Any) -> None:
    parser = seeded_parser()
    before = books_of(parser)
    stats = parser.stats
    malformed = stats.malformed
    out = parser.feed(dumps(value))
    assert_sane(out)
    if not out and stats.malformed > malformed and not isinstance(value, list):
        assert books_of(parser) == before


@FUZZ
@given(data=st.data(), index=st.integers(0, len(MESSAGES) - 1))
def test_mutated_fixture_rejected_and_counted_without_touching_books(data: st.DataObject, index: int) -> None:
    parser = seeded_parser()
    message = data.draw(mutated(MESSAGES[index]))
    before = books_of(parser)
    s = parser.stats
    counted = (s.malformed, s.ignored, s.orphaned)
    out = parser.feed(dumps(message))
    assert_sane(out)
    if not out:  # refused, ignored, or (a diff to an unknown book) orphaned: always accounted for
        assert (s.malformed, s.ignored, s.orphaned) != counted
    if s.malformed > counted[0]:
        assert out == []
        assert books_of(parser) == before, "a refused message changed the books"


def test_fixture_corpus_parses_cleanly() -> None:
    parser = seeded_parser()
    market_channel = fixture_messages(user_channel=False)
    for message in market_channel:
        assert_sane(parser.feed(json.dumps(message)))
    assert parser.stats.malformed == 0
    assert parser.stats.messages > len(market_channel) // 2


def test_resolved_without_market_refused_and_books_kept() -> None:
    """Found by the fuzzer: a market_resolved missing "market" used to drop the books, then fail."""
    parser = seeded_parser()
    resolved = next(m for m in MESSAGES if m.get("event_type") == "market_resolved")
    before = books_of(parser)
    assert parser.feed(json.dumps({k: v for k, v in resolved.items() if k != "market"})) == []
    assert parser.stats.malformed == 1
    assert books_of(parser) == before


def test_deeply_nested_frame_does_not_kill_the_process() -> None:
    """py_ecc raises the recursion limit at import; actors.domain.safety puts it back (was a SIGSEGV)."""
    code = (
        "from actors.venues.polymarket.market_stream import MarketStreamParser\n"
        "p = MarketStreamParser()\n"
        "assert p.feed('[' * 200_000) == []\n"
        "assert p.stats.malformed == 1\n"
    )
    root = REPO_ROOT
    done = subprocess.run(
        [sys.executable, "-c", code], check=False, cwd=root, capture_output=True, timeout=120
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-400:])


GARBAGE_FRAMES: list[str | bytes] = [
    "",
    "PONG",
    "{",
    "[1, 2",
    "null",
    "[]",
    '{"event_type": "book"}',
    '{"event_type": "book", "asset_id": "a", "market": "m", "timestamp": "1", "bids": [{"price": NaN, '
    '"size": "1"}], "asks": []}',
    '{"event_type": "book", "asset_id": "a", "market": "m", "timestamp": "1", "bids": [{"price": "0.5", '
    '"size": "-3"}], "asks": []}',
    '{"event_type": "last_trade_price", "asset_id": "a", "market": "m", "timestamp": "1e999", '
    '"price": "0.5", "side": "BUY", "size": "1"}',
    '{"event_type": "price_change", "market": "m", "timestamp": "1", "price_changes": [{"asset_id": "a", '
    '"price": "Infinity", "side": "BUY", "size": "1"}]}',
    '{"event_type": "tick_size_change", "asset_id": "a", "market": "m", "timestamp": "1", '
    '"new_tick_size": "-0.01"}',
    '[{"event_type": "market_resolved"}, 7, "x"]',
    "9" * 5000,
    b"\xff\xfe\x00garbage",
]
GOOD_BOOK = {
    "event_type": "book",
    "asset_id": "tok",
    "market": "0xcond",
    "timestamp": "1703875200000",
    "bids": [{"price": "0.48", "size": "10"}],
    "asks": [{"price": "0.52", "size": "12"}],
}


async def test_market_stream_survives_garbage_frames_over_a_real_websocket() -> None:
    """The stream (the feed actor's loop) goes on after every bad frame and yields the good one."""

    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        subscription = await ws.receive()
        assert subscription.type is WSMsgType.TEXT
        for frame in GARBAGE_FRAMES:
            if isinstance(frame, bytes):
                await ws.send_bytes(frame)
            else:
                await ws.send_str(frame)
        await ws.send_str(json.dumps(GOOD_BOOK))
        await ws.receive()  # hold the connection until the client goes
        return ws

    app = web.Application()
    app.router.add_get("/ws/market", ws_handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    stats = MarketStreamStats()
    stream = polymarket_market_stream(
        f"ws://127.0.0.1:{port}/ws/market", ["tok"], stats=stats, reconnect=False
    )
    try:
        first = await asyncio.wait_for(anext(stream), timeout=10)
    finally:
        await stream.aclose()
        await runner.cleanup()
    assert isinstance(first, BookMessage)
    assert first.asset_id == "tok"
    assert stats.malformed >= 12
    assert stats.frames == len(GARBAGE_FRAMES) + 1


# --------------------------------------------------------------------------- sandboxes in a server thread


class Served:
    """An event loop in a daemon thread; the sandboxes live on it, the tests talk HTTP to them."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-sandbox", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the loop's thread: the sandbox's state is only touched there."""

        async def wrapper() -> T:
            return fn()

        return self.run(wrapper())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def request(
    port: int, method: str, target: str, body: bytes | None = None, headers: dict[str, Any] | None = None
) -> tuple[int, bytes]:
    if currently_in_test_context():  # aiohttp's own HTTP parser refuses longer request lines (plain 400)
        assume(len(target) <= 8000)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def query_of(params: dict[str, str]) -> str:
    return urlencode(params, quote_via=quote)


# --------------------------------------------------------------------------- (b) Binance sandbox


class BinanceRig:
    def __init__(self, served: Served) -> None:
        self.served = served

        async def start() -> SandboxBinance:
            venue = SandboxBinance(
                start_bar=100, weight_limit=10**12, book=BookModel(level_qty=Decimal("0.01"), levels=3)
            )
            await venue.start_server()
            return venue

        self.venue = served.run(start())
        self.creds = served.call(lambda: self.venue.create_account({"USDT": "1000000", "BTC": "100"}))
        self.port = int(self.venue.rest_url.rsplit(":", 1)[1])
        bid = served.call(lambda: self.venue.book().best_bid)
        assert bid is not None
        self.bid = bid

    def truth(self) -> Any:
        v = self.venue
        return self.served.call(
            lambda: (v.ground_truth_orders(), v.ground_truth_fills(), v.balances(self.creds.account))
        )

    def signed(self, params: dict[str, str]) -> str:
        if "timestamp" not in params:
            params = {**params, "timestamp": str(int(time.time() * 1000))}
        query = query_of(params)
        signature = hmac.new(self.creds.api_secret.encode(), query.encode(), hashlib.sha256).hexdigest()
        return f"{query}&signature={signature}"

    def send(
        self, method: str, path: str, query: str = "", body: bytes | None = None, signed: bool = False
    ) -> tuple[int, Any]:
        headers = {"X-MBX-APIKEY": self.creds.api_key} if signed else {}
        status, raw = request(self.port, method, f"{path}?{query}" if query else path, body, headers)
        assert status < 500, (method, path, query, raw[:300])
        doc = json.loads(raw)
        if status >= 400:
            assert isinstance(doc, dict), doc
            assert isinstance(doc.get("code"), int), doc
            assert isinstance(doc.get("msg"), str), doc
        return status, doc


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    s = Served()
    yield s
    s.close()


@pytest.fixture(scope="module")
def binance(served: Served) -> Iterator[BinanceRig]:
    rig = BinanceRig(served)
    yield rig
    served.run(rig.venue.stop_server())


PUBLIC = [
    (
        "/api/v3/klines",
        {"symbol": "BTCUSDT", "interval": "1m", "limit": "5", "startTime": "0", "endTime": "0"},
    ),
    ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": "5"}),
    ("/api/v3/trades", {"symbol": "BTCUSDT", "limit": "5"}),
    (
        "/api/v3/aggTrades",
        {"symbol": "BTCUSDT", "limit": "5", "fromId": "1", "startTime": "1", "endTime": "1"},
    ),
    ("/api/v3/exchangeInfo", {"symbol": "BTCUSDT", "symbols": '["BTCUSDT"]'}),
    ("/api/v3/ping", {}),
    ("/api/v3/time", {}),
]
SIGNED = [
    ("GET", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": "fz-1", "orderId": "1"}),
    ("DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": "fz-1", "orderId": "1"}),
    ("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"}),
    ("DELETE", "/api/v3/openOrders", {"symbol": "BTCUSDT"}),
    ("GET", "/api/v3/account", {"omitZeroBalances": "true", "recvWindow": "5000"}),
    (
        "GET",
        "/api/v3/myTrades",
        {"symbol": "BTCUSDT", "orderId": "1", "startTime": "1", "endTime": "1", "fromId": "1", "limit": "5"},
    ),
]
ORDER_KEYS = ["side", "type", "timeInForce", "price", "quantity", "quoteOrderQty", "newOrderRespType"]


def params_strategy(base: dict[str, str], extra_keys: list[str]) -> st.SearchStrategy[dict[str, str]]:
    def stringify(value: Any) -> str:
        return value if isinstance(value, str) else dumps(value)

    texts = nasty_text | json_leaves.map(stringify)
    return st.fixed_dictionaries(
        {},
        optional={k: texts | st.just(v) for k, v in base.items()}
        | {k: texts for k in extra_keys if k not in base},
    )


@FUZZ
@given(data=st.data(), which=st.integers(0, len(PUBLIC) - 1))
def test_binance_public_endpoints_answer_json_4xx_for_nonsense(
    binance: BinanceRig, data: st.DataObject, which: int
) -> None:
    path, base = PUBLIC[which]
    params = data.draw(params_strategy(base, ["limit", "recvWindow", "x"]))
    binance.send("GET", path, query_of(params))


@FUZZ
@given(data=st.data(), which=st.integers(0, len(SIGNED) - 1))
def test_binance_signed_endpoints_refuse_nonsense_and_keep_ground_truth(
    binance: BinanceRig, data: st.DataObject, which: int
) -> None:
    method, path, base = SIGNED[which]
    params = data.draw(params_strategy(base, ["timestamp", "recvWindow", "limit"]))
    before = binance.truth()
    status, _ = binance.send(method, path, binance.signed(params), signed=True)
    if status >= 400:
        assert binance.truth() == before


@FUZZ
@given(data=st.data())
def test_binance_new_order_with_nonsense_rejected_and_nothing_recorded(
    binance: BinanceRig, data: st.DataObject
) -> None:
    base = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.001",
        "price": str(binance.bid - 50),
        "newClientOrderId": f"fz-{data.draw(st.integers(0, 10**9))}",
    }
    params = data.draw(params_strategy(base, [*ORDER_KEYS, "recvWindow", "timestamp"]))
    before = binance.truth()
    status, _ = binance.send("POST", "/api/v3/order", binance.signed(params), signed=True)
    if status >= 400:
        assert binance.truth() == before


@FUZZ
@given(
    body=st.binary(max_size=200) | json_values.map(lambda v: dumps(v).encode()),
    path=st.sampled_from(["/api/v3/order", "/api/v3/depth", "/api/v3/account", "/_sandbox/advance"]),
    key=st.sampled_from(["", "x", "é", "a" * 101]) | st.text(alphabet="abcXYZ019 ", max_size=20),
)
def test_binance_garbage_bodies_and_keys_refused(
    binance: BinanceRig, body: bytes, path: str, key: str
) -> None:
    before = binance.truth()
    headers = {"X-MBX-APIKEY": key, "Content-Type": "application/x-www-form-urlencoded"}
    method = "GET" if path == "/api/v3/depth" else "POST"
    if path == "/_sandbox/advance":  # the admin endpoint: only refusals, never a clock move, here
        body = body if not body.strip().startswith(b"{") else b'{"bars": ' + body + b"}"
    status, raw = request(binance.port, method, path, body, headers)
    assert status < 500, (path, body[:100], raw[:200])
    json.loads(raw)
    if status >= 400 and path != "/api/v3/depth":
        assert binance.truth() == before


@pytest.mark.parametrize("bars", ["Infinity", "1e400", "-Infinity", "NaN", '"x"', "[1]", "-1"])
def test_binance_admin_advance_refuses_non_finite_bars(binance: BinanceRig, bars: str) -> None:
    """Found by fuzzing: {"bars": Infinity} raised OverflowError, a plain-text 500."""
    state = binance.served.call(binance.venue.state_json)
    status, raw = request(binance.port, "POST", "/_sandbox/advance", f'{{"bars": {bars}}}'.encode())
    assert status == 400, raw
    assert "error" in json.loads(raw)
    assert binance.served.call(binance.venue.state_json)["bar_index"] == state["bar_index"]


# --------------------------------------------------------------------------- (b) Polymarket CLOB sandbox


class ClobRig:
    def __init__(self, served: Served) -> None:
        self.served = served

        async def start() -> tuple[SandboxClob, web.AppRunner]:
            venue = SandboxClob(initial_usdc=10_000)
            runner = web.AppRunner(clob_app(venue))
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            return venue, runner

        self.venue, self.runner = served.run(start())
        self.port = int(self.runner.addresses[0][1])
        self.creds = served.call(lambda: self.venue.create_api_key(MAKER.address))
        self.token = served.call(lambda: self.venue.open_markets()[0].token_ids[0])
        self.fee = self.get_json(f"/fee-rate?token_id={self.token}")["base_fee"]
        neg_risk = self.get_json(f"/neg-risk?token_id={self.token}")["neg_risk"]
        self.exchange = EXCHANGES[137][1 if neg_risk else 0]

    def get_json(self, target: str) -> Any:
        status, raw = request(self.port, "GET", target)
        assert status == 200, raw
        return json.loads(raw)

    def truth(self) -> Any:
        v = self.venue
        return self.served.call(
            lambda: (v.orders(), v.fills(), v.balances(MAKER.address), [p.token for p in v.payouts()])
        )

    def l2(self, method: str, path: str, body: str | None) -> dict[str, str]:
        ts = str(int(time.time()))
        c = self.creds
        return {
            "POLY_ADDRESS": c.address,
            "POLY_SIGNATURE": hmac_signature(c.secret, ts, method, path, body),
            "POLY_TIMESTAMP": ts,
            "POLY_API_KEY": c.api_key,
            "POLY_PASSPHRASE": c.passphrase,
            "Content-Type": "application/json",
        }

    def send(
        self,
        method: str,
        target: str,
        body: str | bytes | None = None,
        headers: dict[str, Any] | None = None,
        *,
        auth: bool = False,
    ) -> tuple[int, Any]:
        raw_body = body.encode() if isinstance(body, str) else body
        if auth:
            text = raw_body.decode("utf-8", "replace") if raw_body else None
            headers = {**self.l2(method, target.split("?", 1)[0], text), **(headers or {})}
        status, raw = request(self.port, method, target, raw_body, headers)
        assert status < 500, (method, target, (raw_body or b"")[:200], raw[:300])
        doc = json.loads(raw)
        if status >= 400:
            assert isinstance(doc, dict), doc
            assert isinstance(doc.get("error"), str), doc
        return status, doc


@pytest.fixture(scope="module")
def clob(served: Served) -> Iterator[ClobRig]:
    rig = ClobRig(served)
    yield rig
    served.run(rig.runner.cleanup())


CLOB_GETS = [
    "/book",
    "/midpoint",
    "/price",
    "/spread",
    "/last-trade-price",
    "/tick-size",
    "/neg-risk",
    "/fee-rate",
]


@FUZZ
@given(data=st.data(), path=st.sampled_from(CLOB_GETS))
def test_clob_public_endpoints_answer_json_4xx_for_nonsense(
    clob: ClobRig, data: st.DataObject, path: str
) -> None:
    params = data.draw(params_strategy({"token_id": clob.token, "side": "BUY"}, ["next_cursor"]))
    clob.send("GET", f"{path}?{query_of(params)}")


@FUZZ
@given(
    cursor=nasty_text | st.binary(max_size=20).map(lambda b: __import__("base64").b64encode(b).decode()),
    condition=nasty_text,
)
def test_clob_market_paging_and_lookup_refuse_nonsense(clob: ClobRig, cursor: str, condition: str) -> None:
    clob.send("GET", f"/markets?{query_of({'next_cursor': cursor})}")
    clob.send("GET", f"/markets/{quote(condition, safe='')}" if condition else "/markets/%20")


L2_BODIES = [
    ("POST", "/order"),
    ("POST", "/orders"),
    ("DELETE", "/order"),
    ("DELETE", "/orders"),
    ("DELETE", "/cancel-market-orders"),
    ("DELETE", "/cancel-all"),
    ("POST", "/books"),
]


@FUZZ
@given(
    value=json_values | st.binary(max_size=100),
    which=st.integers(0, len(L2_BODIES) - 1),
    signed=st.booleans(),
)
def test_clob_bodies_refused_without_touching_ground_truth(
    clob: ClobRig, value: Any, which: int, signed: bool
) -> None:
    method, path = L2_BODIES[which]
    body = value if isinstance(value, bytes) else dumps(value)
    before = clob.truth()
    status, doc = clob.send(method, path, body, auth=signed)
    if status >= 400 or (path == "/orders" and method == "POST" and not any(d.get("success") for d in doc)):
        assert clob.truth() == before


@FUZZ
@given(data=st.data(), path=st.sampled_from(["/data/orders", "/data/trades", "/balance-allowance"]))
def test_clob_l2_queries_refuse_nonsense(clob: ClobRig, data: st.DataObject, path: str) -> None:
    base = {"next_cursor": "MA==", "market": "0x1", "asset_id": clob.token, "after": "1", "before": "2"}
    base |= {"asset_type": "CONDITIONAL", "token_id": clob.token, "id": "x", "maker_address": MAKER.address}
    params = data.draw(params_strategy(base, []))
    clob.send("GET", f"{path}?{query_of(params)}", auth=True)


header_text = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=0x6FF, exclude_categories=("Cc",)), max_size=30
)
"""Header values a client can send (control characters are refused by the HTTP parser itself)."""


@FUZZ
@given(
    address=st.sampled_from(["", MAKER.address, "0x" + "zz" * 20, "0x" + "11" * 19]) | header_text,
    signature=st.sampled_from(["", "0x00", "0x" + "ab" * 65]) | header_text,
    timestamp=header_text,
    nonce=st.sampled_from(["0", "²", "٣", "9" * 5000, str(2**256), str(2**256 - 1), "-1", ""]) | header_text,
    path=st.sampled_from([("POST", "/auth/api-key"), ("GET", "/auth/derive-api-key")]),
)
def test_clob_l1_headers_refused_without_a_crash(
    clob: ClobRig, address: str, signature: str, timestamp: str, nonce: str, path: tuple[str, str]
) -> None:
    """Found by fuzzing: a POLY_NONCE of '²', 5000 digits or >= 2**256 used to answer 500."""
    values = {"POLY_ADDRESS": address, "POLY_SIGNATURE": signature, "POLY_TIMESTAMP": timestamp}
    values["POLY_NONCE"] = nonce
    headers: dict[str, Any] = {k: v.encode() for k, v in values.items()}  # UTF-8 bytes, as sent
    status, _ = clob.send(path[0], path[1], headers=headers)
    assert status == 401


AMOUNTS = (
    st.integers(0, 77).map(lambda e: 10**e)  # every magnitude, lot-aligned from 1e4 up
    | st.integers(0, 10**12).map(lambda n: n * 10**4)  # whole cents of a share or a dollar
    | st.integers(0, 2**256 - 1)
    | st.sampled_from([0, 1, 2**255, 2**256 - 1])
)


@st.composite
def priced_amounts(draw: st.DrawFn) -> tuple[int, int]:
    """(shares, usdc) in 1e-6 units: whole cents of shares at an exact price of any magnitude."""
    shares = draw(st.integers(1, 10**6) | st.integers(0, 60).map(lambda e: 10**e)) * 10**4
    price_units = draw(st.integers(1, 99)) * 10 ** draw(st.integers(-80, 80))  # k * 10**e, exact
    usdc = Fraction(shares) * Fraction(price_units)
    assume(usdc.denominator == 1 and 0 < usdc < 2**256 and shares < 2**256)
    return shares, int(usdc)


@settings(FUZZ, max_examples=300)
@given(
    side=st.sampled_from([0, 1]),
    raw_amounts=st.tuples(AMOUNTS, AMOUNTS) | priced_amounts(),
    expiration=st.sampled_from([0, 0, 1, 2**64, 2**256 - 1]),
    fee_delta=st.sampled_from([0, 0, 0, 1]),
    order_type=st.sampled_from(["GTC", "GTC", "GTD", "FOK", "FAK", "XYZ", 5, None, None]),
    post_only=st.sampled_from([False, None, None, True, "yes"]),
    salt=st.integers(0, 2**53),
)
def test_clob_validly_signed_orders_with_extreme_amounts_answer_4xx_not_500(
    clob: ClobRig,
    side: int,
    raw_amounts: tuple[int, int],
    expiration: int,
    fee_delta: int,
    order_type: Any,
    post_only: Any,
    salt: int,
) -> None:
    """Signed exactly as py-clob-client signs, so validation runs past the signature check."""
    shares, usdc = raw_amounts
    maker_amount, taker_amount = (usdc, shares) if side == 0 else (shares, usdc)
    fields = {
        "salt": salt,
        "maker": MAKER.address,
        "signer": MAKER.address,
        "taker": ZERO_ADDRESS,
        "tokenId": int(clob.token),
        "makerAmount": maker_amount,
        "takerAmount": taker_amount,
        "expiration": expiration,
        "nonce": 0,
        "feeRateBps": clob.fee + fee_delta,
        "side": side,
        "signatureType": 0,
    }
    signed = Account.sign_message(order_message(fields, 137, clob.exchange), private_key=MAKER.key)
    order = {k: str(v) if isinstance(v, int) and k != "salt" else v for k, v in fields.items()}
    order["side"] = "BUY" if side == 0 else "SELL"
    order["signature"] = "0x" + bytes(signed.signature).hex()
    payload: dict[str, Any] = {"order": order, "owner": clob.creds.api_key}
    if order_type is not None:
        payload["orderType"] = order_type
    if post_only is not None:
        payload["postOnly"] = post_only
    before = clob.truth()
    status, _ = clob.send("POST", "/order", json.dumps(payload), auth=True)
    if status >= 400:
        assert clob.truth() == before


def test_clob_huge_price_refused_by_tick_rule_not_500(clob: ClobRig) -> None:
    """Found by fuzzing: price 1e64 made ``price % tick`` raise DivisionImpossible (a 500)."""
    fields = {
        "salt": 7,
        "maker": MAKER.address,
        "signer": MAKER.address,
        "taker": ZERO_ADDRESS,
        "tokenId": int(clob.token),
        "makerAmount": 10**70,
        "takerAmount": 10**6,
        "expiration": 0,
        "nonce": 0,
        "feeRateBps": clob.fee,
        "side": 0,
        "signatureType": 0,
    }
    signed = Account.sign_message(order_message(fields, 137, clob.exchange), private_key=MAKER.key)
    order = {k: str(v) for k, v in fields.items()} | {"side": "BUY", "salt": 7}
    order["signature"] = "0x" + bytes(signed.signature).hex()
    status, doc = clob.send(
        "POST", "/order", json.dumps({"order": order, "owner": clob.creds.api_key}), auth=True
    )
    assert status == 400
    assert "breaks minimum tick size rule" in doc["error"]


@pytest.mark.parametrize(
    "body",
    [
        '{"advance_s": Infinity}',
        '{"advance_s": -Infinity}',
        '{"advance_s": NaN}',
        '{"advance_s": 1e400}',
        '{"advance_s": "x"}',
        '{"advance_s": -5}',
        '{"to_ms": [1]}',
        '{"to_ms": "NaN"}',
        '{"to_ms": Infinity}',
        "[]",
        "{",
    ],
)
def test_clob_admin_clock_refuses_non_finite_moves(clob: ClobRig, body: str) -> None:
    """Found by fuzzing: {"advance_s": Infinity} raised OverflowError (a 500)."""
    now = clob.served.call(lambda: clob.venue.now_ms)
    status, _ = clob.send("POST", "/_sandbox/clock", body)
    assert status == 400
    assert clob.served.call(lambda: clob.venue.now_ms) == now


# --------------------------------------------------------------------------- (c) domain models

BAD_FLOATS = st.sampled_from([math.nan, math.inf, -math.inf, -1.0, -1e-300, 0.0, -0.0])
BAD_AMOUNTS = st.sampled_from(
    ["NaN", "sNaN", "Infinity", "-Infinity", "-1", "0", "-0.0000001", math.nan, math.inf]
)
GOOD_FLOATS = st.floats(min_value=1e-9, max_value=1e12)
GOOD_AMOUNTS = st.decimals(min_value=Decimal("1e-8"), max_value=Decimal("1e12"), places=8)


@given(field=st.sampled_from(["open", "high", "low", "close"]), bad=BAD_FLOATS)
def test_candle_refuses_non_finite_or_non_positive_prices(field: str, bad: float) -> None:
    raw = {"market": "m", "ts_ms": 0, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0}
    with pytest.raises(ValidationError):
        Candle(**(raw | {field: bad}))


@given(bad=st.sampled_from([math.nan, math.inf, -math.inf, -1.0, -1e-300]))
def test_candle_refuses_non_finite_or_negative_volume(bad: float) -> None:
    with pytest.raises(ValidationError):
        Candle(market="m", ts_ms=0, open=1.0, high=1.0, low=1.0, close=1.0, volume=bad)


@given(o=GOOD_FLOATS, c=GOOD_FLOATS, v=st.floats(min_value=0, max_value=1e15))
def test_candle_accepts_finite_positive_values(o: float, c: float, v: float) -> None:
    candle = Candle(market="m", ts_ms=0, open=o, high=max(o, c), low=min(o, c), close=c, volume=v)
    assert candle.close == c


@given(field=st.sampled_from(["price", "size"]), bad=BAD_AMOUNTS)
def test_book_level_and_order_book_refuse_bad_prices_and_sizes(field: str, bad: Any) -> None:
    level = {"price": "0.5", "size": "10"} | {field: bad}
    with pytest.raises(ValidationError):
        BookLevel.model_validate(level)
    with pytest.raises(ValidationError):
        OrderBook.model_validate({"market": "m", "ts_ms": 0, "bids": [level], "asks": []})


@given(field=st.sampled_from(["price", "qty", "fee"]), bad=BAD_AMOUNTS)
def test_fill_refuses_bad_amounts(field: str, bad: Any) -> None:
    raw = {
        "fill_id": "f",
        "client_id": "c",
        "market": "m",
        "side": "buy",
        "price": "1",
        "qty": "1",
        "ts_ms": 0,
    }
    if field == "fee" and bad in ("-1", "0", "-0.0000001"):
        return  # a fee may be zero or negative (a maker rebate); only non-finite fees are nonsense
    with pytest.raises(ValidationError):
        Fill.model_validate(raw | {field: bad})


@given(field=st.sampled_from(["price", "qty", "filled_qty"]), bad=BAD_AMOUNTS)
def test_order_refuses_bad_amounts_at_creation_and_assignment(field: str, bad: Any) -> None:
    if field == "filled_qty" and bad == "0":
        return  # nothing filled yet is the normal start
    raw = {"client_id": "c", "market": "m", "side": "buy", "price": "1", "qty": "1"}
    with pytest.raises(ValidationError):
        Order.model_validate(raw | {field: bad})
    order = Order.model_validate(raw)
    with pytest.raises(ValidationError):
        setattr(order, field, bad)


@given(price=GOOD_AMOUNTS, qty=GOOD_AMOUNTS)
def test_order_and_fill_accept_finite_positive_amounts(price: Decimal, qty: Decimal) -> None:
    order = Order(client_id="c", market="m", side=Side.BUY, price=price, qty=qty)
    fill = Fill(fill_id="f", client_id="c", market="m", side=Side.BUY, price=price, qty=qty, ts_ms=0)
    assert order.remaining == qty
    assert fill.notional == price * qty


@given(price=BAD_FLOATS, strength=st.sampled_from([math.nan, math.inf, -0.1, 1.1]))
def test_signal_refuses_bad_price_or_strength(price: float, strength: float) -> None:
    with pytest.raises(ValidationError):
        Signal(strategy="s", market="m", side=Side.BUY, strength=0.5, ts_ms=0, price=price)
    with pytest.raises(ValidationError):
        Signal(strategy="s", market="m", side=Side.BUY, strength=strength, ts_ms=0, price=1.0)


def test_instrument_strike_refuses_nan() -> None:
    with pytest.raises(ValidationError):
        Instrument(venue="v", symbol="s", tick_size=Decimal("0.01"), lot_size=Decimal(1), strike=math.nan)


# --------------------------------------------------------------------------- (d) Binance gateway parsing

PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError, ArithmeticError, ValidationError)


@given(raw=json_leaves | st.decimals(allow_nan=True, allow_infinity=True))
def test_dec_returns_a_finite_decimal_or_raises(raw: Any) -> None:
    try:
        value = dec(raw)
    except PARSE_ERRORS:
        return
    assert value.is_finite()


def test_dec_refuses_nan_and_infinity() -> None:
    """Found by fuzzing: dec("NaN") returned Decimal('NaN') (a NaN balance could reach the books)."""
    for raw in ("NaN", "nan", "Infinity", "-Infinity", math.nan, Decimal("sNaN")):
        with pytest.raises(ValueError, match="finite"):
            dec(raw)


BINANCE_ORDERS = [
    json.loads((FIXTURES / "binance-spot" / name).read_text())
    for name in ("order_response.json", "new_order_full_response.json", "cancel_order_response.json")
]


def offline_gateway() -> BinanceGateway:
    return BinanceGateway(exchange=SimpleNamespace(options={}, enableRateLimit=False), use_websockets=False)


@FUZZ
@given(data=st.data(), index=st.integers(0, len(BINANCE_ORDERS) - 1))
def test_gateway_order_parsing_builds_valid_orders_or_raises(data: st.DataObject, index: int) -> None:
    info = data.draw(mutated(BINANCE_ORDERS[index]))
    if not isinstance(info, dict):
        return
    raw = {"info": info, "symbol": "BTC/USDT", "id": str(info.get("orderId", "1"))}
    try:
        order = offline_gateway()._to_order(raw)
    except PARSE_ERRORS:
        return
    assert order.qty.is_finite()
    assert order.qty > 0
    assert order.filled_qty >= 0
    assert order.price is None or (order.price.is_finite() and order.price > 0)


KLINE = [1499040000000, "0.01634790", "0.80000000", "0.01575800", "0.01577100", "148976.11427815"]


@FUZZ
@given(row=mutated(KLINE) | st.lists(json_leaves, max_size=8))
def test_gateway_kline_parsing_builds_valid_candles_or_raises(row: Any) -> None:
    if not isinstance(row, list):
        return
    try:
        candle = _candle("binance:BTC/USDT", row, 60_000)
    except PARSE_ERRORS:
        return
    for price in (candle.open, candle.high, candle.low, candle.close):
        assert math.isfinite(price)
        assert price > 0
    assert math.isfinite(candle.volume)
    assert candle.volume >= 0


MARKET = {
    "base": "BTC",
    "precision": {"price": 0.01, "amount": 0.00001},
    "limits": {"amount": {"min": 0.00001}},
    "info": {
        "filters": [
            {"filterType": "PRICE_FILTER", "tickSize": "0.01000000"},
            {"filterType": "LOT_SIZE", "stepSize": "0.00001000", "minQty": "0.00001000"},
        ]
    },
}


@FUZZ
@given(market=mutated(MARKET))
def test_gateway_market_parsing_builds_valid_instruments_or_raises(market: Any) -> None:
    if not isinstance(market, dict):
        return
    try:
        instrument = _instrument("BTC/USDT", market)
    except (*PARSE_ERRORS, AttributeError):  # ccxt's own market shape (dicts) is not what is fuzzed
        return
    assert instrument.tick_size.is_finite()
    assert instrument.tick_size > 0
    assert instrument.lot_size > 0
    assert instrument.min_size >= 0
