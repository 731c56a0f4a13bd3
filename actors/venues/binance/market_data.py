"""Binance's market data through ccxt: candles, books and the public tape, REST and streams.

``ccxt.pro`` ships with ccxt 4.5 and its Binance client can be pointed at any ``ws://`` base
(``urls['api']['ws']['spot']``); ``watch_candles``/``watch_trades``/``watch_order_book`` use it
when ``use_websockets`` and fall back to REST polling every ``poll_interval_s`` when it is
unavailable or disabled. A dropped socket is re-subscribed by ccxt on the next call; candles
missed meanwhile are backfilled from REST.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable
from decimal import Decimal
from functools import partial
from typing import Any

import ccxt.async_support as ccxt_async

from actors.domain.model import BookLevel, Candle, OrderBook, Side, to_decimal
from actors.venues.binance.client import BinanceClient, pro_class
from actors.venues.binance.parse import PublicTrade, candle_from_row, dec

log = logging.getLogger(__name__)

_REST_URL_KEYS = ("public", "private", "v3")


class BinanceMarketData(BinanceClient):
    """Candles, books and the public tape of Binance (REST, or ccxt.pro's streams)."""

    async def order_book(self, market: str, limit: int = 100) -> OrderBook:
        await self._ensure_markets()
        symbol = self._symbol(market)
        request = {"symbol": self._binance_id(symbol), "limit": limit}
        raw = await self._call(partial(self.exchange.publicGetDepth, request))
        return OrderBook(
            market=self._market_id(symbol),
            ts_ms=int(self.exchange.milliseconds()),
            bids=tuple(
                BookLevel(price=dec(p), size=dec(q)) for p, q in raw.get("bids", []) if Decimal(q) > 0
            ),
            asks=tuple(
                BookLevel(price=dec(p), size=dec(q)) for p, q in raw.get("asks", []) if Decimal(q) > 0
            ),
        )

    async def candles(
        self, market: str, interval: str = "1m", since_ms: int | None = None, limit: int = 500
    ) -> list[Candle]:
        """Closed bars from REST (a bar still forming at the venue is left out)."""
        await self._ensure_markets()
        symbol = self._symbol(market)
        rows = await self._call(partial(self.exchange.fetch_ohlcv, symbol, interval, since_ms, limit))
        step = int(self.exchange.parse_timeframe(interval) * 1000)
        now = int(self.exchange.milliseconds())
        return [
            candle_from_row(self._market_id(symbol), row, step) for row in rows if int(row[0]) + step <= now
        ]

    async def history(self, market: str, interval: str = "1m", bars: int = 1) -> list[Candle]:
        """The newest ``bars`` closed bars, oldest first, from REST (a strategy's warm-up).

        One ``fetch_ohlcv`` for the newest closed bar, then pages of ``fetch_ohlcv(since, limit=1000)``
        from ``bars - 1`` bars before it (Binance serves at most 1000 klines a request); fewer when
        the venue's history is shorter or has gaps.
        """
        if bars <= 0:
            return []
        newest = await self.candles(market, interval, None, 2)
        if not newest:
            return []
        end = newest[-1]
        since = end.ts_ms - (bars - 1) * end.interval_ms
        return [c for c in await self._backfill(market, interval, since) if c.ts_ms <= end.ts_ms][-bars:]

    async def _pro_client(self) -> Any:
        """The ccxt.pro client, sharing this gateway's URLs, keys and markets."""
        if self._pro is None:
            await self._ensure_markets()
            params: dict[str, Any] = {
                "enableRateLimit": self.exchange.enableRateLimit,
                "timeout": self._timeout_ms,
                "options": {
                    "defaultType": "spot",
                    "fetchMarkets": {"types": ["spot"]},
                    "fetchCurrencies": False,
                },
            }
            if self._api_key is not None:
                params["apiKey"] = self._api_key.get_secret_value()
            if self._api_secret is not None:
                params["secret"] = self._api_secret.get_secret_value()
            pro = pro_class()(params)
            urls = dict(pro.urls["api"])
            for key in _REST_URL_KEYS:
                urls[key] = self.exchange.urls["api"][key]
            if self.ws_url is not None:
                urls["ws"] = {**urls["ws"], "spot": self.ws_url}
            pro.urls["api"] = urls
            pro.set_markets(self.exchange.markets, self.exchange.currencies)
            self._pro = pro
        return self._pro

    async def _watch(self, stream: str, symbol: str, update: Awaitable[Any]) -> None:
        """Wait for ccxt.pro's next update; a dropped socket is logged and the next call reconnects."""
        try:
            await update
        except ccxt_async.NetworkError as exc:
            log.info("binance %s stream %s: %s; resubscribing", stream, symbol, exc)
            await asyncio.sleep(self.poll_interval_s)

    async def watch_candles(
        self, market: str, interval: str = "1m", since_ms: int | None = None
    ) -> AsyncGenerator[Candle, None]:
        """Closed bars as they close (``since_ms``: first the bars from then, from REST), never twice."""
        await self._ensure_markets()
        symbol = self._symbol(market)
        step = int(self.exchange.parse_timeframe(interval) * 1000)
        last = -1
        if since_ms is not None:
            last = since_ms - step  # what came before is delivered: a later gap is back-filled from here
            for candle in await self._backfill(market, interval, since_ms):
                last = candle.ts_ms
                yield candle
        if not self.use_websockets:
            async for candle in self._poll_candles(market, interval, last):
                yield candle
            return
        pro = await self._pro_client()
        key = (self._binance_id(symbol), interval)
        while True:
            # drain first: ccxt.pro only wakes callers already waiting, so klines that closed
            # while our consumer was busy are in the queue, not in a future
            closed = pro.closed_klines.get(key)
            while closed:
                kline = closed.popleft()
                ts = int(kline["t"])
                if ts <= last:
                    continue
                if last >= 0 and ts > last + step:  # missed while disconnected
                    for candle in await self._backfill(market, interval, last + step):
                        if last < candle.ts_ms < ts:
                            last = candle.ts_ms
                            yield candle
                last = ts
                yield Candle(
                    market=self._market_id(symbol),
                    ts_ms=ts,
                    interval_ms=step,
                    open=float(kline["o"]),
                    high=float(kline["h"]),
                    low=float(kline["l"]),
                    close=float(kline["c"]),
                    volume=float(kline["v"]),
                )
            await self._watch("kline", symbol, pro.watch_ohlcv(symbol, interval))

    async def _backfill(self, market: str, interval: str, since_ms: int) -> list[Candle]:
        out: list[Candle] = []
        cursor = since_ms
        while True:
            page = await self.candles(market, interval, cursor, 1000)
            out += page
            if len(page) < 1000:
                return out
            cursor = page[-1].ts_ms + page[-1].interval_ms

    async def _poll_candles(self, market: str, interval: str, last: int) -> AsyncGenerator[Candle, None]:
        if last < 0:  # start from what is closed now, without replaying history
            latest = await self.candles(market, interval, None, 2)
            last = latest[-1].ts_ms if latest else -1
        while True:
            await asyncio.sleep(self.poll_interval_s)
            for candle in await self._backfill(market, interval, last + 1 if last >= 0 else 0):
                if candle.ts_ms > last:
                    last = candle.ts_ms
                    yield candle

    async def watch_order_book(self, market: str, limit: int = 100) -> AsyncGenerator[OrderBook, None]:
        """Successive books (ccxt.pro's diff-synced book, or REST snapshots when polling)."""
        await self._ensure_markets()
        symbol = self._symbol(market)
        pro = await self._pro_client() if self.use_websockets else None
        last_nonce: Any = None
        while True:
            if pro is None:
                yield await self.order_book(market, limit)
                await asyncio.sleep(self.poll_interval_s)
                continue
            book = pro.orderbooks.get(symbol)  # updates applied while our consumer was busy
            if book is not None and book["nonce"] is not None and book["nonce"] != last_nonce:
                last_nonce = book["nonce"]
                yield OrderBook(
                    market=self._market_id(symbol),
                    ts_ms=int(book.get("timestamp") or self.exchange.milliseconds()),
                    bids=tuple(
                        BookLevel(price=to_decimal(p), size=to_decimal(q)) for p, q in book["bids"][:limit]
                    ),
                    asks=tuple(
                        BookLevel(price=to_decimal(p), size=to_decimal(q)) for p, q in book["asks"][:limit]
                    ),
                )
                continue
            await self._watch("depth", symbol, pro.watch_order_book(symbol))

    async def watch_trades(
        self, market: str, since_ms: int | None = None
    ) -> AsyncGenerator[PublicTrade, None]:
        """The public tape, each trade once: from ``since_ms`` (the last 1000 trades at most), else new ones.

        Streams use ccxt.pro's trade cache; polling reads ``/api/v3/trades``.
        """
        await self._ensure_markets()
        symbol = self._symbol(market)
        last = -1
        pro = await self._pro_client() if self.use_websockets else None
        request = {"symbol": self._binance_id(symbol), "limit": 1000}
        first = True
        while True:
            if pro is None or first:
                rows = await self._call(partial(self.exchange.publicGetTrades, request))
                batch = [
                    (int(r["id"]), r["price"], r["qty"], int(r["time"]), bool(r["isBuyerMaker"]))
                    for r in rows
                ]
                if first:  # the baseline: what happened before ``since_ms`` (or now) is not news
                    first = False
                    last = max((r[0] for r in batch if since_ms is None or r[3] < since_ms), default=0)
            else:
                batch = [
                    (
                        int(t["info"]["t"]),
                        t["info"]["p"],
                        t["info"]["q"],
                        int(t["info"]["T"]),
                        bool(t["info"]["m"]),
                    )
                    for t in pro.trades.get(symbol) or []
                ]
            for trade_id, price, qty, ts, buyer_maker in sorted(batch):
                if trade_id <= last:
                    continue
                last = trade_id
                yield PublicTrade(
                    market=self._market_id(symbol),
                    trade_id=str(trade_id),
                    price=dec(price),
                    qty=dec(qty),
                    ts_ms=ts,
                    taker_side=Side.SELL if buyer_maker else Side.BUY,
                )
            if pro is None:
                await asyncio.sleep(self.poll_interval_s)
                continue
            await self._watch("trade", symbol, pro.watch_trades(symbol))
