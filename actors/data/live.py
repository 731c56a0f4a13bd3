"""Live market data for the feed actors: the venues' own streams through the real clients.

Each source is an async iterator of domain events; the feed actor reads it into a bounded,
conflating buffer, so a slow consumer sees the latest book rather than a growing queue.

**Warm-up** (as Freqtrade's startup candles): each strategy core declares the bars it must learn
from before its first live one (``StrategyCore.warmup_bars``: its indicators' longest lookback,
the random forest's training window). On a fresh start, and after an outage longer than the
feed buffer holds (``runtime.feed_buffer`` bars), a Binance feed first reads the most any
strategy watching its market declares from the venue's REST history (``fetch_ohlcv`` with
since/limit, paginated, through the gateway) and yields it as one ``History``; the feed actor
gives those bars to the strategies only, as ordinary candles flagged ``warmup``: their cores
learn from them, and whatever they signal on them is dropped, never sent to the portfolio (and
the bars never reach the venue or the positions). Then the stream starts with the next closed
bar. A short outage (at most ``feed_buffer`` bars missed) back-fills the missed bars as live
ones instead, as before.

**Books** (``live.binance.order_book``): a Binance feed of a watched market merges its order book
stream with the candles (``with_latest_books``, conflated), for the portfolio's liquidity gate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from actors.core.strategies.book import StrategyBook
from actors.domain.model import Candle, Instrument, MarketEvent, OrderBook
from actors.domain.names import market_symbol, market_venue
from actors.domain.topology import watched_markets, watches
from actors.venues.factory import make_gateway, resolve_endpoints
from config.models import BINANCE_TIMEFRAMES_MS, Settings

log = logging.getLogger(__name__)

DAY_MS = 86_400_000

INTERVAL = "1m"
INTERVAL_MS = 60_000
"""The default candles of a live Binance feed (``live.binance.timeframe``, per market
``live.binance.timeframes``): what its warm-up counts in unless configured otherwise."""


def binance_timeframe(settings: Settings, market: str) -> tuple[str, int]:
    """The timeframe a live Binance feed of ``market`` reads, and its length in ms."""
    timeframe = settings.live.binance.timeframe_of(market)
    return timeframe, BINANCE_TIMEFRAMES_MS[timeframe]


@dataclass(frozen=True)
class History:
    """A market's closed bars from the venue's history, oldest first: the strategies' warm-up."""

    market: str
    candles: tuple[Candle, ...]


def warmup_bars(settings: Settings, market: str, interval_ms: int = INTERVAL_MS) -> int:
    """The most bars of ``market`` any enabled strategy watching it learns from before going live."""
    return max(
        (
            StrategyBook(s).warmup_bars(interval_ms, market)
            for s in settings.strategies
            if s.enabled and watches(s, market)
        ),
        default=0,
    )


