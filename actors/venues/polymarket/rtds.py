"""Polymarket's Real-Time Data Socket (RTDS): the Chainlink price the 5-minute markets settle on.

Why: ``polymarket_lag`` prices each window against its settlement feed (``chainlink:BTC/USD``).
Replayed, that feed comes from the bundled tick file; live, Polymarket relays the same Chainlink
Data Streams price on ``wss://ws-live-data.polymarket.com`` (topic ``crypto_prices_chainlink``,
about one tick a second, no authentication), and this module reads it.

Subscription: ``{"action": "subscribe", "subscriptions": [{"topic": "crypto_prices_chainlink",
"type": "*", "filters": "{\\"symbol\\":\\"btc/usd\\"}"}]}``, a text ``PING`` every 5 s. A tick is
``{"topic": "crypto_prices_chainlink", "type": "update", "timestamp": <sent>, "payload":
{"symbol": "btc/usd", "timestamp": <ms>, "value": <price>}}``. Each becomes a 1-second candle
closing at the tick's time, exactly as the replay makes them (``chainlink_candles``), so the
strategy core sees one shape in backtest, paper and live. A malformed message is logged and
counted, never raised; a dropped socket is re-opened with backoff; a tick at or before the last
one (a repeat after a reconnect) is dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import AsyncGenerator
from dataclasses import dataclass

import aiohttp

from actors.data.polymarket import tick_candle
from actors.domain.model import Candle
from actors.venues.polymarket.market_stream import frame_items, pinged_frames

log = logging.getLogger(__name__)

RTDS_URL = "wss://ws-live-data.polymarket.com"
CHAINLINK_TOPIC = "crypto_prices_chainlink"
PING_INTERVAL_S = 5.0
"""The socket's keep-alive, as Polymarket documents it."""


def rtds_symbol(market: str) -> str:
    """``chainlink:BTC/USD`` -> the RTDS symbol ``btc/usd``."""
    return market.split(":", 1)[1].lower()


def subscription(symbol: str) -> dict[str, object]:
    filters = json.dumps({"symbol": symbol}, separators=(",", ":"))
    return {
        "action": "subscribe",
        "subscriptions": [{"topic": CHAINLINK_TOPIC, "type": "*", "filters": filters}],
    }


@dataclass
class ChainlinkReader:
    """RTDS frames in, one market's 1-second candles out, oldest first (pure: no I/O)."""

    market: str
    last_ms: int = 0
    ticks: int = 0
    malformed: int = 0
    ignored: int = 0

    @property
    def symbol(self) -> str:
        return rtds_symbol(self.market)

    def feed(self, raw: str | bytes) -> list[Candle]:
        items = frame_items(raw)
        if items is None:
            return self._malformed("not JSON", raw)
        candles: list[Candle] = []
        for item in items:
            candles += self._one(item)
        return candles

    def _malformed(self, why: str, raw: object) -> list[Candle]:
        self.malformed += 1
        log.error("polymarket rtds: malformed message (%s): %.120r", why, raw)
        return []

    def _one(self, item: object) -> list[Candle]:
        if not isinstance(item, dict):
            return self._malformed("not an object", item)
        payload = item.get("payload")
        if item.get("topic") != CHAINLINK_TOPIC or not isinstance(payload, dict):
            self.ignored += 1  # another topic, or a control message: not ours to read
            return []
        if str(payload.get("symbol", "")).lower() != self.symbol:
            self.ignored += 1
            return []
        try:
            ts = int(payload["timestamp"])
            price = float(payload["value"])
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            return self._malformed(f"{type(exc).__name__}: {exc}", item)
        if ts <= 0 or not math.isfinite(price) or price <= 0:
            return self._malformed("timestamp or value out of range", item)
        if ts <= self.last_ms:
            self.ignored += 1
            return []
        self.last_ms = ts
        self.ticks += 1
        return [tick_candle(self.market, ts, price)]


async def chainlink_candles_live(
    url: str,
    market: str,
    *,
    reader: ChainlinkReader | None = None,
    session: aiohttp.ClientSession | None = None,
    backoff_s: float = 0.5,
    max_backoff_s: float = 30.0,
) -> AsyncGenerator[Candle, None]:
    """``market``'s Chainlink ticks from the RTDS socket at ``url``, as 1-second candles, for ever
    (re-opened with exponential backoff after a drop). Only cancellation escapes."""
    read = reader if reader is not None else ChainlinkReader(market)
    http = session if session is not None else aiohttp.ClientSession()
    delay = backoff_s
    try:
        while True:
            try:
                async with http.ws_connect(url) as ws:
                    await ws.send_str(json.dumps(subscription(read.symbol)))
                    delay = backoff_s
                    async for frame in pinged_frames(ws, PING_INTERVAL_S):
                        for candle in read.feed(frame):
                            yield candle
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.warning("polymarket rtds %s: %s", url, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_backoff_s)
    finally:
        if session is None:
            await http.close()
