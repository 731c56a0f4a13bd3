"""Signed trading endpoints: new order, query, cancel, open orders, account and my trades.

Orders go to the one matching engine (``actors.core.matching``) and meet the modelled book of
``exchange``; the answers are Binance's shapes (``ACK``/``RESULT``/``FULL``), the refusals
Binance's codes (``_rejection`` maps the engine's reasons to them).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from decimal import Decimal

from aiohttp import web

from actors.domain.messages import OrderUpdate, Reason, UpdateKind
from actors.domain.model import (
    ZERO,
    Fill,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    floor_to,
    to_decimal,
)
from ops.sandbox.binance.exchange import SandboxMarket, _Wire
from ops.sandbox.binance.protocol import (
    BinanceError,
    _decimal,
    _illegal,
    _int,
    _mandatory,
    _not_required,
    fmt,
)
from ops.sandbox.binance.rest import BinanceRest

_CLIENT_ID_RE = re.compile(r"[A-Za-z0-9_\-.]{1,36}")


class TradingEndpoints(BinanceRest):
    """``POST|GET|DELETE /api/v3/order``, ``GET|DELETE /api/v3/openOrders``, ``account``, ``myTrades``."""

    async def new_order(self, request: web.Request) -> web.Response:
        """``POST /api/v3/order``; every refusal of a signed request is kept in ``order_rejections``."""
        account, params = await self._signed(request)
        try:
            return await self._new_order(account, params)
        except BinanceError as exc:
            self.order_rejections.append((params.get("newClientOrderId", ""), exc.code, exc.msg))
            raise

    async def _new_order(self, account: str, params: dict[str, str]) -> web.Response:
        market = self._market(params)
        symbol = market.symbol
        side_raw = params.get("side")
        if not side_raw:
            raise _mandatory("side")
        if side_raw not in ("BUY", "SELL"):
            raise BinanceError(-1117, "Invalid side.")
        side = Side.BUY if side_raw == "BUY" else Side.SELL
        otype = params.get("type")
        if not otype:
            raise _mandatory("type")
        if otype not in ("LIMIT", "LIMIT_MAKER", "MARKET"):
            if otype in ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"):
                raise BinanceError(-2010, "Stop loss orders are not supported for this symbol.")
            raise BinanceError(-1116, "Invalid orderType.")
        resp_type = params.get("newOrderRespType", "FULL")
        if resp_type not in ("ACK", "RESULT", "FULL"):
            raise _illegal("newOrderRespType", "ACK|RESULT|FULL")
        client_id = params.get("newClientOrderId") or secrets.token_hex(11)
        if not _CLIENT_ID_RE.fullmatch(client_id):
            raise _illegal("newClientOrderId", "^[a-zA-Z0-9-_]{1,36}$")
        tif_raw = params.get("timeInForce")
        price = _decimal(params, "price")
        qty = _decimal(params, "quantity")
        quote_qty = _decimal(params, "quoteOrderQty")

        if otype == "LIMIT":
            if tif_raw is None:
                raise _mandatory("timeInForce")
            if tif_raw not in ("GTC", "IOC", "FOK"):
                raise BinanceError(-1115, "Invalid timeInForce.")
            if tif_raw == "FOK":
                raise BinanceError(-1115, "Invalid timeInForce.")  # not modelled by the engine
            if price is None:
                raise _mandatory("price")
            if qty is None:
                raise _mandatory("quantity")
            if quote_qty is not None:
                raise _not_required("quoteOrderQty")
            tif = TimeInForce.GTC if tif_raw == "GTC" else TimeInForce.IOC
            order_type = OrderType.LIMIT
        elif otype == "LIMIT_MAKER":
            if tif_raw is not None:
                raise _not_required("timeInForce")
            if price is None:
                raise _mandatory("price")
            if qty is None:
                raise _mandatory("quantity")
            tif, order_type = TimeInForce.POST_ONLY, OrderType.LIMIT
        else:
            if tif_raw is not None:
                raise _not_required("timeInForce")
            if price is not None:
                raise _not_required("price")
            if (qty is None) == (quote_qty is None):
                raise BinanceError(
                    -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"
                )
            if qty is None and quote_qty is not None:
                qty = self._qty_for_quote(market, side, quote_qty)
            tif, order_type = TimeInForce.IOC, OrderType.MARKET

        assert qty is not None
        existing = self.engine.order(client_id)
        if existing is not None:
            earlier = self._rejections.get(client_id)
            if earlier is not None and existing.status is OrderStatus.REJECTED:
                raise earlier
            raise BinanceError(-2010, "Duplicate order sent.")
        self._check_filters(market, order_type, side, price, qty)

        order = Order(
            client_id=client_id,
            market=market.market,
            side=side,
            type=order_type,
            tif=tif,
            price=price,
            qty=qty,
            created_ms=self._now_ms,
        )
        self._wire[client_id] = _Wire(
            type=otype,
            tif=tif_raw or "GTC",
            symbol=symbol,
            orig_quote_qty=quote_qty or ZERO,
        )
        updates = self.engine.submit(order, self._now_ms, account)
        self._absorb(updates)
        self._publish_depth(market, self._now_ms)
        self._notify()
        first = updates[0]
        if first.kind is UpdateKind.REJECTED:
            error = _rejection(first)
            self._rejections[client_id] = error
            raise error
        self._by_order_id[int(first.order.venue_order_id or 0)] = client_id
        final = self.engine.order(client_id)
        assert final is not None
        ack = {
            "symbol": symbol,
            "orderId": int(final.venue_order_id or 0),
            "orderListId": -1,
            "clientOrderId": client_id,
            "transactTime": self._now_ms,
        }
        if resp_type == "ACK":
            return web.json_response(ack)
        core = self._order_core(final)
        result = {
            **ack,
            "price": core["price"],
            "origQty": core["origQty"],
            "executedQty": core["executedQty"],
            "origQuoteOrderQty": fmt(quote_qty or ZERO),
            "cummulativeQuoteQty": core["cummulativeQuoteQty"],
            "status": core["status"],
            "timeInForce": core["timeInForce"],
            "type": core["type"],
            "side": core["side"],
            "workingTime": self._now_ms,
            "selfTradePreventionMode": "NONE",
        }
        if resp_type == "FULL":
            result["fills"] = [
                {
                    "price": fmt(u.fill.price),
                    "qty": fmt(u.fill.qty),
                    **self._commission_json(u.fill),
                    "tradeId": self._fill_trade[u.fill.fill_id],
                }
                for u in updates
                if u.kind is UpdateKind.FILL and u.fill is not None
            ]
        return web.json_response(result)

    def _commission_json(self, fill: Fill) -> dict[str, str]:
        """``commission`` and ``commissionAsset`` of a fill, in the asset it was charged in."""
        asset, amount = self.engine.fees.charged(fill, self._by_market[fill.market].quote)
        return {"commission": fmt(amount), "commissionAsset": asset}

    def _qty_for_quote(self, market: SandboxMarket, side: Side, quote: Decimal) -> Decimal:
        """Quantity a MARKET order with ``quoteOrderQty`` buys/sells walking the market's current book."""
        book = self.book(market.market)
        levels = book.asks if side is Side.BUY else book.bids
        lot = market.instrument.lot_size
        left, qty = quote, ZERO
        for lv in levels:
            take = min(lv.size, floor_to(left / lv.price, lot))
            if take <= 0:
                break
            qty += take
            left -= take * lv.price
        if qty <= 0:
            raise BinanceError(-1013, "Filter failure: LOT_SIZE")
        return qty

    def _lookup(
        self, account: str, params: Mapping[str, str], missing: BinanceError, market: SandboxMarket
    ) -> Order:
        """The order a query or cancel names, in the request's symbol (another symbol's is unknown)."""
        cid = params.get("origClientOrderId") or None
        oid = _int(params, "orderId", default=-1)
        if cid is None and oid < 0:
            raise BinanceError(
                -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
            )
        order = self._visible(account, client_id=cid, order_id=oid if cid is None else None, market=market)
        if order is None or (cid is not None and oid >= 0 and int(order.venue_order_id or 0) != oid):
            raise missing
        return order

    async def query_order(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        market = self._market(params)
        order = self._lookup(account, params, BinanceError(-2013, "Order does not exist."), market)
        return web.json_response(self.order_json(order))

    async def cancel_order(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        market = self._market(params)
        unknown = BinanceError(-2011, "Unknown order sent.")
        order = self._lookup(account, params, unknown, market)
        if not order.is_open:
            raise unknown
        cancel_id = params.get("newClientOrderId") or f"cancel-{order.venue_order_id}"
        self._cancel_ids[order.client_id] = cancel_id
        updates = self.engine.cancel(order.client_id, self._now_ms)
        self._absorb(updates)
        self._notify()
        final = self.engine.order(order.client_id)
        assert final is not None
        return web.json_response(self._cancel_json(final, cancel_id))

    async def open_orders(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        market = self._symbol(params, required=False)
        orders = self.engine.open_orders(market.market if market is not None else None, account)
        return web.json_response([self.order_json(o) for o in orders])

    async def cancel_open_orders(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        market = self._market(params)
        orders = self.engine.open_orders(market.market, account)
        if not orders:
            raise BinanceError(-2011, "Unknown order sent.")
        updates = self.engine.cancel_all(market.market, self._now_ms, account)
        self._absorb(updates)
        self._notify()
        out = []
        for o in orders:
            final = self.engine.order(o.client_id)
            assert final is not None
            out.append(self._cancel_json(final, f"cancel-{final.venue_order_id}"))
        return web.json_response(out)

    async def account_info(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        omit_zero = params.get("omitZeroBalances", "false").lower() == "true"
        bals = self.engine.balances(account)
        assets = sorted(set(bals) | {a for m in self.symbols.values() for a in (m.base, m.quote)})
        maker = int(to_decimal(self.engine.fees.costs.binance.maker) * 10_000)
        taker = int(to_decimal(self.engine.fees.costs.binance.taker) * 10_000)
        rows = []
        for asset in assets:
            b = bals.get(asset)
            free, locked = (b.free, b.locked) if b is not None else (ZERO, ZERO)
            if omit_zero and free == 0 and locked == 0:
                continue
            rows.append({"asset": asset, "free": fmt(free), "locked": fmt(locked)})
        return web.json_response(
            {
                "makerCommission": maker,
                "takerCommission": taker,
                "buyerCommission": 0,
                "sellerCommission": 0,
                "commissionRates": {
                    "maker": fmt(to_decimal(self.engine.fees.costs.binance.maker)),
                    "taker": fmt(to_decimal(self.engine.fees.costs.binance.taker)),
                    "buyer": fmt(ZERO),
                    "seller": fmt(ZERO),
                },
                "canTrade": True,
                "canWithdraw": False,
                "canDeposit": False,
                "brokered": False,
                "requireSelfTradePrevention": False,
                "preventSor": False,
                "updateTime": self._now_ms,
                "accountType": "SPOT",
                "balances": rows,
                "permissions": ["SPOT"],
                "uid": int(hashlib.sha256(account.encode()).hexdigest()[:8], 16),
            }
        )

    async def my_trades(self, request: web.Request) -> web.Response:
        account, params = await self._signed(request)
        market = self._market(params)
        order_id = _int(params, "orderId", default=-1)
        start = _int(params, "startTime", default=-1)
        end = _int(params, "endTime", default=-1)
        from_id = _int(params, "fromId", default=-1)
        limit = min(_int(params, "limit", default=500, lo=1), 1000)
        cid = self._by_order_id.get(order_id) if order_id >= 0 else None
        if order_id >= 0 and cid is None:
            return web.json_response([])
        rows = []
        for f in self.engine.fills(market=market.market, account=account, client_id=cid):
            tid = self._fill_trade[f.fill_id]
            if (
                (start >= 0 and f.ts_ms < start)
                or (end >= 0 and f.ts_ms > end)
                or (from_id >= 0 and tid < from_id)
            ):
                continue
            order = self.engine.order(f.client_id)
            rows.append(
                {
                    "symbol": market.symbol,
                    "id": tid,
                    "orderId": int(order.venue_order_id or 0) if order is not None else 0,
                    "orderListId": -1,
                    "price": fmt(f.price),
                    "qty": fmt(f.qty),
                    "quoteQty": fmt(f.price * f.qty),
                    **self._commission_json(f),
                    "time": f.ts_ms,
                    "isBuyer": f.side is Side.BUY,
                    "isMaker": f.liquidity is Liquidity.MAKER,
                    "isBestMatch": True,
                }
            )
        rows = rows[:limit] if (start >= 0 or from_id >= 0) else rows[-limit:]
        return web.json_response(rows)


def _rejection(update: OrderUpdate) -> BinanceError:
    reason = update.reason
    if reason is Reason.INSUFFICIENT_FUNDS:
        return BinanceError(-2010, "Account has insufficient balance for requested action.")
    if reason is Reason.POST_ONLY_WOULD_TAKE:
        return BinanceError(-2010, "Order would immediately match and take.")
    if reason in (Reason.LOT_SIZE, Reason.MIN_SIZE, Reason.INVALID_QTY):
        return BinanceError(-1013, "Filter failure: LOT_SIZE")
    if reason in (Reason.TICK_SIZE, Reason.INVALID_PRICE):
        return BinanceError(-1013, "Filter failure: PRICE_FILTER")
    return BinanceError(-2010, f"Order rejected: {update.detail or reason}")