def bars_to_learn(
    since_ms: int | None, newest_close_ms: int, interval_ms: int, warmup: int, buffer: int
) -> int:
    """How many bars of history to learn from before streaming (0: none, stream from ``since_ms``).

    A fresh start (no ``since_ms``) learns ``warmup`` bars; a restart that missed at most
    ``buffer`` bars back-fills them as live bars instead (the feed would have delivered them);
    a longer outage learns the newest ``warmup`` bars again and skips the rest of the gap.
    """
    if warmup <= 0 or (since_ms is not None and (newest_close_ms - since_ms) // interval_ms <= buffer):
        return 0
    return warmup


async def binance_live(
    settings: Settings, market: str, since_ms: int | None
) -> AsyncIterator[MarketEvent | History]:
    """One market's instrument, its warm-up ``History`` when it needs one, then its closed candles of
    the configured timeframe (back-filled from ``since_ms`` after a short outage), merged with its
    latest order books when the liquidity gate reads them (``wants_book``)."""
    interval, interval_ms = binance_timeframe(settings, market)
    gateway = make_gateway(settings, "binance")
    await gateway.start()
    try:
        for instrument in await gateway.instruments():
            if instrument.market_id == market:
                yield instrument
        warmup = warmup_bars(settings, market, interval_ms)
        if warmup > 0:
            newest = [] if since_ms is None else await gateway.history(market, interval, 1)  # type: ignore[attr-defined]
            newest_ms = newest[-1].close_ms if newest else 0
            learn = bars_to_learn(since_ms, newest_ms, interval_ms, warmup, settings.runtime.feed_buffer)
            candles = await gateway.history(market, interval, learn) if learn else []  # type: ignore[attr-defined]
            if candles:
                log.info("feed %s: warming up on %d %s bars of history", market, len(candles), interval)
                yield History(market, tuple(candles))
                since_ms = candles[-1].close_ms
        stream: AsyncIterator[MarketEvent] = gateway.watch_candles(market, interval, since_ms)  # type: ignore[attr-defined]
        if wants_book(settings, market):
            levels = settings.portfolio.book_depth_levels
            stream = with_latest_books(stream, gateway.watch_order_book(market, levels))  # type: ignore[attr-defined]
        async for event in stream:
            yield event
    finally:
        await gateway.close()


def wants_book(settings: Settings, market: str) -> bool:
    """Whether a live Binance feed of ``market`` streams its book: the portfolio's liquidity gate reads
    it for every signal on the market (``live.binance.order_book``), so only a watched market's."""
    return settings.live.binance.order_book and any(
        s.enabled and watches(s, market) for s in settings.strategies
    )


async def with_latest_books(
    main: AsyncIterator[MarketEvent], books: AsyncIterator[OrderBook]
) -> AsyncIterator[MarketEvent]:
    """``main``'s events as they come, and the newest book whenever one arrived since the last.

    Conflated at the source: a venue sends books many times a second (Binance every 100 ms) and
    only the latest matters to the gate, so a slow reader gets one book, not a backlog queued in
    front of the candles; when both are ready the candle goes first. Either stream's error ends it.
    """
    latest: OrderBook | None = None
    failed: list[Exception] = []
    arrived = asyncio.Event()

    async def pump() -> None:
        nonlocal latest
        try:
            async for book in books:
                latest = book
                arrived.set()
        except Exception as exc:  # raised by the reader
            failed.append(exc)
            arrived.set()

    pumping = asyncio.create_task(pump())
    following: asyncio.Future[MarketEvent] | None = None
    try:
        while True:
            if following is None:
                following = asyncio.ensure_future(anext(main))
            book_wait = asyncio.ensure_future(arrived.wait())
            waiting: set[asyncio.Future[Any]] = {following, book_wait}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            book_wait.cancel()
            if following.done():
                ready, following = following, None
                try:
                    event = ready.result()
                except StopAsyncIteration:
                    return
                yield event
            if arrived.is_set():
                arrived.clear()
                if latest is not None:
                    book, latest = latest, None
                    yield book
                if failed:
                    raise failed[0]
    finally:
        for task in (pumping, following):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for source in (books, main):
            closer = getattr(source, "aclose", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()


async def polymarket_live(
    settings: Settings, feed_id: str, since_ms: int | None
) -> AsyncIterator[MarketEvent]:
    """Listed outcome tokens, then their books and resolutions from the market websocket, and the
    Chainlink reference prices (``chainlink:<pair>``, from Polymarket's RTDS socket) that a strategy
    watching the series prices against, merged as they arrive.

    A ``tick_size_change`` is yielded as the token's ``Instrument`` on its new tick, so the cores
    price the next orders on it (the venue gateway follows the change itself). The listing is
    refreshed every ``runtime.listing_refresh_s``; the websocket is re-opened
    with the new token ids when the set changes.
    """
    del feed_id, since_ms  # one feed carries the whole series; books are snapshots: nothing to back-fill
    references = chainlink_references(settings)
    if not references:
        async for event in _polymarket_books(settings):
            yield event
        return
    from actors.data.merge import merge_streams
    from actors.data.replay import CHAINLINK_INSTRUMENT
    from actors.venues.polymarket.rtds import chainlink_candles_live

    url = resolve_endpoints(settings, "polymarket").prices_url
    assert url is not None
    for market in references:
        yield CHAINLINK_INSTRUMENT.model_copy(update={"symbol": market_symbol(market)})
    sources: list[AsyncIterator[MarketEvent]] = [_polymarket_books(settings)]
    sources += [chainlink_candles_live(url, market) for market in references]
    async for event in merge_streams(*sources):
        yield event


def chainlink_references(settings: Settings) -> list[str]:
    """The Chainlink markets enabled strategies watch (their reference prices), sorted."""
    return sorted(
        {
            m
            for s in settings.strategies
            if s.enabled
            for m in watched_markets(s)
            if market_venue(m) == "chainlink"
        }
    )


BOOK_HORIZON_MS = 15 * 60_000
"""Books are read for the windows open now or opening within this long (venue time). Polymarket
lists each 5-minute window a day ahead; subscribing to all 576 tokens would stream books nobody
can trade yet (the strategy waits for a window's start, the portfolio sizes from the book then)."""


def book_tokens(known: Mapping[str, Instrument], now_ms: int, horizon_ms: int = BOOK_HORIZON_MS) -> list[str]:
    """The tokens whose books a feed subscribes to at ``now_ms``: windows not over and starting
    within ``horizon_ms``, and any instrument without a window; sorted."""
    return sorted(
        market_symbol(m)
        for m, i in known.items()
        if (i.end_ms is None or i.end_ms > now_ms)
        and (i.start_ms is None or i.start_ms <= now_ms + horizon_ms)
    )


async def _polymarket_books(settings: Settings) -> AsyncIterator[MarketEvent]:
    from actors.venues.polymarket.gateway import PolymarketGateway
    from actors.venues.polymarket.market_stream import (
        BookMessage,
        MarketMessage,
        ResolvedMessage,
        TickSizeMessage,
        polymarket_market_stream,
    )
    from actors.venues.polymarket.parse import market_of

    gateway = make_gateway(settings, "polymarket", market_data=True)
    assert isinstance(gateway, PolymarketGateway)
    await gateway.start()
    ws_url = resolve_endpoints(settings, "polymarket").ws_url
    known: dict[str, Instrument] = {}
    tokens: list[str] | None = None
    stream: AsyncGenerator[MarketMessage, None] | None = None
    try:
        while True:
            for instrument in await gateway.instruments():
                if instrument.market_id not in known:
                    known[instrument.market_id] = instrument
                    yield instrument
            now_ms = await gateway.server_time_ms()
            for ended in [m for m, i in known.items() if i.end_ms is not None and i.end_ms < now_ms - DAY_MS]:
                del known[ended]
            wanted = book_tokens(known, now_ms)
            if stream is None or wanted != tokens:  # re-subscribe only when the set changed
                if stream is not None:
                    await stream.aclose()
                tokens, stream = wanted, polymarket_market_stream(ws_url, wanted)
            deadline = asyncio.get_event_loop().time() + settings.runtime.listing_refresh_s
            while asyncio.get_event_loop().time() < deadline:
                try:
                    message = await asyncio.wait_for(anext(stream), timeout=1.0)
                except TimeoutError:
                    continue
                except StopAsyncIteration:
                    stream = None
                    break
                if isinstance(message, BookMessage):
                    yield message.book
                elif isinstance(message, ResolvedMessage):
                    for settlement in message.settlements():
                        yield settlement
                elif isinstance(message, TickSizeMessage):
                    listed = known.get(market_of(message.asset_id))
                    if listed is not None and listed.tick_size != message.new_tick_size:
                        listed = listed.model_copy(update={"tick_size": message.new_tick_size})
                        known[listed.market_id] = listed
                        yield listed
    finally:
        if stream is not None:
            await stream.aclose()
