"""Binance spot through ccxt: the live venue gateway, and the same code against the local sandbox.

The gateway's layers, one concern each: ``client`` (ccxt, its errors, the clock, reference data),
``market_data`` (candles, books, the public tape), ``parse`` (Binance's JSON onto the domain) and
``user_stream`` (the user data stream's connection) and this module: orders, fills and balances,
polled and pushed. Orders are sent with ``str`` amounts, so ccxt's
precision step sees the exact decimal.

Client ids: every order carries our ``Order.client_id`` as ``newClientOrderId``; lookups and
cancels go by ``origClientOrderId``. Binance refuses a client id only while an order with it
is *open*: after a lost answer, look the id up (``order``) before re-sending.

Filters: each symbol's ``exchangeInfo`` filters (PRICE_FILTER, LOT_SIZE, NOTIONAL/MIN_NOTIONAL,
PERCENT_PRICE_BY_SIDE) are applied before an order is sent (``actors.core.exchange_rules``): the
price goes onto the tick (buys down, sells up) and the quantity onto the step (down), which also
spares it ccxt's own rounding (to nearest); what no such adjustment fixes is refused locally
(``OrderRefusedError``), never sent to come back -1013. The price band's reference, Binance's
``/api/v3/avgPrice``, is read when an order needs it, at most every ``avg_price_ttl_s``.

Fills: polled from ``myTrades`` incrementally (``fills``), and pushed by the user data stream
(``user_updates``: each ``executionReport`` as an ``OrderUpdate``, a ``TRADE`` one with its fill).
Both read the same trade id (``myTrades``' ``id`` is the report's ``t``), so a fill has one id
``binance:<SYMBOL>:<trade id>`` whichever way it came and is applied once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Iterable
from decimal import Decimal
from functools import partial
from typing import Any

from actors.core.fees import reported_commission
from actors.domain.messages import OrderUpdate
from actors.domain.model import ZERO, Fill, Liquidity, Order, OrderType, Side, TimeInForce
from actors.venues.binance.market_data import BinanceMarketData
from actors.venues.binance.parse import (
    VENUE,
    OwnTrade,
    dec,
    is_plain_order,
    order_from_ccxt,
    order_from_report,
    own_trade_from_report,
    own_trade_from_rest,
    report_kind,
)
from actors.venues.binance.user_stream import ListenKeyStream
from actors.venues.gateway import VenueError, VenueErrorKind, enforce_rules
from actors.venues.user_stream import StreamState, UserStreamEvent
from config.models import UserStreamConfig

log = logging.getLogger(__name__)

_MY_TRADES_PAGE = 1000


class BinanceGateway(BinanceMarketData):
    """``VenueGateway`` over ccxt's async Binance client (REST) and ccxt.pro (streams)."""

    # ------------------------------------------------------------------ orders

    async def _avg_price(self, symbol: str) -> Decimal:
        """The venue's average price (``/api/v3/avgPrice``), read at most every ``avg_price_ttl_s``."""
        now = asyncio.get_running_loop().time()
        cached = self._avg_prices.get(symbol)
        if cached is not None and now - cached[0] < self.avg_price_ttl_s:
            return cached[1]
        raw = await self._call(partial(self.exchange.publicGetAvgPrice, {"symbol": self._binance_id(symbol)}))
        price = dec(raw["price"])
        self._avg_prices[symbol] = (now, price)
        return price

    async def submit(self, order: Order) -> Order:
        """Send an order made valid under the symbol's filters (``OrderRefusedError`` if it cannot be)."""
        await self._ensure_markets()
        symbol = self._symbol(order.market)
        rules = self._rules.get(symbol)
        if rules is not None:
            reference = await self._avg_price(symbol) if rules.needs_reference(order) else None
            order = enforce_rules(VENUE, rules, order, reference)
        params: dict[str, Any] = {"newClientOrderId": order.client_id}
        price: str | None = None
        if order.type is OrderType.MARKET:
            kind = "market"
        else:
            kind = "limit"
            if order.price is None:
                raise VenueError(VENUE, VenueErrorKind.REJECTED, "a limit order needs a price")
            price = str(order.price)
            if order.tif is TimeInForce.POST_ONLY:
                params["postOnly"] = True
            elif order.tif is TimeInForce.IOC:
                params["timeInForce"] = "IOC"
        side = order.side.value
        raw = await self._call(
            partial(self.exchange.create_order, symbol, kind, side, str(order.qty), price, params)
        )
        return self._to_order(raw, template=order)

    async def cancel(self, client_id: str, market: str) -> Order:
        """Cancel by client id; an order that already ended answers its final state (idempotent)."""
        await self._ensure_markets()
        symbol = self._symbol(market)
        try:
            raw = await self._call(
                partial(self.exchange.cancel_order, "", symbol, {"origClientOrderId": client_id})
            )
        except VenueError as exc:
            if exc.kind is not VenueErrorKind.NOT_FOUND:
                raise
            final = await self.order(client_id, market)
            if final is None:
                raise
            return final
        return self._to_order(raw)

    async def cancel_all(self, market: str | None = None) -> list[Order]:
        """Cancel every open order (of ``market``); the markets to clear come from the open orders."""
        await self._ensure_markets()
        if market is not None:
            symbols = [self._symbol(market)]
        else:
            symbols = sorted({self._symbol(o.market) for o in await self.open_orders()})
        out: list[Order] = []
        for symbol in symbols:
            try:
                raws = await self._call(partial(self.exchange.cancel_all_orders, symbol))
            except VenueError as exc:
                if exc.kind is VenueErrorKind.NOT_FOUND:  # Binance: -2011 when nothing was open
                    continue
                raise
            out += [self._to_order(r) for r in raws if is_plain_order(r)]
        return out

    async def order(self, client_id: str, market: str) -> Order | None:
        await self._ensure_markets()
        symbol = self._symbol(market)
        try:
            raw = await self._call(
                partial(self.exchange.fetch_order, "", symbol, {"origClientOrderId": client_id})
            )
        except VenueError as exc:
            if exc.kind is VenueErrorKind.NOT_FOUND:
                return None
            raise
        return self._to_order(raw)

    async def open_orders(self, market: str | None = None) -> list[Order]:
        await self._ensure_markets()
        symbol = self._symbol(market) if market is not None else None
        raws = await self._call(partial(self.exchange.fetch_open_orders, symbol))
        return [self._to_order(r) for r in raws]

    def _to_order(self, raw: dict[str, Any], template: Order | None = None) -> Order:
        """Our ``Order`` from a ccxt order (``parse.order_from_ccxt``); its client id is remembered."""
        info: dict[str, Any] = raw.get("info") or {}
        binance_symbol = str(info.get("symbol") or "")
        symbol = str(raw.get("symbol") or (template and self._symbol(template.market)) or "")
        order = order_from_ccxt(raw, self._market_id(symbol), template)
        order_id = info.get("orderId", raw.get("id"))
        if order_id is not None and binance_symbol:
            self._client_ids[(binance_symbol, str(order_id))] = order.client_id
        return order

    # ------------------------------------------------------------------ fills and balances

    async def fills(self, market: str, since_ms: int | None = None) -> list[Fill]:
        """Our trades in ``market`` (from ``since_ms``); ids ``binance:<SYMBOL>:<id>``.

        Read incrementally: the first call pages through the history once (``fromId`` 0), every
        later one asks only for trades after the newest seen, so a poll's request weight and
        payload stay flat however long the account trades (a full re-read on every poll grows
        until Binance answers 429 and then bans with 418).
        """
        await self._ensure_markets()
        symbol = self._symbol(market)
        binance_symbol = self._binance_id(symbol)
        known = self._trades.setdefault(binance_symbol, {})
        next_id = self._next_trade_id.get(binance_symbol, 0)
        while True:
            page: list[dict[str, Any]] = await self._call(
                partial(self.exchange.fetch_my_trades, symbol, None, _MY_TRADES_PAGE, {"fromId": next_id})
            )
            for trade in page:
                fill = await self._to_fill(trade, symbol, binance_symbol)
                known.setdefault(fill.fill_id, fill)
                next_id = max(next_id, int(trade["info"]["id"]) + 1)
            self._next_trade_id[binance_symbol] = next_id
            if len(page) < _MY_TRADES_PAGE:
                break
        return [f for f in known.values() if since_ms is None or f.ts_ms >= since_ms]

    async def _client_id(self, binance_symbol: str, symbol: str, order_id: str) -> str:
        key = (binance_symbol, order_id)
        if key not in self._client_ids:
            raw = await self._call(partial(self.exchange.fetch_order, order_id, symbol))
            self._to_order(raw)
        return self._client_ids.get(key, f"orderId:{order_id}")

    async def _to_fill(self, trade: dict[str, Any], symbol: str, binance_symbol: str) -> Fill:
        """One ``myTrades`` row as a fill; the fee asset is ccxt's ``fee.currency``."""
        info: dict[str, Any] = trade["info"]
        asset = str((trade.get("fee") or {}).get("currency") or info.get("commissionAsset") or "")
        return await self._fill(own_trade_from_rest(info), asset, symbol, binance_symbol)

    async def _fill(
        self, trade: OwnTrade, asset: str, symbol: str, binance_symbol: str, client_id: str | None = None
    ) -> Fill:
        """One of our trades (REST or pushed) as a fill, id ``binance:<SYMBOL>:<trade id>``; its
        commission as charged (``actors.core.fees.reported_commission``).

        The amount is the exact ``commission`` string, ``asset`` its currency. In quote it stays
        quote; in the base asset it stays base (``fee_base_qty``: the account was credited ``qty``
        less it), valued at the fill price; in a third asset (BNB paying) it is valued at that
        asset's last price in quote on the venue, read when the fill is first read (``_asset_price``).
        """
        side = Side.BUY if trade.is_buyer else Side.SELL
        market = self.exchange.market(symbol)
        base, quote = str(market["base"]), str(market["quote"])
        asset_price = None
        if trade.commission > 0 and asset not in (base, quote):
            asset_price = await self._asset_price(trade.commission_asset or asset, market)
            if asset_price is None:
                log.warning(
                    "binance fill %s: fee %s %s has no price in %s; valued at 0",
                    trade.trade_id,
                    trade.commission,
                    asset,
                    quote,
                )
        commission = reported_commission(
            trade.commission,
            asset,
            side=side,
            price=trade.price,
            base=base,
            quote=quote,
            asset_price=asset_price,
        )
        return Fill(
            fill_id=f"{VENUE}:{binance_symbol}:{trade.trade_id}",
            client_id=client_id or await self._client_id(binance_symbol, symbol, trade.order_id),
            market=self._market_id(symbol),
            side=side,
            price=trade.price,
            qty=trade.qty,
            fee=commission.fee,
            liquidity=Liquidity.MAKER if trade.is_maker else Liquidity.TAKER,
            ts_ms=trade.ts_ms,
            fee_asset=commission.asset,
            fee_base_qty=commission.base_qty,
        )

    async def _asset_price(self, asset_id: str, market: dict[str, Any]) -> Decimal | None:
        """Last price of a fee asset (BNB) in ``market``'s quote (``GET /api/v3/ticker/price``).

        None when the venue lists no such pair; a transient error propagates, so the poll reads
        the trade again later instead of recording its fee at 0.
        """
        request = {"symbol": f"{asset_id}{market['quoteId']}"}
        try:
            raw = await self._call(partial(self.exchange.publicGetTickerPrice, request))
        except VenueError as exc:
            if exc.retryable:
                raise
            return None
        price = dec(raw.get("price") or "0") if isinstance(raw, dict) else ZERO
        return price if price > 0 else None

    async def balances(self) -> dict[str, Decimal]:
        raw = await self._call(self.exchange.fetch_balance)
        rows: Iterable[dict[str, Any]] = (raw.get("info") or {}).get("balances", [])
        return {str(r["asset"]): dec(Decimal(str(r["free"])) + Decimal(str(r["locked"]))) for r in rows}

    # ------------------------------------------------------------------ pushed updates

    async def user_updates(self, config: UserStreamConfig) -> AsyncGenerator[UserStreamEvent, None]:
        """Our order updates and fills as the user data stream pushes them, for ever (``user_stream``
        re-opens a drop); a ``StreamState`` on each connect and drop. A report that cannot be read
        is logged and skipped: the REST poll is the backstop that reads its fill."""
        await self._ensure_markets()
        if self.ws_url is None:
            raise ValueError("the user data stream needs the venue's stream URL")
        stream = ListenKeyStream(self._listen_key_call, self.ws_url, config)
        self.user_stream = stream
        async for event in stream.messages():
            if isinstance(event, StreamState):
                yield event
                continue
            if event.get("e") != "executionReport":  # balances are read by REST when needed
                continue
            try:
                update = await self._report_update(event)
            except (KeyError, ValueError, TypeError, VenueError) as exc:
                log.warning("binance executionReport not applied (%s): %.300s", exc, event)
                continue
            if update is not None:
                yield update

    async def _listen_key_call(self, method: str, params: dict[str, str]) -> Any:
        return await self._call(partial(getattr(self.exchange, f"public{method}UserDataStream"), params))

    async def _report_update(self, report: dict[str, Any]) -> OrderUpdate | None:
        """One ``executionReport`` as an order update (``seq`` 0: the venue actor numbers them)."""
        binance_symbol = str(report["s"])
        symbol = self.exchange.safe_symbol(binance_symbol)
        if symbol not in self._instruments:
            return None  # a pair we do not trade
        order = order_from_report(report, self._market_id(symbol))
        self._client_ids[(binance_symbol, str(order.venue_order_id))] = order.client_id
        trade = own_trade_from_report(report)
        fill = None
        if trade is not None:
            asset = self.exchange.safe_currency_code(trade.commission_asset) if trade.commission_asset else ""
            fill = await self._fill(trade, str(asset), symbol, binance_symbol, order.client_id)
        return OrderUpdate(seq=0, kind=report_kind(report), ts_ms=int(report["E"]), order=order, fill=fill)
