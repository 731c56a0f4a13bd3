"""Polymarket's market channel (websocket): the messages, their parser and the stream client.

``polymarket_market_stream`` is the feed actor's market-channel client (aiohttp websocket):
it subscribes, keeps each asset's book from ``book`` snapshots and ``price_change`` diffs, and
yields ``BookMessage`` (a domain ``OrderBook``), ``LastTradeMessage``, ``TickSizeMessage`` and
``ResolvedMessage``. ``MarketStreamParser`` turns frames into those messages; a malformed message
is logged and counted (``MarketStreamStats``), never raised; a dropped connection is re-opened
with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import aiohttp
from pydantic import ValidationError

from actors.domain.model import ZERO, BookLevel, Frozen, OrderBook, Settlement, Side
from actors.venues.polymarket.parse import decimal_of, market_of, ms_of

log = logging.getLogger(__name__)


class BookMessage(Frozen):
    """An asset's whole book after a ``book`` snapshot or a ``price_change``."""

    kind: Literal["book", "price_change"]
    asset_id: str
    condition_id: str
    book: OrderBook
    hash: str = ""


class LastTradeMessage(Frozen):
    asset_id: str
    condition_id: str
    price: Decimal
    size: Decimal
    side: Side
    fee_rate_bps: int = 0
    ts_ms: int


class TickSizeMessage(Frozen):
    asset_id: str
    condition_id: str
    old_tick_size: Decimal | None
    new_tick_size: Decimal
    ts_ms: int


class ResolvedMessage(Frozen):
    condition_id: str
    asset_ids: tuple[str, ...]
    winning_asset_id: str
    winning_outcome: str
    ts_ms: int

    def settlements(self) -> list[Settlement]:
        """Each token's payout (1 for the winner, 0 for the rest) as domain ``Settlement``s."""
        return [
            Settlement(
                market=market_of(a), payout=Decimal(1 if a == self.winning_asset_id else 0), ts_ms=self.ts_ms
            )
            for a in self.asset_ids
        ]


MarketMessage = BookMessage | LastTradeMessage | TickSizeMessage | ResolvedMessage


@dataclass(slots=True)
class MarketStreamStats:
    """Counters of one stream: what arrived, what was used, what was refused."""

    frames: int = 0
    messages: int = 0
    malformed: int = 0
    ignored: int = 0
    orphaned: int = 0
    reconnects: int = 0


@dataclass(slots=True)
class _Side:
    bids: dict[Decimal, Decimal]
    asks: dict[Decimal, Decimal]
    condition_id: str


def _str(item: dict[str, Any], key: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} is missing")
    return value


def _price(value: Any) -> Decimal:
    price = decimal_of(value, "price")
    if not ZERO < price < 1:
        raise ValueError(f"price {price} outside (0, 1)")
    return price


def _levels(raw: Any, name: str) -> dict[Decimal, Decimal]:
    if not isinstance(raw, list):
        raise ValueError(f"{name} must be a list")
    levels: dict[Decimal, Decimal] = {}
    for entry in raw:
        if not isinstance(entry, dict):
            raise ValueError(f"{name} entries must be objects")
        size = decimal_of(entry.get("size"), "size")
        if size < 0:
            raise ValueError(f"negative size {size}")
        if size > 0:
            levels[_price(entry.get("price"))] = size
    return levels


