"""Issue 11, live order book for the liquidity gate: a live Binance feed merges the market's books
(ccxt.pro's depth stream from the sandbox) with its candles, and the portfolio's liquidity gate reads
them as it reads a replay's books."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from actors.core.portfolio import PortfolioCore
from actors.core.portfolio_decisions import Gate
from actors.data.live import History, binance_live
from actors.domain.model import Candle, Instrument, MarketEvent, OrderBook, Side, Signal
from actors.venues.binance.client import ws_supported
from config.models import ExitConfig, MeanReversionConfig, PortfolioConfig, Settings
from ops.sandbox.binance import Credentials, SandboxBinance
from tests.integration.sandbox.binance_support import MARKET, next_item
from tests.integration.sandbox.test_sandbox_binance_timeframes import live_settings_for

STRATEGY = MeanReversionConfig(name="mr_books", markets=(MARKET,), allocation=0.4, bb_period=8)


def _streams(venue: SandboxBinance) -> set[str]:
    return set().union(*venue.subscriptions())


async def _until_book_and_candle(
    venue: SandboxBinance, feed: AsyncIterator[MarketEvent | History]
) -> tuple[list[OrderBook], list[Candle]]:
    """Advance the sandbox a bar at a time, reading the feed up to each bar's candle, until it has
    yielded a book and a candle."""
    books: list[OrderBook] = []
    candles: list[Candle] = []
    nxt = asyncio.create_task(next_item(feed))
    await venue.wait_for(
        lambda: (
            "btcusdt@kline_1m" in _streams(venue)
            and any(n.startswith("btcusdt@depth") for n in _streams(venue))
        )
    )
    while not (books and candles):
        venue.advance(1)
        while True:
            event = await asyncio.wait_for(nxt, 10)
            nxt = asyncio.create_task(next_item(feed))
            if isinstance(event, OrderBook):
                books.append(event)
            elif isinstance(event, Candle):
                candles.append(event)
                break
    nxt.cancel()
    return books, candles


@pytest.mark.skipif(not ws_supported(), reason="ccxt.pro not importable")
async def test_live_feed_delivers_books_and_the_liquidity_gate_refuses_thin_depth(
    venue: SandboxBinance, creds: Credentials
) -> None:
    settings: Settings = live_settings_for(venue, creds, STRATEGY)
    feed = binance_live(settings, MARKET, None)
    instrument = await anext(feed)
    assert isinstance(instrument, Instrument)
    await anext(feed)  # the warm-up history
    books, candles = await _until_book_and_candle(venue, feed)
    await feed.aclose()
    book = books[-1]
    assert book.market == MARKET
    assert len(book.bids) <= settings.portfolio.book_depth_levels
    assert (book.best_bid, book.best_ask) in [
        (b.best_bid, b.best_ask)
        for b in (venue.model_book(ref, venue.bar()[5], 0) for ref in venue.bar()[1:5])
    ] + [(venue.book().best_bid, venue.book().best_ask)]
    assert candles[0].interval_ms == 60_000

    signal = Signal(
        strategy=STRATEGY.name,
        market=MARKET,
        side=Side.BUY,
        strength=1.0,
        ts_ms=book.ts_ms,
        price=float(book.best_ask),
    )
    depth = book.depth(settings.portfolio.book_depth_levels)
    assert depth < settings.portfolio.min_book_depth  # the sandbox's book is one 0.001 BTC level a side
    thin = PortfolioCore(settings.portfolio, ExitConfig(), [STRATEGY]).evaluate(
        signal, instrument, book, book.ts_ms
    )
    assert thin.rejected_by is Gate.LIQUIDITY
    assert f"depth {depth} < 500" in thin.gate(Gate.LIQUIDITY).detail
    enough = PortfolioConfig(min_book_depth=depth, max_spread_fraction=0.5)
    deep = PortfolioCore(enough, ExitConfig(), [STRATEGY]).evaluate(signal, instrument, book, book.ts_ms)
    assert deep.gate(Gate.LIQUIDITY).passed is True
