"""with_latest_books: a live feed's candles with its books conflated at the source."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from actors.data.live import wants_book, with_latest_books
from actors.domain.model import BookLevel, Candle, MarketEvent, OrderBook
from config.loader import load_settings
from config.models import MeanReversionConfig

BTC = "binance:BTC/USDT"


def _book(ts: int) -> OrderBook:
    level = (BookLevel(price=Decimal(100), size=Decimal(1)),)
    return OrderBook(market=BTC, ts_ms=ts, bids=level, asks=(BookLevel(price=Decimal(101), size=Decimal(1)),))


def _candle(ts: int) -> Candle:
    return Candle(market=BTC, ts_ms=ts, interval_ms=60_000, open=1, high=1, low=1, close=1, volume=1)


async def _gated(items: list[MarketEvent], gate: asyncio.Event) -> AsyncIterator[MarketEvent]:
    await gate.wait()
    for item in items:
        yield item


async def test_books_arriving_faster_than_read_are_conflated_and_candles_all_delivered() -> None:
    books_sent = asyncio.Event()
    candles_go = asyncio.Event()

    async def books() -> AsyncIterator[OrderBook]:
        for ts in range(1, 501):  # 500 books before any candle: the reader must get only the newest
            yield _book(ts)
        books_sent.set()
        await asyncio.Event().wait()  # a live book stream never ends

    merged = with_latest_books(_gated([_candle(0), _candle(60_000)], candles_go), books())
    first = asyncio.create_task(anext(merged))
    await books_sent.wait()
    got = [await first]
    candles_go.set()
    got += [await anext(merged) for _ in range(2)]
    await merged.aclose()
    assert got == [_book(500), _candle(0), _candle(60_000)]


async def test_candle_stream_end_ends_the_merge_and_book_error_is_raised() -> None:
    async def books_failing() -> AsyncIterator[OrderBook]:
        yield _book(1)
        raise ConnectionError("depth socket lost")

    never = asyncio.Event()
    merged = with_latest_books(_gated([_candle(0)], never), books_failing())
    assert await anext(merged) == _book(1)
    with pytest.raises(ConnectionError, match="depth socket lost"):
        await anext(merged)

    go = asyncio.Event()
    go.set()

    async def books_idle() -> AsyncIterator[OrderBook]:
        await asyncio.Event().wait()
        yield _book(0)

    assert [e async for e in with_latest_books(_gated([_candle(0)], go), books_idle())] == [_candle(0)]


def test_book_streamed_only_for_a_watched_market_with_order_book_on() -> None:
    settings = load_settings(None).model_copy(
        update={"strategies": [MeanReversionConfig(name="mr", markets=(BTC,), allocation=0.4)]}
    )
    assert wants_book(settings, BTC)
    assert not wants_book(settings, "binance:ETH/USDT")
    off = load_settings(None, overrides=["live.binance.order_book=false"]).model_copy(
        update={"strategies": settings.strategies}
    )
    assert not wants_book(off, BTC)
