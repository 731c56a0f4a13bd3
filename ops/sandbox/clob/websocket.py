"""The market channel: websocket subscribers, their book snapshots and the changes after them.

* Market websocket ``/ws/market``: send ``{"assets_ids": [...], "type": "market"}`` (later
  ``{"assets_ids": [...], "operation": "subscribe" | "unsubscribe"}``; text ``PING`` answers
  ``PONG``); you get a JSON list of ``book`` snapshots, then ``price_change`` (level diffs, one
  message per market), ``last_trade_price`` (our fills), ``tick_size_change`` and
  ``market_resolved``. ``inject_ws_raw`` pushes arbitrary text, for parser fault tests.

A consumer too slow to keep up is cut off (its queue is bounded), as a real venue does.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web

from actors.domain.model import ZERO
from ops.sandbox.clob.protocol import _num, _size
from ops.sandbox.clob.records import _Published, _Subscriber
from ops.sandbox.clob.views import Views
from ops.sandbox.faults import FaultInjector

log = logging.getLogger(__name__)


class MarketChannel(Views):
    """Subscribers of the market channel and what they are sent."""

    def subscribe(self) -> _Subscriber:
        sub = _Subscriber()
        self._subscribers.append(sub)
        return sub

    def unsubscribe(self, sub: _Subscriber) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)
        sub.close()
        live = self.subscribed_assets()
        for token in [t for t in self._published if t not in live]:
            del self._published[token]

    def subscribed_assets(self) -> set[str]:
        return {a for s in self._subscribers for a in s.assets}

    def close_subscribers(self) -> None:
        for sub in list(self._subscribers):
            self.unsubscribe(sub)

    def ws_command(self, sub: _Subscriber, text: str) -> None:
        """One client message on the market channel; anything unintelligible is ignored."""
        message = channel_message(sub, text)
        if message is None:
            return
        assets = message.get("assets_ids", message.get("asset_ids"))
        if not isinstance(assets, list) or not all(isinstance(a, str) for a in assets):
            return
        operation = str(message.get("operation", "subscribe")).lower()
        if operation == "unsubscribe":
            sub.assets.difference_update(assets)
            return
        new = [a for a in dict.fromkeys(assets) if a in self._by_token and a not in sub.assets]
        self._publish()  # bring everyone else up to date first: the snapshot below is "now"
        sub.assets.update(new)
        books = []
        for token in new:
            if self._by_token[token].closed:
                continue
            books.append({"event_type": "book", **self.book_json(token)})
            self._remember(token)
        if books:
            sub.push(json.dumps(books))

    def inject_ws_raw(self, text: str, asset_id: str | None = None) -> int:
        """Push ``text`` verbatim to subscribers (of ``asset_id``, or all): parser fault tests."""
        count = 0
        for sub in self._subscribers:
            if asset_id is None or asset_id in sub.assets:
                sub.push(text)
                count += 1
        return count

    def _emit(self, tokens: Iterable[str], message: dict[str, Any]) -> None:
        wanted = set(tokens)
        text = json.dumps(message)
        for sub in self._subscribers:
            if sub.assets & wanted:
                sub.push(text)

    def _remember(self, token: str) -> None:
        book = self.current_book(token)
        self._published[token] = _Published(
            bids={lv.price: lv.size for lv in book.bids},
            asks={lv.price: lv.size for lv in book.asks},
            tick=self.tick_size(token),
        )

    def _publish(self) -> None:
        """Send every subscribed token's book changes since the last publication."""
        if not self._subscribers:
            return
        by_market: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for token in sorted(self.subscribed_assets()):
            market = self._by_token[token]
            previous = self._published.get(token)
            if market.closed or previous is None:
                continue
            book = self.current_book(token)
            tick = self.tick_size(token)
            if tick != previous.tick:
                self._emit(
                    (token,),
                    {
                        "event_type": "tick_size_change",
                        "market": market.info.condition_id,
                        "asset_id": token,
                        "old_tick_size": _num(previous.tick),
                        "new_tick_size": _num(tick),
                        "timestamp": str(book.ts_ms),
                    },
                )
                previous.tick = tick
            bids = {lv.price: lv.size for lv in book.bids}
            asks = {lv.price: lv.size for lv in book.asks}
            changes: list[tuple[str, Decimal, Decimal]] = []
            for side, old, new in (("BUY", previous.bids, bids), ("SELL", previous.asks, asks)):
                for price in sorted(set(old) | set(new)):
                    if old.get(price) != new.get(price):
                        changes.append((side, price, new.get(price, ZERO)))
            if not changes:
                continue
            previous.bids, previous.asks = bids, asks
            best_bid = _num(book.best_bid) if book.best_bid is not None else "0"
            best_ask = _num(book.best_ask) if book.best_ask is not None else "0"
            state = json.dumps([token, book.ts_ms, sorted(bids.items()), sorted(asks.items())], default=str)
            digest = hashlib.sha1(state.encode()).hexdigest()
            for side, price, size in changes:
                entry = {
                    "asset_id": token,
                    "price": _num(price),
                    "size": _size(size),
                    "side": side,
                    "hash": digest,
                    "best_bid": best_bid,
                    "best_ask": best_ask,
                }
                by_market.setdefault(market.info.condition_id, []).append((token, entry))
        for condition_id, entries in by_market.items():
            for sub in self._subscribers:
                mine = [e for token, e in entries if token in sub.assets]
                if mine:
                    sub.push(
                        json.dumps(
                            {
                                "event_type": "price_change",
                                "market": condition_id,
                                "price_changes": mine,
                                "timestamp": str(self._book_ms),
                            }
                        )
                    )


def channel_message(sub: _Subscriber, text: str) -> dict[str, Any] | None:
    """A client's JSON object on a channel; ``PING`` is answered ``PONG``, the unintelligible ignored."""
    if text.strip().upper() == "PING":
        sub.push("PONG")
        return None
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        log.info("sandbox clob: ignoring non-JSON websocket message %.80r", text)
        return None
    return message if isinstance(message, dict) else None


async def serve_market_ws(
    request: web.Request, venue: MarketChannel, faults: FaultInjector
) -> web.WebSocketResponse:
    """One ``/ws/market`` connection: commands in, queued messages out through the fault gate."""
    return await serve_channel(request, faults, venue.subscribe(), venue.ws_command, venue.unsubscribe)


async def serve_channel(
    request: web.Request,
    faults: FaultInjector,
    sub: _Subscriber,
    command: Callable[[_Subscriber, str], None],
    unsubscribe: Callable[[_Subscriber], None],
    refused_code: int = 4001,
) -> web.WebSocketResponse:
    """One channel connection: ``command`` per client text, ``sub``'s queue out through the fault
    gate; closed 1008 for a consumer too slow, ``refused_code`` for one the channel refused."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)

    async def sender() -> None:
        while True:
            text = await sub.queue.get()
            if text is None or ws.closed:
                break
            if not await faults.ws_gate(request.path):
                break
            await ws.send_str(text)
        if not ws.closed:
            code = 1008 if sub.overflowed else refused_code if getattr(sub, "refused", False) else 1001
            await ws.close(code=code)

    task = asyncio.get_running_loop().create_task(sender())
    try:
        with faults.track_ws(request.path, ws):
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    command(sub, msg.data)
                elif msg.type is WSMsgType.ERROR:
                    break
    finally:
        unsubscribe(sub)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await task
    return ws
