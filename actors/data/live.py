"""Live market data for the feed actors: the venues' own streams through the real clients.

Each source is an async iterator of domain events; the feed actor reads it into a bounded,
conflating buffer, so a slow consumer sees the latest book rather than a growing queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from actors.domain.model import MarketEvent
from actors.domain.names import market_symbol
from actors.venues.factory import make_gateway, resolve_endpoints
from config.models import Settings

log = logging.getLogger(__name__)


async def binance_live(settings: Settings, market: str, since_ms: int | None) -> AsyncIterator[MarketEvent]:
    """One market's instrument, then its closed 1m candles (back-filled from ``since_ms`` after a restart)."""
    gateway = make_gateway(settings, "binance")
    await gateway.start()
    try:
        for instrument in await gateway.instruments():
            if instrument.market_id == market:
                yield instrument
        async for candle in gateway.watch_candles(market, "1m", since_ms):  # type: ignore[attr-defined]
            yield candle
    finally:
        await gateway.close()


async def polymarket_live(
    settings: Settings, feed_id: str, since_ms: int | None
) -> AsyncIterator[MarketEvent]:
    """Listed outcome tokens, then their books and resolutions from the market websocket.

    The listing is refreshed every ``runtime.listing_refresh_s``; the websocket is re-opened
    with the new token ids when the set changes.
    """
    from actors.venues.polymarket.market_stream import BookMessage, ResolvedMessage, polymarket_market_stream

    del feed_id, since_ms  # one feed carries the whole series; books are snapshots: nothing to back-fill
    gateway = make_gateway(settings, "polymarket")
    await gateway.start()
    ws_url = resolve_endpoints(settings, "polymarket").ws_url
    known: dict[str, object] = {}
    while True:
        instruments = await gateway.instruments()
        fresh = [i for i in instruments if i.market_id not in known]
        for instrument in fresh:
            known[instrument.market_id] = instrument
            yield instrument
        tokens = [market_symbol(m) for m in known]
        deadline = asyncio.get_event_loop().time() + settings.runtime.listing_refresh_s
        stream = polymarket_market_stream(ws_url, tokens)
        try:
            while asyncio.get_event_loop().time() < deadline:
                try:
                    message = await asyncio.wait_for(anext(stream), timeout=1.0)
                except TimeoutError:
                    continue
                except StopAsyncIteration:
                    break
                if isinstance(message, BookMessage):
                    yield message.book
                elif isinstance(message, ResolvedMessage):
                    for settlement in message.settlements():
                        yield settlement
        finally:
            await stream.aclose()
