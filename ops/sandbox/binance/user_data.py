"""Binance's user data stream: listen keys over REST, the account's events pushed over websockets.

Why: a live venue actor learns its fills from these pushes (REST polling only as a backstop), so
the sandbox must serve them as Binance does, faults included (``venue.faults`` gates every pushed
message like any other websocket message: ``drop_ws`` on ``/ws/<listenKey>`` drops the stream).

As Binance's (spot, listen key) user data stream: ``POST /api/v3/userDataStream`` (``X-MBX-APIKEY``
only, no signature) answers ``{"listenKey": ...}``: the account's live key if it has one (its
validity extended), else a new one; ``PUT`` with ``listenKey`` extends it by 60 minutes
(``listen_key_ttl_s``), ``DELETE`` ends it and closes its sockets; an unknown or lapsed key is
-1125. A lapsed key's sockets get ``listenKeyExpired`` and nothing more. The websocket
``/ws/<listenKey>`` (or ``/stream?streams=<listenKey>``, wrapped) receives:

* ``executionReport`` for every order event: ``NEW`` (accepted), ``TRADE`` (each fill: ``t`` its
  trade id, the one ``myTrades`` lists as ``id``; ``l``/``L``/``n``/``N`` the fill's size, price and
  commission; ``z``/``Z`` the totals after it), ``CANCELED`` (a cancel request: ``c`` is the
  request's client id, ``C`` the order's) and ``EXPIRED`` (an immediate order's remainder);
* ``outboundAccountPosition`` after each of them, with the free and locked balances of the
  assets the event could change (the pair's base and quote, the fee asset when it is neither).

Event and transaction times are market time, as every other time of the sandbox's orders.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from actors.domain.messages import OrderUpdate, Reason, UpdateKind
from actors.domain.model import ZERO, Liquidity, OrderType
from ops.sandbox.binance.auth import check_key
from ops.sandbox.binance.protocol import BinanceError, _mandatory, fmt
from ops.sandbox.binance.trading import TradingEndpoints

LISTEN_KEY_CHARS = string.ascii_letters + string.digits
LISTEN_KEY_LENGTH = 60


def _unknown_key() -> BinanceError:
    return BinanceError(-1125, "This listenKey does not exist.")


class UserDataEndpoints(TradingEndpoints):
    """``POST|PUT|DELETE /api/v3/userDataStream`` and the events every order change pushes."""

    # ------------------------------------------------------------------ listen keys

    def _lapse_keys(self) -> None:
        """End every listen key past its validity; its sockets are told, then hear nothing."""
        now = self.clock()
        for key, until in list(self.listen_key_expiry.items()):
            if until > now:
                continue
            account = self.listen_keys[key]
            self._push_user(account, {"e": "listenKeyExpired", "E": self._now_ms, "listenKey": key})
            del self.listen_keys[key], self.listen_key_expiry[key]

    def open_listen_key(self, account: str) -> str:
        """The account's live listen key (extended) or a new one: what ``POST`` answers."""
        self._lapse_keys()
        key = next((k for k, a in self.listen_keys.items() if a == account), None)
        if key is None:
            key = "".join(secrets.choice(LISTEN_KEY_CHARS) for _ in range(LISTEN_KEY_LENGTH))
            self.listen_keys[key] = account
        self.listen_key_expiry[key] = self.clock() + self.listen_key_ttl_s
        self._notify()
        return key

    async def _key_request(self, request: web.Request) -> tuple[str, str]:
        """(account, listenKey) of a keep-alive or close: the key must be the caller's and live."""
        creds = check_key(request.headers.get("X-MBX-APIKEY", ""), self._accounts)
        key = (await self._params(request)).get("listenKey")
        if not key:
            raise _mandatory("listenKey")
        self._lapse_keys()
        if self.listen_keys.get(key) != creds.account:
            raise _unknown_key()
        return creds.account, key

    async def create_listen_key(self, request: web.Request) -> web.Response:
        creds = check_key(request.headers.get("X-MBX-APIKEY", ""), self._accounts)
        return web.json_response({"listenKey": self.open_listen_key(creds.account)})

    async def keepalive_listen_key(self, request: web.Request) -> web.Response:
        _account, key = await self._key_request(request)
        self.listen_key_expiry[key] = self.clock() + self.listen_key_ttl_s
        self._notify()
        return web.json_response({})

    async def close_listen_key(self, request: web.Request) -> web.Response:
        _account, key = await self._key_request(request)
        del self.listen_keys[key], self.listen_key_expiry[key]
        await self._close_user_sockets(key)
        self._notify()
        return web.json_response({})

    # ------------------------------------------------------------------ pushed events

    def _absorb(self, updates: Iterable[OrderUpdate]) -> None:
        """The engine's events as the venue books them, each pushed to its account's user stream."""
        for update in updates:
            super()._absorb([update])
            if self.listen_keys:
                self._push_report(update)

    def _push_report(self, update: OrderUpdate) -> None:
        account = self.engine.account_of(update.order.client_id)
        if account is None or account not in self.listen_keys.values():
            return
        self._lapse_keys()
        report = self.execution_report(update)
        if report is None:
            return
        self._push_user(account, report)
        self._push_user(account, self._account_position(account, update))

    def execution_report(self, update: OrderUpdate) -> dict[str, Any] | None:
        """Binance's ``executionReport`` of one engine event (``None``: Binance sends none)."""
        order, fill = update.order, update.fill
        cid = order.client_id
        if update.kind is UpdateKind.ACCEPTED:
            execution, client, original = "NEW", cid, ""
        elif update.kind is UpdateKind.FILL and fill is not None:
            execution, client, original = "TRADE", cid, ""
        elif update.kind is UpdateKind.CANCELLED and update.reason is Reason.REQUESTED:
            execution = "CANCELED"
            client, original = self._cancel_ids.get(cid, f"cancel-{order.venue_order_id}"), cid
        elif update.kind is UpdateKind.CANCELLED:
            execution, client, original = "EXPIRED", cid, ""
        else:  # a refused new order is answered over REST only; nothing changed otherwise
            return None
        core = self._order_core(order)
        last_qty = fill.qty if fill is not None else ZERO
        last_price = fill.price if fill is not None else ZERO
        commission = self._commission_json(fill) if fill is not None else None
        on_book = order.is_open and order.type is not OrderType.MARKET
        report: dict[str, Any] = {
            "e": "executionReport",
            "E": self._now_ms,
            "s": core["symbol"],
            "c": client,
            "S": core["side"],
            "o": core["type"],
            "f": core["timeInForce"],
            "q": core["origQty"],
            "p": core["price"],
            "P": fmt(ZERO),
            "F": fmt(ZERO),
            "g": -1,
            "C": original,
            "x": execution,
            "X": core["status"],
            "r": "NONE",
            "i": core["orderId"],
            "l": fmt(last_qty),
            "z": core["executedQty"],
            "L": fmt(last_price),
            "n": commission["commission"] if commission is not None else "0",
            "N": commission["commissionAsset"] if commission is not None else None,
            "T": fill.ts_ms if fill is not None else update.ts_ms,
            "t": self._fill_trade[fill.fill_id] if fill is not None else -1,
            "I": len(self.updates),
            "w": on_book,
            "m": fill is not None and fill.liquidity is Liquidity.MAKER,
            "M": False,
            "O": order.created_ms,
            "Z": core["cummulativeQuoteQty"],
            "Y": fmt(last_qty * last_price),
            "Q": fmt(self._wire[cid].orig_quote_qty) if cid in self._wire else fmt(ZERO),
            "V": "NONE",
        }
        if on_book:
            report["W"] = order.created_ms
        return report

    def _account_position(self, account: str, update: OrderUpdate) -> dict[str, Any]:
        """``outboundAccountPosition``: the balances the event could have changed."""
        market = self._of_order(update.order)
        assets = [market.base, market.quote]
        fee_asset = update.fill.fee_asset if update.fill is not None else None
        if fee_asset and fee_asset not in assets:
            assets.append(fee_asset)
        balances = self.balances(account)
        return {
            "e": "outboundAccountPosition",
            "E": self._now_ms,
            "u": self._now_ms,
            "B": [
                {
                    "a": a,
                    "f": fmt(balances.get(a, (ZERO, ZERO))[0]),
                    "l": fmt(balances.get(a, (ZERO, ZERO))[1]),
                }
                for a in assets
            ],
        }
