"""Fuzzing the Polymarket market-channel parser and stream.

Every input here is something a venue or a bug could send: malformed JSON, missing fields,
NaN/inf/negative prices and sizes, huge numbers, wrong types. The parser never raises; whatever
it refuses is counted, and a refused message leaves its books exactly as they were (nothing is
written); the stream goes on after every bad frame.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

from aiohttp import WSMsgType, web
from hypothesis import given
from hypothesis import strategies as st

from actors.venues.polymarket.market_stream import (
    BookMessage,
    LastTradeMessage,
    MarketStreamParser,
    MarketStreamStats,
    ResolvedMessage,
    TickSizeMessage,
    polymarket_market_stream,
)
from tests.paths import FIXTURES, REPO_ROOT
from tests.property.fuzz_inputs import FUZZ, dumps, json_values, mutated

PM_FIXTURES = sorted((FIXTURES / "polymarket").glob("ws_*.json"))


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
