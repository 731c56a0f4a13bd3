"""Signed orders: validation, signature check, placement in the engine, cancels, and the fills
the engine makes recorded as the CLOB's trades.

* Orders: the EIP-712 order signature is verified against the CTF exchange domain of
  ``chain_id`` (the neg-risk exchange for neg-risk markets); only EOA orders (signature type 0,
  maker == signer == the API key's address). Price = makerAmount/takerAmount for a BUY
  (takerAmount/makerAmount for a SELL) must sit on the tick; size >= the minimum;
  ``feeRateBps`` must equal ``/fee-rate``. The order id is the EIP-712 order hash, so one signed
  order is one order: posting it again answers ``Duplicated`` and creates nothing. GTC, GTD
  (expiration in sandbox seconds), FOK (all or nothing, else rejected) and FAK (the rest
  cancelled; nothing matched is rejected), ``postOnly`` for GTC/GTD. Rejections answer 400 with
  ``{"error", "success": false, "orderID": null, "errorMsg"}``; an unexpected failure answers
  500 ``{"error": "Internal server error"}``; bad input never takes the server down.
* Fees are charged by ``actors.core.fees.FeeModel`` (crypto_fees_v2: taker only), whatever
  ``feeRateBps`` says; the engine reserves and settles them in USDC.

"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from eth_utils.address import to_checksum_address

from actors.data.polymarket import VENUE
from actors.domain.messages import OrderUpdate, Reason, UpdateKind
from actors.domain.model import ZERO, Liquidity, Order, OrderBook, OrderType, Side, TimeInForce, floor_to
from ops.sandbox.clob.protocol import (
    ERR_BALANCE,
    ERR_CLOSED,
    ERR_FAK,
    ERR_FOK,
    ERR_NOT_READY,
    ERR_OWNER,
    ERR_PAYLOAD,
    ERR_SIGNATURE,
    ERR_SIGNER,
    ERR_TOKEN,
    LOT,
    ORDER_TYPES,
    TOKEN_UNIT,
    ZERO_ADDRESS,
    RequestError,
    _digest,
    _num,
    _order_error,
    _size,
)
from ops.sandbox.clob.records import SandboxCreds, _Market, _Rec, _Trade
from ops.sandbox.clob.signing import _ORDER_FIELDS, eip712_digest, order_message, recover_signer
from ops.sandbox.clob.user_channel import UserChannel


class Orders(UserChannel):
    """Posting, cancelling and filling signed orders."""

    def post_order(self, creds: SandboxCreds, payload: Any) -> dict[str, Any]:
        """Validate, verify and place one signed order; the real CLOB's success body, or ``RequestError``
        (every refusal is kept in ``order_rejections``)."""
        try:
            return self._post_order(creds, payload)
        except RequestError as exc:
            self.order_rejections.append(exc.message)
            raise

    def _post_order(self, creds: SandboxCreds, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict) or not isinstance(payload.get("order"), dict):
            raise _order_error(ERR_PAYLOAD)
        raw = payload["order"]
        if payload.get("owner") != creds.api_key:
            raise _order_error(ERR_OWNER)
        order_type = payload.get("orderType", "GTC")
        post_only = payload.get("postOnly", False)
        if order_type not in ORDER_TYPES or not isinstance(post_only, bool):
            raise _order_error(f"{ERR_PAYLOAD}: orderType must be one of {', '.join(ORDER_TYPES)}")
        if post_only and order_type not in ("GTC", "GTD"):
            raise _order_error("invalid post-only order: only GTC and GTD orders can be post-only")
        fields, side, signature = self._parse_order(raw)
        if fields["signatureType"] != 0:
            raise _order_error("only EOA orders (signature type 0) are supported by the sandbox")
        if fields["signer"] != creds.address:
            raise _order_error(ERR_SIGNER)
        if fields["maker"] != fields["signer"]:
            raise _order_error(f"{ERR_SIGNATURE}: an EOA order's maker must be its signer")
        token = str(fields["tokenId"])
        market = self._by_token.get(token)
        if market is None:
            raise _order_error(ERR_TOKEN)
        exchange = self.exchanges[1] if market.neg_risk else self.exchanges[0]
        try:
            message = order_message(fields, self.chain_id, exchange)
        except (ValueError, TypeError, OverflowError):
            raise _order_error(ERR_PAYLOAD) from None
        order_id = "0x" + eip712_digest(message).hex()
        if recover_signer(message, signature) != fields["signer"]:
            raise _order_error(ERR_SIGNATURE)
        if order_id in self._orders:
            raise _order_error(f"order {order_id} is invalid. Duplicated.")
        if market.closed or self._now_ms >= market.info.end_ms:
            raise _order_error(ERR_CLOSED)
        if self._now_ms < market.accepting_ms:
            raise _order_error(ERR_NOT_READY)
        if fields["feeRateBps"] != market.fee_bps:
            raise _order_error(
                f"invalid user provided fee rate: ({fields['feeRateBps']}), "
                f"fee rate for the market must be {market.fee_bps}"
            )
        if fields["taker"] != ZERO_ADDRESS:
            raise _order_error(f"{ERR_PAYLOAD}: only public orders (taker = zero address)")
        expiration = int(fields["expiration"])
        if order_type == "GTD" and expiration * 1000 <= self._now_ms:
            raise _order_error(f"invalid expiration: {expiration} is not after the sandbox clock")
        price, size = self._price_size(order_id, side, fields)
        tick = self.tick_size(token)
        if not tick <= price <= 1 - tick or price % tick != 0:
            raise _order_error(
                f"order {order_id} is invalid. Price ({_num(price)}) breaks minimum tick size rule: "
                f"{_num(tick)}"
            )
        if size < market.info.min_size:
            raise _order_error(
                f"order {order_id} is invalid. Size ({_num(size)}) lower than the minimum: "
                f"{_num(market.info.min_size)}"
            )
        return self._place(
            creds, market, token, order_id, side, price, size, order_type, post_only, fields, raw
        )

    @staticmethod
    def _parse_order(raw: dict[str, Any]) -> tuple[dict[str, Any], Side, str]:
        fields: dict[str, Any] = {}
        for name, kind in _ORDER_FIELDS:
            if name == "side":
                continue
            value = raw.get(name)
            fields[name] = _address(value, name) if kind == "address" else _uint(value, name)
        side_raw = raw.get("side")
        if side_raw in ("BUY", 0):
            side = Side.BUY
        elif side_raw in ("SELL", 1):
            side = Side.SELL
        else:
            raise _order_error(f"{ERR_PAYLOAD}: side must be BUY or SELL")
        fields["side"] = 0 if side is Side.BUY else 1
        signature = raw.get("signature")
        if not isinstance(signature, str) or not signature:
            raise _order_error(f"{ERR_PAYLOAD}: missing signature")
        return fields, side, signature

    @staticmethod
    def _price_size(order_id: str, side: Side, fields: dict[str, Any]) -> tuple[Decimal, Decimal]:
        """(price, shares) of a limit order: a BUY gives makerAmount USDC for takerAmount shares."""
        maker, taker = Decimal(fields["makerAmount"]), Decimal(fields["takerAmount"])
        if maker <= 0 or taker <= 0:
            raise _order_error(f"order {order_id} is invalid. Amounts must be positive")
        shares_units, usdc_units = (taker, maker) if side is Side.BUY else (maker, taker)
        size = shares_units / TOKEN_UNIT
        if size != floor_to(size, LOT):
            raise _order_error(
                f"order {order_id} is invalid. Size ({_num(size)}) supports at most 2 decimals"
            )
        price = usdc_units / shares_units
        if price * shares_units != usdc_units:  # not a finite decimal: cannot be on any tick
            raise _order_error(
                f"order {order_id} is invalid. Price ({price:.6f}) breaks minimum tick size rule"
            )
        return price, size

    def _place(
        self,
        creds: SandboxCreds,
        market: _Market,
        token: str,
        order_id: str,
        side: Side,
        price: Decimal,
        size: Decimal,
        order_type: str,
        post_only: bool,
        fields: dict[str, Any],
        raw: dict[str, Any],
    ) -> dict[str, Any]:
        now = self._now_ms
        book = self.current_book(token)
        if order_type == "FOK" and _fillable(book, side, price) < size:
            raise _order_error(ERR_FOK)
        self._attempts[order_id] += 1
        attempt = self._attempts[order_id]
        engine_cid = order_id if attempt == 1 else f"{order_id}/{attempt}"
        if order_type in ("FOK", "FAK"):
            tif = TimeInForce.IOC
        elif post_only:
            tif = TimeInForce.POST_ONLY
        else:
            tif = TimeInForce.GTC
        order = Order(
            client_id=engine_cid,
            market=f"{VENUE}:{token}",
            side=side,
            type=OrderType.LIMIT,
            tif=tif,
            price=price,
            qty=size,
            created_ms=now,
        )
        events = self.engine.submit(order, now, account=creds.address)
        first = events[0]
        if first.kind is UpdateKind.REJECTED:
            raise _order_error(_reject_text(first, order_id))
        fills = [e.fill for e in events if e.fill is not None]
        if order_type == "FAK" and not fills:
            raise _order_error(ERR_FAK)
        rec = _Rec(
            order_id=order_id,
            engine_cid=engine_cid,
            owner=creds.api_key,
            address=creds.address,
            token=token,
            condition_id=market.info.condition_id,
            outcome=market.info.token_outcome(token),
            side=side,
            price=price,
            size=size,
            order_type=order_type,
            expiration_s=int(fields["expiration"]) if order_type == "GTD" else 0,
            expires=order_type == "GTD",
            created_ms=now,
            signed=dict(raw),
        )
        self._orders[order_id] = rec
        self._by_cid[engine_cid] = order_id
        self.user_order_event(rec, "PLACEMENT")
        self._handle(events, now)
        self._publish()
        shares = sum((f.qty for f in fills), ZERO)
        usdc = sum((f.price * f.qty for f in fills), ZERO)
        making, taking = (usdc, shares) if side is Side.BUY else (shares, usdc)
        return {
            "success": True,
            "errorMsg": "",
            "orderID": order_id,
            "transactionsHashes": [self._trade_by_id[t].tx_hash for t in rec.trade_ids],
            "status": "matched" if fills else "live",
            "takingAmount": _num(taking) if fills else "",
            "makingAmount": _num(making) if fills else "",
        }

    def cancel_orders(self, creds: SandboxCreds, order_ids: Iterable[str]) -> dict[str, Any]:
        """The real CLOB's cancel answer: ``{"canceled": [...], "not_canceled": {id: why}}``."""
        canceled: list[str] = []
        not_canceled: dict[str, str] = {}
        for order_id in order_ids:
            rec = self._orders.get(order_id)
            if rec is None or rec.address != creds.address:
                not_canceled[order_id] = "order not found"
                continue
            events = self.engine.cancel(rec.engine_cid, self._now_ms)
            if events and events[0].kind is UpdateKind.CANCELLED:
                canceled.append(order_id)
            else:
                not_canceled[order_id] = "already canceled or matched"
            self._handle(events, self._now_ms)
        return {"canceled": canceled, "not_canceled": not_canceled}

    def cancel_where(self, creds: SandboxCreds, condition_id: str = "", asset_id: str = "") -> dict[str, Any]:
        """Cancel the caller's open orders, of a market and/or token when given."""
        ids = [
            r.order_id
            for r in self._open_recs(creds.address)
            if (not condition_id or r.condition_id == condition_id) and (not asset_id or r.token == asset_id)
        ]
        return self.cancel_orders(creds, ids)

    def _open_recs(self, address: str) -> list[_Rec]:
        found = []
        for rec in self._orders.values():
            order = self.engine.order(rec.engine_cid)
            if rec.address == address and order is not None and order.is_open:
                found.append(rec)
        return found

    def _handle(self, events: list[OrderUpdate], t: int) -> None:
        """Record our fills as trades and tell the market channel about them (and the owner's user
        channel about them and about cancellations)."""
        for event in events:
            fill = event.fill
            if event.kind is UpdateKind.CANCELLED:
                cancelled = self._by_cid.get(event.order.client_id)
                if cancelled is not None:
                    self.user_order_event(self._orders[cancelled], "CANCELLATION")
                continue
            if event.kind is not UpdateKind.FILL or fill is None:
                continue
            order_id = self._by_cid.get(fill.client_id)
            if order_id is None:
                continue
            rec = self._orders[order_id]
            taker = fill.liquidity is Liquidity.TAKER
            trade = _Trade(
                trade_id=str(uuid.UUID(hex=_digest("trade", fill.fill_id)[:32], version=4)),
                order_id=order_id,
                fill=fill,
                trader_side="TAKER" if taker else "MAKER",
                counter_order_id="0x" + _digest("model-order", fill.fill_id),
                tx_hash="0x" + _digest("tx", fill.fill_id),
            )
            self._trades.append(trade)
            self._trade_by_id[trade.trade_id] = trade
            rec.trade_ids.append(trade.trade_id)
            self.user_trade_event(trade)
            self.user_order_event(rec, "UPDATE")
            taker_side = fill.side if taker else fill.side.opposite
            self._last_trade[rec.token] = (fill.price, taker_side)
            market = self._by_token[rec.token]
            self._emit(
                (rec.token,),
                {
                    "event_type": "last_trade_price",
                    "market": rec.condition_id,
                    "asset_id": rec.token,
                    "fee_rate_bps": str(market.fee_bps),
                    "price": _num(fill.price),
                    "side": taker_side.value.upper(),
                    "size": _size(fill.qty),
                    "timestamp": str(t),
                },
            )


