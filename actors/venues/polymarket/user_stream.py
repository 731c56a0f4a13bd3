"""Polymarket's user channel: our order and trade events, pushed, as the venue actor's updates.

Why it reads both kinds: a ``trade`` message carries the fill but not the order's state, an
``order`` message the state but not the fill. The reader keeps the last order state per venue
order id (``PLACEMENT``, ``UPDATE``, ``CANCELLATION``) and gives each new fill that state with
the fill's quantity counted in (an order the channel never showed is left to the REST backstop,
which the venue actor runs at every (re)connect: nothing is guessed). A trade is read at its
first status (``MATCHED``; ``MINED``/``CONFIRMED`` repeat it, the fill id dedupes); a ``FAILED``
trade is logged loudly (the chain reverted it; the REST backstop and reconciliation decide).
Fill ids are the REST path's (``polymarket:<trade id>:<order id>``), so a fill seen both ways is
applied once. Subscription: ``{"auth": {apiKey, secret, passphrase}, "markets": [], "type":
"user"}`` and a text ``PING`` every 10 s, as the market channel.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp
from pydantic import ValidationError

from actors.domain.messages import OrderUpdate, UpdateKind
from actors.domain.model import Fill, Order, OrderStatus
from actors.venues.polymarket.market_stream import frame_items, pinged_frames
from actors.venues.polymarket.parse import order_from_json
from actors.venues.user_stream import StreamState, UserStreamEvent
from config.models import UserStreamConfig

log = logging.getLogger(__name__)

ENDED = (OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.FILLED)
ORDER_TYPES = {"PLACEMENT": "order", "UPDATE": "order", "CANCELLATION": "order", "TRADE": "trade"}
"""A message's ``type`` -> its ``event_type``, for payloads that come without the latter."""


@dataclass
class UserChannelReader:
    """Messages of the user channel in, the venue actor's updates out (pure: no I/O)."""

    client_id: Callable[[str], str]
    """Venue order id -> our client id (the gateway's map; unknown ids map to themselves)."""
    fills_of: Callable[[dict[str, Any]], list[Fill]]
    """Our side(s) of a trade, exactly as the REST ``/data/trades`` path reads them."""
    orders: dict[str, Order] = field(default_factory=dict)
    """Last state of each order the channel showed, by venue order id."""
    filled: dict[str, Decimal] = field(default_factory=dict)
    """Quantity of the fills read per venue order id (the channel's own count)."""
    seen: set[str] = field(default_factory=set)
    malformed: int = 0

    def feed(self, raw: str | bytes, now_ms: int) -> list[OrderUpdate]:
        items = frame_items(raw)
        if items is None:
            return self._reject("not JSON", raw)
        updates: list[OrderUpdate] = []
        for item in items:
            try:
                updates += self._one(item, now_ms)
            except (KeyError, ValueError, TypeError, ValidationError) as exc:
                self._reject(f"{type(exc).__name__}: {exc}", item)
        return updates

    def _reject(self, why: str, raw: Any) -> list[OrderUpdate]:
        self.malformed += 1
        log.error("polymarket user channel: malformed message (%s): %.120r", why, raw)
        return []

    def _one(self, item: Any, now_ms: int) -> list[OrderUpdate]:
        if not isinstance(item, dict):
            raise TypeError("not an object")
        kind = str(item.get("event_type") or ORDER_TYPES.get(str(item.get("type", "")).upper(), "")).lower()
        if kind == "order":
            return self._order(item, now_ms)
        if kind == "trade":
            return self._trade(item, now_ms)
        return []

    def _order(self, item: dict[str, Any], now_ms: int) -> list[OrderUpdate]:
        venue_id = str(item["id"])
        order = order_from_json(item, self.client_id(venue_id))
        self.orders[venue_id] = order
        if order.status not in ENDED:
            return []
        kind = UpdateKind.CANCELLED if order.status is OrderStatus.CANCELLED else UpdateKind.UNCHANGED
        return [_update(kind, order, now_ms)]

    def _trade(self, item: dict[str, Any], now_ms: int) -> list[OrderUpdate]:
        status = str(item.get("status", "")).upper()
        if status == "FAILED":
            log.critical("polymarket user channel: trade %s FAILED on chain: %.200r", item.get("id"), item)
            return []
        updates: list[OrderUpdate] = []
        for fill in self.fills_of(item):
            if fill.fill_id in self.seen:
                continue
            venue_id = fill.fill_id.rsplit(":", 1)[1]
            known = self.orders.get(venue_id)
            if known is None:  # never shown by the channel: the REST backstop reads it
                continue
            self.seen.add(fill.fill_id)
            filled = self.filled.get(venue_id, Decimal(0)) + fill.qty
            self.filled[venue_id] = filled
            counted = max(known.filled_qty, filled)
            state = OrderStatus.FILLED if counted >= known.qty else OrderStatus.PARTIALLY_FILLED
            if known.status in ENDED:
                state = known.status
            order = known.model_copy(update={"filled_qty": min(counted, known.qty), "status": state})
            self.orders[venue_id] = order
            updates.append(_update(UpdateKind.FILL, order, now_ms, fill))
        return updates


def _update(kind: UpdateKind, order: Order, now_ms: int, fill: Fill | None = None) -> OrderUpdate:
    return OrderUpdate(seq=0, kind=kind, ts_ms=now_ms, order=order, fill=fill)  # seq: the actor's


def user_ws_url(market_ws_url: str) -> str:
    """The user channel beside a market channel URL (``.../ws/market`` -> ``.../ws/user``)."""
    base = market_ws_url.rstrip("/")
    return (base.removesuffix("/market") if base.endswith("/market") else base) + "/user"


async def polymarket_user_stream(
    url: str,
    auth: dict[str, str],
    reader: UserChannelReader,
    config: UserStreamConfig,
    now_ms: Callable[[], int],
    *,
    ping_interval_s: float = 10.0,
) -> AsyncIterator[UserStreamEvent]:
    """Our pushed updates for ever: a ``StreamState`` at each (re)connect and drop, a dropped or
    failed connection re-opened after ``config.reconnect_s``. Only cancellation escapes."""
    subscription = json.dumps({"auth": auth, "markets": [], "type": "user"})
    opened = 0
    async with aiohttp.ClientSession() as http:
        while True:
            up = False
            try:
                async with http.ws_connect(url) as ws:
                    await ws.send_str(subscription)
                    opened += 1
                    up = True
                    yield StreamState(connected=True, opened=opened)
                    async for data in pinged_frames(ws, ping_interval_s):
                        for update in reader.feed(data, now_ms()):
                            yield update
                log.warning("polymarket user channel closed (code %s)", ws.close_code)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.warning("polymarket user channel %s: %s", url, exc)
            if up:
                yield StreamState(connected=False, opened=opened)
            await asyncio.sleep(config.reconnect_s)
