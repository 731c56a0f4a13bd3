"""Polymarket's Real-Time Data Socket (RTDS), the Chainlink part: the price the 5-minute markets
settle on, pushed a tick at a time, in step with the sandbox's clock.

Why the sandbox serves it: live, ``polymarket_lag`` reads its reference (``chainlink:BTC/USD``)
from this socket, as the real bot does; the sandbox replays the same day's Chainlink ticks its
markets settle on, so strikes, prices and settlement agree.

* Websocket ``/rtds`` (the real one is ``wss://ws-live-data.polymarket.com``): send
  ``{"action": "subscribe", "subscriptions": [{"topic": "crypto_prices_chainlink", "type": "*",
  "filters": "{\\"symbol\\":\\"btc/usd\\"}"}]}`` (``filters`` may be empty; ``"unsubscribe"``
  undoes it; a text ``PING`` answers ``PONG``). From the next clock step on you get each tick as
  ``{"topic": "crypto_prices_chainlink", "type": "update", "timestamp": <sent ms>, "payload":
  {"symbol": "btc/usd", "timestamp": <tick ms>, "value": <price>}}``. Nothing from before the
  subscription is sent (the real socket sends no history either).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from ops.sandbox.clob.records import _Subscriber
from ops.sandbox.clob.websocket import MarketChannel, channel_message, serve_channel
from ops.sandbox.faults import FaultInjector

log = logging.getLogger(__name__)

CHAINLINK_TOPIC = "crypto_prices_chainlink"
SYMBOL = "btc/usd"
"""The one feed the sandbox replays (its markets are BTC Up/Down)."""


class _PriceSubscriber(_Subscriber):
    """One RTDS websocket: the Chainlink symbols it follows."""

    def __init__(self) -> None:
        super().__init__()
        self.symbols: set[str] = set()


def subscribed_symbols(subscription: Any) -> set[str]:
    """The Chainlink symbols one ``subscriptions`` entry asks for (none: another topic)."""
    if not isinstance(subscription, dict) or subscription.get("topic") != CHAINLINK_TOPIC:
        return set()
    filters = subscription.get("filters") or ""
    if not filters:
        return {SYMBOL}
    try:
        wanted = json.loads(filters) if isinstance(filters, str) else filters
    except ValueError:
        return set()
    symbol = wanted.get("symbol") if isinstance(wanted, dict) else None
    return {str(symbol).lower()} if symbol else set()


class PriceChannel(MarketChannel):
    """RTDS subscribers and the Chainlink ticks they are sent as the clock passes them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._price_subscribers: list[_PriceSubscriber] = []
        self._prices_sent_ms: int | None = None
        """Ticks at or before this time were published (``None``: the clock has not stepped yet)."""
        super().__init__(*args, **kwargs)

    def price_subscribe(self) -> _PriceSubscriber:
        sub = _PriceSubscriber()
        self._price_subscribers.append(sub)
        return sub

    def price_unsubscribe(self, sub: _Subscriber) -> None:
        if sub in self._price_subscribers:
            self._price_subscribers.remove(sub)
        sub.close()

    def close_subscribers(self) -> None:
        super().close_subscribers()
        for sub in list(self._price_subscribers):
            self.price_unsubscribe(sub)

    def price_command(self, sub: _Subscriber, text: str) -> None:
        """One client message: subscribe or unsubscribe; anything else is ignored."""
        assert isinstance(sub, _PriceSubscriber)
        message = channel_message(sub, text)
        if message is None:
            return
        action = str(message.get("action", "")).lower()
        symbols: set[str] = set()
        for subscription in message.get("subscriptions") or []:
            symbols |= subscribed_symbols(subscription)
        if action == "subscribe":
            sub.symbols |= symbols
        elif action == "unsubscribe":
            sub.symbols -= symbols

    def _publish(self) -> None:
        super()._publish()
        self._publish_prices()

    def _publish_prices(self) -> None:
        """Every tick since the last publication, to the subscribers of its symbol."""
        now = self._book_ms
        since, self._prices_sent_ms = self._prices_sent_ms, now
        listeners = [s for s in self._price_subscribers if SYMBOL in s.symbols]
        if since is None or not listeners:
            return
        first, last = self.ticks.index_at(since) + 1, self.ticks.index_at(now)
        for i in range(first, last + 1):
            text = json.dumps(
                {
                    "topic": CHAINLINK_TOPIC,
                    "type": "update",
                    "timestamp": now,
                    "payload": {
                        "symbol": SYMBOL,
                        "timestamp": int(self.ticks.ts_ms[i]),
                        "value": float(self.ticks.price[i]),
                    },
                }
            )
            for sub in listeners:
                sub.push(text)


async def serve_rtds_ws(
    request: web.Request, venue: PriceChannel, faults: FaultInjector
) -> web.WebSocketResponse:
    """One ``/rtds`` connection (see the module docstring)."""
    return await serve_channel(
        request, faults, venue.price_subscribe(), venue.price_command, venue.price_unsubscribe
    )