class MarketStreamParser:
    """Market-channel frames -> messages; keeps each asset's book. Never raises on bad input."""

    def __init__(self, stats: MarketStreamStats | None = None) -> None:
        self.stats = stats if stats is not None else MarketStreamStats()
        self._books: dict[str, _Side] = {}

    def reset(self) -> None:
        """Forget every book (a new connection starts from fresh snapshots)."""
        self._books.clear()

    def feed(self, raw: str | bytes) -> list[MarketMessage]:
        self.stats.frames += 1
        try:
            text = raw.decode() if isinstance(raw, bytes) else raw
        except UnicodeDecodeError:
            self._reject("not UTF-8", raw)
            return []
        if text.strip().upper() in ("PONG", "PING", ""):
            return []
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            self._reject("not JSON (or nested too deep)", text)
            return []
        out: list[MarketMessage] = []
        for item in data if isinstance(data, list) else [data]:
            try:
                out.extend(self._one(item))
            except (ValueError, TypeError, KeyError, ValidationError, ArithmeticError) as exc:
                self._reject(str(exc), item)
        self.stats.messages += len(out)
        return out

    def _reject(self, why: str, raw: Any) -> None:
        self.stats.malformed += 1
        log.error("polymarket market channel: malformed message (%s): %.200r", why, raw)

    def _book(self, asset: str, ts_ms: int) -> OrderBook:
        side = self._books[asset]
        return OrderBook(
            market=market_of(asset),
            ts_ms=ts_ms,
            bids=tuple(BookLevel(price=p, size=s) for p, s in side.bids.items()),
            asks=tuple(BookLevel(price=p, size=s) for p, s in side.asks.items()),
        )

    def _one(self, item: Any) -> list[MarketMessage]:
        if not isinstance(item, dict):
            raise ValueError("a message must be a JSON object")
        kind = item.get("event_type")
        if kind is None:  # older frames carry no event_type: tell them by their fields
            if "price_changes" in item:
                kind = "price_change"
            elif "bids" in item and "asks" in item:
                kind = "book"
            elif "new_tick_size" in item:
                kind = "tick_size_change"
            elif "price" in item and "side" in item:
                kind = "last_trade_price"
        if not isinstance(kind, str):
            raise ValueError("no event_type")
        if kind == "book":
            asset, condition = _str(item, "asset_id"), _str(item, "market")
            ts = ms_of(item.get("timestamp"))
            if ts is None:
                raise ValueError("timestamp is missing")
            bids, asks = _levels(item.get("bids"), "bids"), _levels(item.get("asks"), "asks")
            self._books[asset] = _Side(bids, asks, condition)
            return [
                BookMessage(
                    kind="book",
                    asset_id=asset,
                    condition_id=condition,
                    book=self._book(asset, ts),
                    hash=str(item.get("hash", "")),
                )
            ]
        if kind == "price_change":
            return self._price_change(item)
        if kind == "last_trade_price":
            ts = ms_of(item.get("timestamp"))
            if ts is None:
                raise ValueError("timestamp is missing")
            side = str(item.get("side", "")).upper()
            if side not in ("BUY", "SELL"):
                raise ValueError(f"side {side!r}")
            size = decimal_of(item.get("size"), "size")
            if size <= 0:
                raise ValueError(f"size {size}")
            return [
                LastTradeMessage(
                    asset_id=_str(item, "asset_id"),
                    condition_id=_str(item, "market"),
                    price=_price(item.get("price")),
                    size=size,
                    side=Side.BUY if side == "BUY" else Side.SELL,
                    fee_rate_bps=int(decimal_of(item.get("fee_rate_bps") or 0, "fee_rate_bps")),
                    ts_ms=ts,
                )
            ]
        if kind == "tick_size_change":
            ts = ms_of(item.get("timestamp"))
            if ts is None:
                raise ValueError("timestamp is missing")
            new = decimal_of(item.get("new_tick_size"), "new_tick_size")
            if not ZERO < new < 1:
                raise ValueError(f"tick {new}")
            old_raw = item.get("old_tick_size")
            return [
                TickSizeMessage(
                    asset_id=_str(item, "asset_id"),
                    condition_id=_str(item, "market"),
                    old_tick_size=decimal_of(old_raw, "old_tick_size") if old_raw not in (None, "") else None,
                    new_tick_size=new,
                    ts_ms=ts,
                )
            ]
        if kind == "market_resolved":
            ts = ms_of(item.get("timestamp"))
            assets = item.get("assets_ids")
            if ts is None or not isinstance(assets, list) or not all(isinstance(a, str) for a in assets):
                raise ValueError("timestamp or assets_ids missing")
            winner = _str(item, "winning_asset_id")
            if winner not in assets:
                raise ValueError("winning_asset_id is not one of assets_ids")
            condition = _str(item, "market")  # validated before any book is dropped
            for asset in assets:
                self._books.pop(asset, None)
            return [
                ResolvedMessage(
                    condition_id=condition,
                    asset_ids=tuple(assets),
                    winning_asset_id=winner,
                    winning_outcome=str(item.get("winning_outcome", "")),
                    ts_ms=ts,
                )
            ]
        self.stats.ignored += 1
        return []

    def _price_change(self, item: dict[str, Any]) -> list[MarketMessage]:
        ts = ms_of(item.get("timestamp"))
        if ts is None:
            raise ValueError("timestamp is missing")
        condition = _str(item, "market")
        raw_changes = item.get("price_changes")
        if raw_changes is None and "changes" in item:  # the older per-asset form
            asset = _str(item, "asset_id")
            raw_changes = [{**c, "asset_id": asset} for c in item["changes"] if isinstance(c, dict)]
        if not isinstance(raw_changes, list):
            raise ValueError("price_changes must be a list")
        if not raw_changes:  # well formed, but carries nothing
            self.stats.ignored += 1
            return []
        changes: list[tuple[str, bool, Decimal, Decimal]] = []
        for change in raw_changes:  # validate all before applying any
            if not isinstance(change, dict):
                raise ValueError("price_changes entries must be objects")
            side = str(change.get("side", "")).upper()
            if side not in ("BUY", "SELL"):
                raise ValueError(f"side {side!r}")
            size = decimal_of(change.get("size"), "size")
            if size < 0:
                raise ValueError(f"negative size {size}")
            changes.append((_str(change, "asset_id"), side == "BUY", _price(change.get("price")), size))
        touched: dict[str, str] = {}
        for asset, is_bid, price, size in changes:
            book = self._books.get(asset)
            if book is None:
                self.stats.orphaned += 1
                continue
            levels = book.bids if is_bid else book.asks
            if size == 0:
                levels.pop(price, None)
            else:
                levels[price] = size
            touched[asset] = next(
                (
                    str(c.get("hash", ""))
                    for c in raw_changes
                    if isinstance(c, dict) and c.get("asset_id") == asset
                ),
                "",
            )
        return [
            BookMessage(
                kind="price_change", asset_id=a, condition_id=condition, book=self._book(a, ts), hash=h
            )
            for a, h in touched.items()
        ]


