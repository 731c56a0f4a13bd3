"""Binance spot through ccxt: the live venue gateway, and the same code against the local sandbox.

Why ccxt: it already speaks Binance's signing, parameters and error codes; this module only
maps Binance onto the domain (``Order``/``Fill``/``Instrument``/``OrderBook`` with exact
``Decimal`` amounts) and ccxt's exceptions onto ``VenueErrorKind``.

Exactness: every price, size, fee and balance is read from the venue's own JSON strings
(``info`` of ccxt's parsed objects, or the raw implicit endpoints), never from ccxt's floats.
Orders are sent with ``str`` amounts, so ccxt's precision step sees the exact decimal.

Client ids: every order carries our ``Order.client_id`` as ``newClientOrderId``; lookups and
cancels go by ``origClientOrderId``. Binance refuses a client id only while an order with it
is *open*: after a lost answer, look the id up (``order``) before re-sending.

Filters: each symbol's ``exchangeInfo`` filters (PRICE_FILTER, LOT_SIZE, NOTIONAL/MIN_NOTIONAL,
PERCENT_PRICE_BY_SIDE) are applied before an order is sent (``actors.core.exchange_rules``): the
price goes onto the tick (buys down, sells up) and the quantity onto the step (down), which also
spares it ccxt's own rounding (to nearest); what no such adjustment fixes is refused locally
(``OrderRefusedError``), never sent to come back -1013. The price band's reference, Binance's
``/api/v3/avgPrice``, is read when an order needs it, at most every ``avg_price_ttl_s``.

Errors: ``InsufficientFunds`` -> INSUFFICIENT_FUNDS; ``OrderNotFound`` -> NOT_FOUND; other
``InvalidOrder``/``BadRequest`` (filters, duplicate client id, post-only would take) ->
REJECTED; ``RateLimitExceeded``/``DDoSProtection`` (HTTP 429/418) -> RATE_LIMITED with the
``Retry-After`` seconds; ``ExchangeNotAvailable``/``RequestTimeout``/``NetworkError`` ->
UNAVAILABLE; ``AuthenticationError`` -> AUTH. A -1021 (``InvalidNonce``: timestamp outside
``recvWindow``) makes the gateway re-measure the clock offset (``load_time_difference``)
and retry once (the venue did not act on the request); if it persists it is AUTH.

Market data: ``ccxt.pro`` ships with ccxt 4.5 and its Binance client can be pointed at any
``ws://`` base (``urls['api']['ws']['spot']``); ``watch_candles``/``watch_trades``/
``watch_order_book`` use it when ``use_websockets`` and fall back to REST polling every
``poll_interval_s`` when it is unavailable or disabled. A dropped socket is re-subscribed
by ccxt on the next call; candles missed meanwhile are backfilled from REST.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

import ccxt.async_support as ccxt_async
from pydantic import SecretStr

from actors.core.exchange_rules import OrderRules, binance_rules
from actors.core.fees import reported_commission
from actors.domain.model import (
    ZERO,
    BookLevel,
    Candle,
    Fill,
    Frozen,
    Instrument,
    Liquidity,
    MarketKind,
    Order,
    OrderBook,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    to_decimal,
)
from actors.venues.binance.ccxt_client import make_exchange
from actors.venues.gateway import VenueError, VenueErrorKind, enforce_rules, stream_url
from config.models import BINANCE_REST_URL, BINANCE_STREAM_URL

try:  # ccxt.pro is part of the ccxt package since 1.95; keep the gateway usable without it
    import ccxt.pro as ccxt_pro
except ImportError:  # pragma: no cover - depends on the installed ccxt
    ccxt_pro = None

log = logging.getLogger(__name__)

VENUE = "binance"
_T = TypeVar("_T")
_REST_URL_KEYS = ("public", "private", "v3")
_MY_TRADES_PAGE = 1000

_STATUS = {
    "NEW": OrderStatus.OPEN,
    "PENDING_NEW": OrderStatus.OPEN,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELLED,
    "PENDING_CANCEL": OrderStatus.OPEN,
    "REJECTED": OrderStatus.REJECTED,
    "EXPIRED": OrderStatus.CANCELLED,
    "EXPIRED_IN_MATCH": OrderStatus.CANCELLED,
}


class PublicTrade(Frozen):
    """One trade of the public tape (anybody's)."""

    market: str
    trade_id: str
    price: Decimal
    qty: Decimal
    ts_ms: int
    taker_side: Side


def dec(raw: Any) -> Decimal:
    """Exact Decimal of a venue string ("0.00100000" -> 0.001, "10.00000000" -> 10)."""
    value = (
        raw if isinstance(raw, Decimal) else to_decimal(raw) if isinstance(raw, float) else Decimal(str(raw))
    )
    if not value.is_finite():  # "NaN", "Infinity": never an amount
        raise ValueError(f"not a finite number: {raw!r}")
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def ws_supported() -> bool:
    """Is ccxt.pro (websocket streams) importable in this ccxt?"""
    return ccxt_pro is not None


def _pro_class() -> Any:
    """ccxt.pro's Binance, remembering closed klines (``x``), which ccxt's OHLCV arrays drop."""
    assert ccxt_pro is not None

    class _ProBinance(ccxt_pro.binance):  # type: ignore[misc]
        def __init__(self, config: dict[str, Any]) -> None:
            super().__init__(config)
            self.closed_klines: dict[tuple[str, str], deque[dict[str, Any]]] = {}

        def handle_ohlcv(self, client: Any, message: Any) -> None:
            kline = message.get("k") if isinstance(message, dict) else None
            if isinstance(kline, dict) and kline.get("x"):
                key = (str(kline.get("s")), str(kline.get("i")))
                self.closed_klines.setdefault(key, deque(maxlen=10_000)).append(kline)
            super().handle_ohlcv(client, message)

    return _ProBinance


def stream_url_for(rest_url: str) -> str:
    """Binance's streams of a REST host: stream.binance.com for the real one, ``<host>/ws`` else."""
    return stream_url(rest_url, BINANCE_REST_URL, BINANCE_STREAM_URL, "/ws")


class BinanceGateway:
    """``VenueGateway`` over ccxt's async Binance client (REST) and ccxt.pro (streams)."""

    venue = VENUE

    def __init__(
        self,
        *,
        rest_url: str | None = None,
        ws_url: str | None = None,
        api_key: SecretStr | None = None,
        api_secret: SecretStr | None = None,
        timeout_ms: int = 10_000,
        rate_limit: bool = True,
        use_websockets: bool = True,
        poll_interval_s: float = 1.0,
        resync_clock: bool = True,
        avg_price_ttl_s: float = 5.0,
        exchange: Any | None = None,
    ) -> None:
        self.exchange: Any = (
            exchange
            if exchange is not None
            else make_exchange(
                "binance", rest_url=rest_url, api_key=api_key, api_secret=api_secret, timeout_ms=timeout_ms
            )
        )
        self.exchange.enableRateLimit = rate_limit
        self.exchange.options.setdefault("fetchOpenOrders", {})["warnWithoutSymbol"] = False
        self.exchange.options["warnOnFetchOpenOrdersWithoutSymbol"] = False
        if ws_url is None and rest_url is not None:
            ws_url = stream_url_for(rest_url)
        self.ws_url = ws_url
        self.use_websockets = use_websockets and ws_supported()
        self.poll_interval_s = poll_interval_s
        self.resync_clock = resync_clock
        self._api_key = api_key
        self._api_secret = api_secret
        self._timeout_ms = timeout_ms
        self._instruments: dict[str, Instrument] = {}
        self._rules: dict[str, OrderRules] = {}
        """Each symbol's filters from exchangeInfo, checked before an order is sent."""
        self.avg_price_ttl_s = avg_price_ttl_s
        self._avg_prices: dict[str, tuple[float, Decimal]] = {}
        """symbol -> (loop time read, /api/v3/avgPrice): the reference of the price band."""
        self._client_ids: dict[tuple[str, str], str] = {}
        """(binance symbol, orderId) -> our client id, learnt from orders seen."""
        self._trades: dict[str, dict[str, Fill]] = {}
        """Our fills per Binance symbol, read once: each poll asks only for trades after the last."""
        self._next_trade_id: dict[str, int] = {}
        self._pro: Any | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self.instruments()

    async def close(self) -> None:
        if self._pro is not None:
            await self._pro.close()
            self._pro = None
        await self.exchange.close()

    # ------------------------------------------------------------------ plumbing

    async def _call(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """Run one ccxt call; map its exceptions; on -1021 re-measure the clock once and retry."""
        resynced = False
        while True:
            try:
                return await call()
            except ccxt_async.InvalidNonce as exc:
                if self.resync_clock and not resynced and not isinstance(exc, ccxt_async.ChecksumError):
                    resynced = True
                    try:
                        await self.exchange.load_time_difference()
                    except ccxt_async.BaseError as inner:
                        raise self._error(inner) from inner
                    continue
                raise VenueError(VENUE, VenueErrorKind.AUTH, f"clock: {exc}") from exc
            except ccxt_async.BaseError as exc:
                raise self._error(exc) from exc

    def _retry_after(self) -> float | None:
        headers = getattr(self.exchange, "last_response_headers", None) or {}
        for name, value in dict(headers).items():
            if str(name).lower() == "retry-after":
                try:
                    return float(value)
                except (TypeError, ValueError):
                    return None
        return None

    def _error(self, exc: Exception) -> VenueError:
        message = str(exc)
        if isinstance(exc, ccxt_async.InsufficientFunds):
            return VenueError(VENUE, VenueErrorKind.INSUFFICIENT_FUNDS, message)
        if isinstance(exc, ccxt_async.OrderNotFound):
            return VenueError(VENUE, VenueErrorKind.NOT_FOUND, message)
        if isinstance(exc, ccxt_async.DDoSProtection | ccxt_async.RateLimitExceeded):
            return VenueError(VENUE, VenueErrorKind.RATE_LIMITED, message, retry_after_s=self._retry_after())
        if isinstance(exc, ccxt_async.AuthenticationError | ccxt_async.AccountSuspended):
            return VenueError(VENUE, VenueErrorKind.AUTH, message)
        if isinstance(exc, ccxt_async.InvalidNonce):
            return VenueError(VENUE, VenueErrorKind.AUTH, message)
        if isinstance(exc, ccxt_async.OperationFailed):  # NetworkError, RequestTimeout, ExchangeNotAvailable
            return VenueError(VENUE, VenueErrorKind.UNAVAILABLE, message)
        return VenueError(VENUE, VenueErrorKind.REJECTED, message)

    def _symbol(self, market: str) -> str:
        """ccxt symbol of ``binance:BTC/USDT`` or ``BTC/USDT``."""
        prefix = f"{VENUE}:"
        return market[len(prefix) :] if market.startswith(prefix) else market

    def _market_id(self, symbol: str) -> str:
        return f"{VENUE}:{symbol}"

    async def _ensure_markets(self) -> None:
        if not self._instruments:
            await self.instruments()

    def _binance_id(self, symbol: str) -> str:
        return str(self.exchange.market(symbol)["id"])

    # ------------------------------------------------------------------ reference data

    async def instruments(self) -> list[Instrument]:
        markets: dict[str, Any] = await self._call(partial(self.exchange.load_markets, True))
        found: dict[str, Instrument] = {}
        rules: dict[str, OrderRules] = {}
        for symbol, m in markets.items():
            if not m.get("spot") or m.get("active") is False:
                continue
            found[symbol] = _instrument(symbol, m)
            rules[symbol] = binance_rules((m.get("info") or {}).get("filters", []))
        self._instruments = found
        self._rules = rules
        return list(found.values())

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
            out += [self._to_order(r) for r in raws if _is_order(r)]
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
        """Our ``Order`` from a ccxt order, amounts from Binance's strings."""
        info: dict[str, Any] = raw.get("info") or {}
        client_id = str(
            info.get("origClientOrderId") or info.get("clientOrderId") or raw.get("clientOrderId") or ""
        )
        binance_symbol = str(info.get("symbol") or "")
        symbol = str(raw.get("symbol") or (template and self._symbol(template.market)) or "")
        order_id = info.get("orderId", raw.get("id"))
        if order_id is not None and binance_symbol:
            self._client_ids[(binance_symbol, str(order_id))] = client_id
        status_raw = info.get("status")
        status = (
            _STATUS.get(str(status_raw), OrderStatus.OPEN) if status_raw is not None else OrderStatus.OPEN
        )
        when = (
            info.get("updateTime")
            or info.get("transactTime")
            or info.get("time")
            or raw.get("timestamp")
            or 0
        )
        created = info.get("time") or info.get("workingTime") or info.get("transactTime") or when
        venue_id = None if order_id is None else str(order_id)
        if template is not None:
            filled = dec(info["executedQty"]) if "executedQty" in info else template.filled_qty
            return template.model_copy(
                update={
                    "status": status,
                    "venue_order_id": venue_id,
                    "filled_qty": filled,
                    "created_ms": int(created) or template.created_ms,
                    "updated_ms": int(when) or template.updated_ms,
                }
            )
        wire_type = str(info.get("type") or raw.get("type") or "LIMIT").upper()
        otype = OrderType.MARKET if wire_type == "MARKET" else OrderType.LIMIT
        if wire_type == "LIMIT_MAKER":
            tif = TimeInForce.POST_ONLY
        elif wire_type == "MARKET" or str(info.get("timeInForce")) == "IOC":
            tif = TimeInForce.IOC
        else:
            tif = TimeInForce.GTC
        price_raw = info.get("price")
        price = dec(price_raw) if price_raw is not None and Decimal(str(price_raw)) > 0 else None
        side = Side.BUY if str(info.get("side") or raw.get("side")).lower() == "buy" else Side.SELL
        return Order(
            client_id=client_id,
            market=self._market_id(symbol),
            side=side,
            type=otype,
            tif=tif,
            price=price,
            qty=dec(info.get("origQty", raw.get("amount"))),
            filled_qty=dec(info.get("executedQty", raw.get("filled") or 0)),
            status=status,
            venue_order_id=venue_id,
            created_ms=int(created),
            updated_ms=int(when),
        )

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
        """One of our trades as a fill; its commission as charged (``actors.core.fees.reported_commission``).

        The asset is ccxt's ``fee.currency`` (Binance's ``commissionAsset``), the amount the exact
        ``commission`` string. In quote it stays quote; in the base asset it stays base
        (``fee_base_qty``: the account was credited ``qty`` less it), valued at the fill price;
        in a third asset (BNB paying) it is valued at that asset's last price in quote on the
        venue, read when the fill is first read (``_asset_price``).
        """
        info: dict[str, Any] = trade["info"]
        price, qty = dec(info["price"]), dec(info["qty"])
        side = Side.BUY if info.get("isBuyer") else Side.SELL
        fee_info = trade.get("fee") or {}
        amount = dec(info.get("commission") or "0")
        asset = str(fee_info.get("currency") or info.get("commissionAsset") or "")
        market = self.exchange.market(symbol)
        base, quote = str(market["base"]), str(market["quote"])
        asset_price = None
        if amount > 0 and asset not in (base, quote):
            asset_price = await self._asset_price(str(info.get("commissionAsset") or asset), market)
            if asset_price is None:
                log.warning(
                    "binance fill %s: fee %s %s has no price in %s; valued at 0",
                    info["id"],
                    amount,
                    asset,
                    quote,
                )
        commission = reported_commission(
            amount, asset, side=side, price=price, base=base, quote=quote, asset_price=asset_price
        )
        return Fill(
            fill_id=f"{VENUE}:{binance_symbol}:{info['id']}",
            client_id=await self._client_id(binance_symbol, symbol, str(info["orderId"])),
            market=self._market_id(symbol),
            side=side,
            price=price,
            qty=qty,
            fee=commission.fee,
            liquidity=Liquidity.MAKER if info.get("isMaker") else Liquidity.TAKER,
            ts_ms=int(info["time"]),
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

    # ------------------------------------------------------------------ market data

    async def order_book(self, market: str, limit: int = 100) -> OrderBook:
        await self._ensure_markets()
        symbol = self._symbol(market)
        request = {"symbol": self._binance_id(symbol), "limit": limit}
        raw = await self._call(partial(self.exchange.publicGetDepth, request))
        return OrderBook(
            market=self._market_id(symbol),
            ts_ms=int(self.exchange.milliseconds()),
            bids=tuple(
                BookLevel(price=dec(p), size=dec(q)) for p, q in raw.get("bids", []) if Decimal(q) > 0
            ),
            asks=tuple(
                BookLevel(price=dec(p), size=dec(q)) for p, q in raw.get("asks", []) if Decimal(q) > 0
            ),
        )

    async def candles(
        self, market: str, interval: str = "1m", since_ms: int | None = None, limit: int = 500
    ) -> list[Candle]:
        """Closed bars from REST (a bar still forming at the venue is left out)."""
        await self._ensure_markets()
        symbol = self._symbol(market)
        rows = await self._call(partial(self.exchange.fetch_ohlcv, symbol, interval, since_ms, limit))
        step = int(self.exchange.parse_timeframe(interval) * 1000)
        now = int(self.exchange.milliseconds())
        return [_candle(self._market_id(symbol), row, step) for row in rows if int(row[0]) + step <= now]

    async def history(self, market: str, interval: str = "1m", bars: int = 1) -> list[Candle]:
        """The newest ``bars`` closed bars, oldest first, from REST (a strategy's warm-up).

        One ``fetch_ohlcv`` for the newest closed bar, then pages of ``fetch_ohlcv(since, limit=1000)``
        from ``bars - 1`` bars before it (Binance serves at most 1000 klines a request); fewer when
        the venue's history is shorter or has gaps.
        """
        if bars <= 0:
            return []
        newest = await self.candles(market, interval, None, 2)
        if not newest:
            return []
        end = newest[-1]
        since = end.ts_ms - (bars - 1) * end.interval_ms
        return [c for c in await self._backfill(market, interval, since) if c.ts_ms <= end.ts_ms][-bars:]

    async def _pro_client(self) -> Any:
        """The ccxt.pro client, sharing this gateway's URLs, keys and markets."""
        if self._pro is None:
            await self._ensure_markets()
            params: dict[str, Any] = {
                "enableRateLimit": self.exchange.enableRateLimit,
                "timeout": self._timeout_ms,
                "options": {
                    "defaultType": "spot",
                    "fetchMarkets": {"types": ["spot"]},
                    "fetchCurrencies": False,
                },
            }
            if self._api_key is not None:
                params["apiKey"] = self._api_key.get_secret_value()
            if self._api_secret is not None:
                params["secret"] = self._api_secret.get_secret_value()
            pro = _pro_class()(params)
            urls = dict(pro.urls["api"])
            for key in _REST_URL_KEYS:
                urls[key] = self.exchange.urls["api"][key]
            if self.ws_url is not None:
                urls["ws"] = {**urls["ws"], "spot": self.ws_url}
            pro.urls["api"] = urls
            pro.set_markets(self.exchange.markets, self.exchange.currencies)
            self._pro = pro
        return self._pro

    async def watch_candles(
        self, market: str, interval: str = "1m", since_ms: int | None = None
    ) -> AsyncGenerator[Candle, None]:
        """Closed bars as they close (``since_ms``: first the bars from then, from REST), never twice."""
        await self._ensure_markets()
        symbol = self._symbol(market)
        step = int(self.exchange.parse_timeframe(interval) * 1000)
        last = -1
        if since_ms is not None:
            last = since_ms - step  # what came before is delivered: a later gap is back-filled from here
            for candle in await self._backfill(market, interval, since_ms):
                last = candle.ts_ms
                yield candle
        if not self.use_websockets:
            async for candle in self._poll_candles(market, interval, last):
                yield candle
            return
        pro = await self._pro_client()
        key = (self._binance_id(symbol), interval)
        while True:
            # drain first: ccxt.pro only wakes callers already waiting, so klines that closed
            # while our consumer was busy are in the queue, not in a future
            closed = pro.closed_klines.get(key)
            while closed:
                kline = closed.popleft()
                ts = int(kline["t"])
                if ts <= last:
                    continue
                if last >= 0 and ts > last + step:  # missed while disconnected
                    for candle in await self._backfill(market, interval, last + step):
                        if last < candle.ts_ms < ts:
                            last = candle.ts_ms
                            yield candle
                last = ts
                yield Candle(
                    market=self._market_id(symbol),
                    ts_ms=ts,
                    interval_ms=step,
                    open=float(kline["o"]),
                    high=float(kline["h"]),
                    low=float(kline["l"]),
                    close=float(kline["c"]),
                    volume=float(kline["v"]),
                )
            try:
                await pro.watch_ohlcv(symbol, interval)
            except ccxt_async.NetworkError as exc:  # dropped socket: the next call reconnects
                log.info("binance kline stream %s: %s; resubscribing", symbol, exc)
                await asyncio.sleep(self.poll_interval_s)

    async def _backfill(self, market: str, interval: str, since_ms: int) -> list[Candle]:
        out: list[Candle] = []
        cursor = since_ms
        while True:
            page = await self.candles(market, interval, cursor, 1000)
            out += page
            if len(page) < 1000:
                return out
            cursor = page[-1].ts_ms + page[-1].interval_ms

    async def _poll_candles(self, market: str, interval: str, last: int) -> AsyncGenerator[Candle, None]:
        if last < 0:  # start from what is closed now, without replaying history
            latest = await self.candles(market, interval, None, 2)
            last = latest[-1].ts_ms if latest else -1
        while True:
            await asyncio.sleep(self.poll_interval_s)
            for candle in await self._backfill(market, interval, last + 1 if last >= 0 else 0):
                if candle.ts_ms > last:
                    last = candle.ts_ms
                    yield candle

    async def watch_order_book(self, market: str, limit: int = 100) -> AsyncGenerator[OrderBook, None]:
        """Successive books (ccxt.pro's diff-synced book, or REST snapshots when polling)."""
        await self._ensure_markets()
        symbol = self._symbol(market)
        pro = await self._pro_client() if self.use_websockets else None
        last_nonce: Any = None
        while True:
            if pro is None:
                yield await self.order_book(market, limit)
                await asyncio.sleep(self.poll_interval_s)
                continue
            book = pro.orderbooks.get(symbol)  # updates applied while our consumer was busy
            if book is not None and book["nonce"] is not None and book["nonce"] != last_nonce:
                last_nonce = book["nonce"]
                yield OrderBook(
                    market=self._market_id(symbol),
                    ts_ms=int(book.get("timestamp") or self.exchange.milliseconds()),
                    bids=tuple(
                        BookLevel(price=to_decimal(p), size=to_decimal(q)) for p, q in book["bids"][:limit]
                    ),
                    asks=tuple(
                        BookLevel(price=to_decimal(p), size=to_decimal(q)) for p, q in book["asks"][:limit]
                    ),
                )
                continue
            try:
                await pro.watch_order_book(symbol)
            except ccxt_async.NetworkError as exc:
                log.info("binance depth stream %s: %s; resubscribing", symbol, exc)
                await asyncio.sleep(self.poll_interval_s)

    async def watch_trades(
        self, market: str, since_ms: int | None = None
    ) -> AsyncGenerator[PublicTrade, None]:
        """The public tape, each trade once: from ``since_ms`` (the last 1000 trades at most), else new ones.

        Streams use ccxt.pro's trade cache; polling reads ``/api/v3/trades``.
        """
        await self._ensure_markets()
        symbol = self._symbol(market)
        last = -1
        pro = await self._pro_client() if self.use_websockets else None
        request = {"symbol": self._binance_id(symbol), "limit": 1000}
        first = True
        while True:
            if pro is None or first:
                rows = await self._call(partial(self.exchange.publicGetTrades, request))
                batch = [
                    (int(r["id"]), r["price"], r["qty"], int(r["time"]), bool(r["isBuyerMaker"]))
                    for r in rows
                ]
                if first:  # the baseline: what happened before ``since_ms`` (or now) is not news
                    first = False
                    last = max((r[0] for r in batch if since_ms is None or r[3] < since_ms), default=0)
            else:
                batch = [
                    (
                        int(t["info"]["t"]),
                        t["info"]["p"],
                        t["info"]["q"],
                        int(t["info"]["T"]),
                        bool(t["info"]["m"]),
                    )
                    for t in pro.trades.get(symbol) or []
                ]
            for trade_id, price, qty, ts, buyer_maker in sorted(batch):
                if trade_id <= last:
                    continue
                last = trade_id
                yield PublicTrade(
                    market=self._market_id(symbol),
                    trade_id=str(trade_id),
                    price=dec(price),
                    qty=dec(qty),
                    ts_ms=ts,
                    taker_side=Side.SELL if buyer_maker else Side.BUY,
                )
            if pro is None:
                await asyncio.sleep(self.poll_interval_s)
                continue
            try:
                await pro.watch_trades(symbol)
            except ccxt_async.NetworkError as exc:
                log.info("binance trade stream %s: %s; resubscribing", symbol, exc)
                await asyncio.sleep(self.poll_interval_s)


def _instrument(symbol: str, market: dict[str, Any]) -> Instrument:
    """Tick, lot and minimum size from Binance's filter strings (ccxt's floats as a fallback)."""
    filters = {f.get("filterType"): f for f in (market.get("info") or {}).get("filters", [])}
    precision = market.get("precision") or {}
    limits = market.get("limits") or {}
    price_filter, lot_filter = filters.get("PRICE_FILTER", {}), filters.get("LOT_SIZE", {})
    tick = dec(price_filter["tickSize"]) if price_filter.get("tickSize") else dec(precision["price"])
    lot = dec(lot_filter["stepSize"]) if lot_filter.get("stepSize") else dec(precision["amount"])
    min_raw = lot_filter.get("minQty") or (limits.get("amount") or {}).get("min") or 0
    return Instrument(
        venue=VENUE,
        symbol=symbol,
        kind=MarketKind.SPOT,
        tick_size=tick,
        lot_size=lot,
        min_size=dec(min_raw),
        correlation_group=str(market.get("base") or ""),
    )


def _candle(market: str, row: list[Any], step: int) -> Candle:
    return Candle(
        market=market,
        ts_ms=int(row[0]),
        interval_ms=step,
        open=float(row[1]),
        high=float(row[2]),
        low=float(row[3]),
        close=float(row[4]),
        volume=float(row[5] or 0),
    )


def _is_order(raw: Any) -> bool:
    """cancel_all answers orders and order lists (OCO); only plain orders are ours."""
    if not isinstance(raw, dict):
        return False
    info = raw.get("info") or {}
    return "orders" not in info and info.get("orderListId", -1) == -1
