"""The user channel: an account's own order and trade events, pushed as the real CLOB pushes them.

* User websocket ``/ws/user``: send ``{"auth": {"apiKey", "secret", "passphrase"}, "markets":
  [condition ids, or none for all], "type": "user"}`` (later ``{"markets": [...], "operation":
  "subscribe" | "unsubscribe"}``; text ``PING`` answers ``PONG``). Bad credentials close the
  socket (4001). You then get, for the orders of that API key:
  ``{"event_type": "order", "type": "PLACEMENT" | "UPDATE" | "CANCELLATION", ...}`` with the
  REST order fields, and for each of its trades ``{"event_type": "trade", "type": "TRADE",
  "status": "MATCHED"}`` then ``"CONFIRMED"``, with the REST trade fields (the same trade id,
  so a client reading both ways counts a fill once). Shapes: tests/fixtures/polymarket/ws_user_*.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from aiohttp import web

from ops.sandbox.clob.records import _Rec, _Subscriber, _Trade
from ops.sandbox.clob.websocket import MarketChannel, channel_message, serve_channel
from ops.sandbox.faults import FaultInjector

log = logging.getLogger(__name__)

UNAUTHORISED = 4001
"""Close code for a user-channel subscription whose credentials do not match."""


class _UserSubscriber(_Subscriber):
    """One user-channel websocket: whose events (an API key, once authenticated), which markets."""

    def __init__(self) -> None:
        super().__init__()
        self.owner: str | None = None
        self.refused = False


class UserChannel(MarketChannel):
    """Subscribers of the user channel and the order and trade events they are sent."""

    def user_subscribe(self) -> _UserSubscriber:
        sub = _UserSubscriber()
        self._user_subscribers.append(sub)
        return sub

    def user_unsubscribe(self, sub: _Subscriber) -> None:
        if sub in self._user_subscribers:
            self._user_subscribers.remove(sub)
        sub.close()

    def close_subscribers(self) -> None:
        super().close_subscribers()
        for sub in list(self._user_subscribers):
            self.user_unsubscribe(sub)

    def user_command(self, sub: _Subscriber, text: str) -> None:
        """One client message on the user channel: the authenticated subscription, then changes."""
        assert isinstance(sub, _UserSubscriber)
        message = channel_message(sub, text)
        if message is None:
            return
        markets = message.get("markets", [])
        if not isinstance(markets, list) or not all(isinstance(m, str) for m in markets):
            return
        if sub.owner is None:
            sub.owner = self._user_owner(message.get("auth"))
            if sub.owner is None:
                sub.refused = True
                sub.close()
                return
        if str(message.get("operation", "subscribe")).lower() == "unsubscribe":
            sub.assets.difference_update(markets)
        else:
            sub.assets.update(markets)

    def _user_owner(self, auth: Any) -> str | None:
        """The API key of matching credentials (key, secret and passphrase), else None."""
        if not isinstance(auth, dict):
            return None
        creds = self._creds.get(str(auth.get("apiKey", "")))
        if creds is None:
            return None
        secret_ok = hmac.compare_digest(str(auth.get("secret", "")), creds.secret)
        passphrase_ok = hmac.compare_digest(str(auth.get("passphrase", "")), creds.passphrase)
        return creds.api_key if secret_ok and passphrase_ok else None

    def _user_emit(self, rec: _Rec, message: dict[str, Any]) -> None:
        text = json.dumps(message)
        for sub in self._user_subscribers:
            if sub.owner == rec.owner and (not sub.assets or rec.condition_id in sub.assets):
                sub.push(text)

    def user_order_event(self, rec: _Rec, kind: str) -> None:
        """An order of ``rec``'s owner was placed, matched (in part) or cancelled."""
        if self._user_subscribers:
            event = {
                **self.order_json(rec),
                "order_owner": rec.owner,
                "event_type": "order",
                "type": kind,
                "timestamp": str(self._now_ms),
            }
            self._user_emit(rec, event)

    def user_trade_event(self, trade: _Trade) -> None:
        """A trade of the owner's order: matched, then (the sandbox settles at once) confirmed."""
        if not self._user_subscribers:
            return
        rec = self._orders[trade.order_id]
        for status in ("MATCHED", "CONFIRMED"):
            event = {
                **self.trade_json(trade),
                "trade_owner": rec.owner,
                "event_type": "trade",
                "type": "TRADE",
                "status": status,
                "timestamp": str(self._now_ms),
            }
            self._user_emit(rec, event)


async def serve_user_ws(
    request: web.Request, venue: UserChannel, faults: FaultInjector
) -> web.WebSocketResponse:
    """One ``/ws/user`` connection (see the module docstring)."""
    sub = venue.user_subscribe()
    return await serve_channel(request, faults, sub, venue.user_command, venue.user_unsubscribe, UNAUTHORISED)