async def _pinger(ws: aiohttp.ClientWebSocketResponse, interval_s: float) -> None:
    """Polymarket's market channel wants a text ``PING`` every 10 s."""
    while not ws.closed:
        await asyncio.sleep(interval_s)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_str("PING")


def frame_items(raw: str | bytes) -> list[Any] | None:
    """A channel frame's JSON items, one or a list of them; ``[]`` for a keep-alive (``PING``,
    ``PONG``, empty), ``None`` when the frame is not JSON (the reader counts it malformed)."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    if text.strip().upper() in ("PONG", "PING", ""):
        return []
    try:
        decoded = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return decoded if isinstance(decoded, list) else [decoded]


async def pinged_frames(
    ws: aiohttp.ClientWebSocketResponse, ping_interval_s: float
) -> AsyncIterator[str | bytes]:
    """A channel socket's data frames until it closes or fails, with its PINGs sent meanwhile."""
    pinger = asyncio.create_task(_pinger(ws, ping_interval_s))
    try:
        async for frame in ws:
            if frame.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                yield frame.data
            elif frame.type is aiohttp.WSMsgType.ERROR:
                break
    finally:
        pinger.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pinger


async def polymarket_market_stream(
    url: str,
    asset_ids: Sequence[str],
    *,
    stats: MarketStreamStats | None = None,
    session: aiohttp.ClientSession | None = None,
    ping_interval_s: float = 10.0,
    reconnect: bool = True,
    backoff_s: float = 0.5,
    max_backoff_s: float = 30.0,
) -> AsyncGenerator[MarketMessage, None]:
    """Subscribe to ``asset_ids`` on the market channel at ``url`` and yield parsed messages.

    Malformed frames are logged and counted in ``stats`` (pass one in to read it); a closed or
    failed connection is re-opened with exponential backoff (``reconnect=False``: the iterator
    ends instead). Only cancellation escapes.
    """
    counters = stats if stats is not None else MarketStreamStats()
    # custom_feature_enabled: the real channel sends market_resolved (and best_bid_ask) only then
    subscription = {"assets_ids": list(asset_ids), "type": "market", "custom_feature_enabled": True}
    parser = MarketStreamParser(counters)
    http = session if session is not None else aiohttp.ClientSession()
    delay = backoff_s
    try:
        while True:
            try:
                async with http.ws_connect(url) as ws:
                    await ws.send_str(json.dumps(subscription))
                    parser.reset()
                    delay = backoff_s
                    async for data in pinged_frames(ws, ping_interval_s):
                        for message in parser.feed(data):
                            yield message
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.warning("polymarket market channel %s: %s", url, exc)
            if not reconnect:
                return
            counters.reconnects += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_backoff_s)
    finally:
        if session is None:
            await http.close()