def _uint(value: Any, name: str) -> int:
    """A non-negative integer given as a JSON number or a decimal string."""
    if isinstance(value, bool):
        raise _order_error(f"{ERR_PAYLOAD}: {name} must be an unsigned integer")
    bits = 8 if name in ("side", "signatureType") else 256
    number = value if isinstance(value, int) else None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 78:
        number = int(value)
    if number is None or not 0 <= number < 2**bits:
        raise _order_error(f"{ERR_PAYLOAD}: {name} must be a uint{bits}")
    return number


def _address(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise _order_error(f"{ERR_PAYLOAD}: {name} must be an address")
    try:
        return str(to_checksum_address(value))
    except (ValueError, TypeError):
        raise _order_error(f"{ERR_PAYLOAD}: {name} must be an address") from None


def _fillable(book: OrderBook, side: Side, price: Decimal) -> Decimal:
    """Shares an immediate order at ``price`` can take from ``book`` (lot-floored per level)."""
    levels = book.asks if side is Side.BUY else book.bids
    total = ZERO
    for level in levels:
        if (level.price > price) if side is Side.BUY else (level.price < price):
            break
        total += floor_to(level.size, LOT)
    return total


def _reject_text(event: OrderUpdate, order_id: str) -> str:
    reason = event.reason
    if reason is Reason.INSUFFICIENT_FUNDS:
        return ERR_BALANCE
    if reason is Reason.POST_ONLY_WOULD_TAKE:
        return "invalid post-only order: order crosses book"
    if reason in (Reason.TICK_SIZE, Reason.INVALID_PRICE):
        return f"order {order_id} is invalid. Price breaks minimum tick size rule ({event.detail})"
    if reason in (Reason.MIN_SIZE, Reason.LOT_SIZE, Reason.INVALID_QTY):
        return f"order {order_id} is invalid. Size: {event.detail}"
    return f"order {order_id} is invalid. {event.detail or (reason.value if reason else 'rejected')}"
