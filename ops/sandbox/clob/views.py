"""The venue's answers in the real CLOB's wire shapes (those of ``tests/fixtures/polymarket``):
orders, trades, markets, books and ``next_cursor`` pages; and the ground truth, every order,
trade, fill, payout and balance the venue holds, as Python methods (the ``/_sandbox`` routes
serve the same).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, TypeVar

from eth_utils.address import to_checksum_address

from actors.domain.model import ZERO, OrderStatus
from ops.sandbox.clob.exchange import ClobExchange
from ops.sandbox.clob.protocol import (
    END_CURSOR,
    MODEL_ADDRESS,
    MODEL_OWNER,
    USDC,
    _json_number,
    _num,
    _size,
    decode_cursor,
    encode_cursor,
    iso_ms,
)
from ops.sandbox.clob.records import Payout, _Market, _Rec, _Trade

T = TypeVar("T")


class Views(ClobExchange):
    """Wire shapes of what the venue holds, pages of them, and the ground truth."""

    def order_json(self, rec: _Rec) -> dict[str, Any]:
        order = self.engine.order(rec.engine_cid)
        assert order is not None  # every record was accepted by the engine
        if order.status is OrderStatus.FILLED:
            status = "MATCHED"
        elif order.status is OrderStatus.CANCELLED:
            status = "CANCELED"
        elif order.status is OrderStatus.REJECTED:
            status = "INVALID"
        else:
            status = "LIVE"
        return {
            "associate_trades": list(rec.trade_ids),
            "id": rec.order_id,
            "status": status,
            "market": rec.condition_id,
            "original_size": _size(rec.size),
            "outcome": rec.outcome,
            "maker_address": rec.address,
            "owner": rec.owner,
            "price": _num(rec.price),
            "side": rec.side.value.upper(),
            "size_matched": _size(order.filled_qty),
            "asset_id": rec.token,
            "expiration": str(rec.signed.get("expiration", "0")) if rec.expires else "0",
            "order_type": rec.order_type,
            "created_at": rec.created_ms // 1000,
        }

    def trade_json(self, trade: _Trade) -> dict[str, Any]:
        fill = trade.fill
        rec = self._orders[trade.order_id]
        market = self._by_token[rec.token]
        when = iso_ms(fill.ts_ms)
        ours = fill.side.value.upper()
        theirs = fill.side.opposite.value.upper()
        if trade.trader_side == "TAKER":
            maker_orders = [
                {
                    "order_id": trade.counter_order_id,
                    "owner": MODEL_OWNER,
                    "maker_address": MODEL_ADDRESS,
                    "matched_amount": _size(fill.qty),
                    "price": _num(fill.price),
                    "fee_rate_bps": "0",
                    "asset_id": rec.token,
                    "outcome": rec.outcome,
                    "side": theirs,
                }
            ]
            taker_order, side = trade.order_id, ours
        else:
            maker_orders = [
                {
                    "order_id": trade.order_id,
                    "owner": rec.owner,
                    "maker_address": rec.address,
                    "matched_amount": _size(fill.qty),
                    "price": _num(fill.price),
                    "fee_rate_bps": str(market.fee_bps),
                    "asset_id": rec.token,
                    "outcome": rec.outcome,
                    "side": ours,
                }
            ]
            taker_order, side = trade.counter_order_id, theirs
        return {
            "id": trade.trade_id,
            "taker_order_id": taker_order,
            "market": rec.condition_id,
            "asset_id": rec.token,
            "side": side,
            "size": _size(fill.qty),
            "fee_rate_bps": str(market.fee_bps),
            "price": _num(fill.price),
            "status": "CONFIRMED",
            "match_time": when,
            "last_update": when,
            "outcome": rec.outcome,
            "bucket_index": 0,
            "owner": rec.owner,
            "maker_address": rec.address,
            "transaction_hash": trade.tx_hash,
            "maker_orders": maker_orders,
            "trader_side": trade.trader_side,
        }

    def market_json(self, market: _Market) -> dict[str, Any]:
        info, raw = market.info, market.raw
        tokens = []
        up_mid: Decimal | None = None
        if not market.closed:
            up_mid = self._model_books(market, self._book_ms)[0].mid
        for token, outcome in ((info.up_token_id, "Up"), (info.down_token_id, "Down")):
            if market.winner is not None:
                price: Decimal | float = Decimal(1) if market.winner == outcome else ZERO
            elif up_mid is not None:
                price = up_mid if outcome == "Up" else 1 - up_mid
            else:
                price = Decimal("0.5")
            tokens.append(
                {
                    "outcome": outcome,
                    "price": float(price),
                    "token_id": token,
                    "winner": market.winner == outcome,
                }
            )
        return {
            "accepting_order_timestamp": iso_ms(market.accepting_ms),
            "accepting_orders": self._accepting(market),
            "active": True,
            "archived": False,
            "closed": market.closed,
            "condition_id": info.condition_id,
            "description": str(raw.get("description", "")),
            "enable_order_book": True,
            "end_date_iso": iso_ms(info.end_ms),
            "fpmm": "",
            "game_start_time": iso_ms(info.start_ms),
            "icon": str(raw.get("icon", "")),
            "image": str(raw.get("image", "")),
            "is_50_50_outcome": False,
            "maker_base_fee": market.fee_bps,
            "market_slug": info.slug,
            "minimum_order_size": _json_number(info.min_size),
            "minimum_tick_size": float(self.tick_size(info.up_token_id)),
            "neg_risk": market.neg_risk,
            "neg_risk_market_id": "",
            "neg_risk_request_id": "",
            "notifications_enabled": True,
            "question": info.question,
            "question_id": str(raw.get("questionID", "")),
            "rewards": {
                "max_spread": raw.get("rewardsMaxSpread", 0),
                "min_size": raw.get("rewardsMinSize", 0),
                "rates": None,
            },
            "seconds_delay": 0,
            "tags": ["Crypto", "Bitcoin"],
            "taker_base_fee": market.fee_bps,
            "tokens": tokens,
        }

    def book_json(self, token: str) -> dict[str, Any]:
        """``/book``: levels worst first, best last (as the real CLOB lists them)."""
        market = self._by_token[token]
        book = self.current_book(token)
        last = self._last_trade.get(token)
        payload: dict[str, Any] = {
            "market": market.info.condition_id,
            "asset_id": token,
            "timestamp": str(book.ts_ms),
            "hash": "",
            "bids": [{"price": _num(lv.price), "size": _size(lv.size)} for lv in reversed(book.bids)],
            "asks": [{"price": _num(lv.price), "size": _size(lv.size)} for lv in reversed(book.asks)],
            "min_order_size": _num(market.info.min_size),
            "tick_size": _num(self.tick_size(token)),
            "neg_risk": market.neg_risk,
            "last_trade_price": _num(last[0]) if last else "0.5",
        }
        payload["hash"] = book_hash(payload)
        return payload

    def page(
        self, items: Sequence[T], cursor: str | None, to_json: Callable[[T], dict[str, Any]]
    ) -> dict[str, Any]:
        """One ``next_cursor`` page of ``items``, only that page rendered."""
        offset = decode_cursor(cursor)
        if offset < 0 or offset >= len(items):
            return {"limit": self.page_size, "count": 0, "next_cursor": END_CURSOR, "data": []}
        data = [to_json(item) for item in items[offset : offset + self.page_size]]
        nxt = offset + len(data)
        return {
            "limit": self.page_size,
            "count": len(data),
            "next_cursor": encode_cursor(nxt) if nxt < len(items) else END_CURSOR,
            "data": data,
        }

    # ------------------------------------------------------------------ ground truth

    def orders(self, address: str | None = None) -> list[dict[str, Any]]:
        """Every order the venue holds (each once, however often it was posted), wire shape."""
        return [self.order_json(r) for r in self._orders.values() if address is None or r.address == address]

    def open_orders(self, address: str | None = None) -> list[dict[str, Any]]:
        return [o for o in self.orders(address) if o["status"] == "LIVE"]

    def order(self, order_id: str) -> dict[str, Any] | None:
        rec = self._orders.get(order_id)
        return None if rec is None else self.order_json(rec)

    def trades(self, address: str | None = None) -> list[dict[str, Any]]:
        return [
            self.trade_json(t)
            for t in self._trades
            if address is None or self._orders[t.order_id].address == address
        ]

    def fills(self) -> list[dict[str, Any]]:
        """The engine's fills with the order and trade ids they belong to."""
        return [
            {**t.fill.model_dump(mode="json"), "order_id": t.order_id, "trade_id": t.trade_id}
            for t in self._trades
        ]

    def payouts(self) -> list[Payout]:
        return list(self._payouts)

    def balances(self, address: str) -> dict[str, dict[str, str]]:
        account = str(to_checksum_address(address))
        return {
            asset: {"free": _num(b.free), "locked": _num(b.locked), "total": _num(b.total)}
            for asset, b in self.engine.balances(account).items()
        }

    def balance(self, address: str, asset: str = USDC) -> Decimal:
        """Free + locked: what the wallet holds (Polymarket does not lock funds on chain)."""
        return self.engine.balance(str(to_checksum_address(address)), asset).total


def book_hash(payload: dict[str, Any]) -> str:
    """SHA-1 of the compact book JSON with an empty hash: py-clob-client's server-compatible hash."""
    body = {**payload, "hash": ""}
    return hashlib.sha1(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()
