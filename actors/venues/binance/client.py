"""Binance spot through ccxt: the connection every part of the gateway shares.

Why ccxt: it already speaks Binance's signing, parameters and error codes; the gateway only
maps Binance onto the domain (``Order``/``Fill``/``Instrument``/``OrderBook`` with exact
``Decimal`` amounts, ``parse``) and ccxt's exceptions onto ``VenueErrorKind`` (here).

Errors: ``InsufficientFunds`` -> INSUFFICIENT_FUNDS; ``OrderNotFound`` -> NOT_FOUND; other
``InvalidOrder``/``BadRequest`` (filters, duplicate client id, post-only would take) ->
REJECTED; ``RateLimitExceeded``/``DDoSProtection`` (HTTP 429/418) -> RATE_LIMITED with the
``Retry-After`` seconds; ``ExchangeNotAvailable``/``RequestTimeout``/``NetworkError`` ->
UNAVAILABLE; ``AuthenticationError`` -> AUTH. A -1021 (``InvalidNonce``: timestamp outside
``recvWindow``) makes the gateway re-measure the clock offset (``load_time_difference``)
and retry once (the venue did not act on the request); if it persists it is AUTH.

The layers: ``BinanceClient`` (here) <- ``market_data.BinanceMarketData`` (candles, books, the
public tape, ccxt.pro's streams) <- ``gateway.BinanceGateway`` (orders, fills, balances).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

import ccxt.async_support as ccxt_async
from pydantic import SecretStr

from actors.core.exchange_rules import OrderRules, binance_rules
from actors.domain.model import Fill, Instrument
from actors.venues.binance.ccxt_client import make_exchange
from actors.venues.binance.parse import VENUE, instrument_from_market
from actors.venues.gateway import VenueError, VenueErrorKind, stream_url
from config.models import BINANCE_REST_URL, BINANCE_STREAM_URL

try:  # ccxt.pro is part of the ccxt package since 1.95; keep the gateway usable without it
    import ccxt.pro as ccxt_pro
except ImportError:  # pragma: no cover - depends on the installed ccxt
    ccxt_pro = None

_T = TypeVar("_T")


def ws_supported() -> bool:
    """Is ccxt.pro (websocket streams) importable in this ccxt?"""
    return ccxt_pro is not None


def stream_url_for(rest_url: str) -> str:
    """Binance's streams of a REST host: stream.binance.com for the real one, ``<host>/ws`` else."""
    return stream_url(rest_url, BINANCE_REST_URL, BINANCE_STREAM_URL, "/ws")


def pro_class() -> Any:
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


class BinanceClient:
    """The connection to Binance (ccxt's client, its errors, the clock) and the venue's reference
    data; the gateway's state, shared by its market-data and trading layers, is created here."""

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
        self.user_stream: Any | None = None
        """The user data stream's connection once ``user_updates`` runs (its listen key, counts)."""

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
            found[symbol] = instrument_from_market(symbol, m)
            rules[symbol] = binance_rules((m.get("info") or {}).get("filters", []))
        self._instruments = found
        self._rules = rules
        return list(found.values())
