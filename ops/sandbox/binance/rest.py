"""Request plumbing of the sandbox's REST API: weights and 429s, Binance's error JSON,
parameters and signed requests. The endpoints are in ``market_data`` (public) and ``trading``
(signed).

**API (spot subset, Binance's JSON shapes).** Public: ``GET /api/v3/ping``, ``time``,
``exchangeInfo``, ``klines`` (1m..1d), ``depth``, ``trades``, ``aggTrades``, ``avgPrice``. Signed
(``X-MBX-APIKEY`` + HMAC-SHA256 over query string + body, ``timestamp``/``recvWindow``):
``POST|GET|DELETE /api/v3/order``, ``GET|DELETE /api/v3/openOrders``, ``GET /api/v3/account``,
``GET /api/v3/myTrades``. Order types LIMIT (GTC/IOC), LIMIT_MAKER, MARKET (``quantity`` or
``quoteOrderQty``); FOK and stop orders are answered as unsupported. Errors as Binance:
-1000 unknown, -1003 weight exceeded (429 + ``Retry-After``), -1013 filter failure
("Filter failure: PRICE_FILTER" / "PERCENT_PRICE_BY_SIDE" / "LOT_SIZE" / "MARKET_LOT_SIZE" /
"NOTIONAL"), -1021
timestamp, -1022 signature, -1100/-1101/-1102/-1106 parameters, -1115/-1116/-1117 enums,
-1120 interval, -1121 symbol, -1131 recvWindow, -2010 new order rejected (insufficient
balance, would take as maker, duplicate client id), -2011 cancel of an unknown/closed
order, -2013 no such order, -2014/-2015 API key. Every response has
``X-MBX-USED-WEIGHT-1M``; request weights are Binance's, counted per client IP in fixed
windows of ``weight_window_s``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import parse_qsl

from aiohttp import web

from ops.sandbox.binance.auth import check_key, check_signature
from ops.sandbox.binance.exchange import BinanceExchange, SandboxMarket
from ops.sandbox.binance.protocol import BinanceError, _mandatory
from ops.sandbox.faults import ADMIN_PREFIX

log = logging.getLogger(__name__)


class BinanceRest(BinanceExchange):
    """What every REST request goes through before its endpoint: weight, errors, parameters, auth."""

    def _weight_state(self, ip: str) -> tuple[int, float]:
        """(used weight, seconds left) of ``ip``'s current window."""
        now = self.clock()
        window = int(now // self.weight_window_s)
        win, used = self._weights.get(ip, (window, 0))
        if win != window:
            used = 0
        left = (window + 1) * self.weight_window_s - now
        return used, left

    def used_weight(self, ip: str = "127.0.0.1") -> int:
        return self._weight_state(ip)[0]

    def reset_weights(self) -> None:
        self._weights.clear()

    def _charge(self, ip: str, weight: int) -> tuple[int, float]:
        used, left = self._weight_state(ip)
        used += weight
        self._weights[ip] = (int(self.clock() // self.weight_window_s), used)
        return used, left

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Weights, Binance error JSON for every failure, ``X-MBX-USED-WEIGHT-1M`` on every answer."""
        path = request.path
        if path.startswith(ADMIN_PREFIX) or path == "/stream" or path.startswith("/ws"):
            return await handler(request)
        ip = request.remote or "?"
        used, left = self._charge(ip, _weight(request.method, path, request.query))
        headers = {"X-MBX-USED-WEIGHT-1M": str(used)}
        if used > self.weight_limit:
            retry = max(1, math.ceil(left))
            return BinanceError(
                -1003,
                f"Too many requests; current limit of IP({ip}) request weight per 1 MINUTE is "
                f"{self.weight_limit}. Please use WebSocket Streams for live updates to avoid polling "
                "the API.",
                status=429,
                headers={**headers, "Retry-After": str(retry)},
            ).response()
        try:
            response = await handler(request)
        except BinanceError as exc:
            response = exc.response()
        except UnicodeDecodeError:  # a query or form body that is not UTF-8
            response = BinanceError(-1100, "Illegal characters found in a parameter.").response()
        except web.HTTPException as exc:
            if exc.status == 404:
                response = web.json_response({"code": -1000, "msg": "Not found."}, status=404)
            elif exc.status == 405:
                response = web.json_response({"code": -1000, "msg": "Method not allowed."}, status=405)
            else:
                raise
        except Exception:
            log.exception("sandbox binance: %s %s failed", request.method, path)
            response = BinanceError(
                -1000, "An unknown error occurred while processing the request.", status=500
            ).response()
        response.headers.update(headers)
        return response

    async def _params(self, request: web.Request) -> dict[str, str]:
        """Query string and form body; duplicates refused (-1101), the query wins over the body."""
        out: dict[str, str] = {}
        body = await request.text() if request.body_exists else ""
        for source in (body, request.rel_url.raw_query_string):
            seen: set[str] = set()
            for k, v in parse_qsl(source, keep_blank_values=True):
                if k in seen:
                    raise BinanceError(-1101, "Duplicate values for a parameter detected.")
                seen.add(k)
                out[k] = v
        return out

    async def _signed(self, request: web.Request) -> tuple[str, dict[str, str]]:
        """Authenticate a signed request as Binance does; returns (account, params)."""
        creds = check_key(request.headers.get("X-MBX-APIKEY", ""), self._accounts)
        params = await self._params(request)
        body = await request.text() if request.body_exists else ""
        check_signature(creds, params, request.rel_url.raw_query_string, body, self.clock)
        return creds.account, params

    def _symbol(self, params: Mapping[str, str], *, required: bool = True) -> SandboxMarket | None:
        """The replayed market a request's ``symbol`` names (-1121 for any other)."""
        symbol = params.get("symbol")
        if not symbol:
            if required:
                raise _mandatory("symbol")
            return None
        market = self.symbols.get(symbol)
        if market is None:
            raise BinanceError(-1121, "Invalid symbol.")
        return market

    def _market(self, params: Mapping[str, str]) -> SandboxMarket:
        """The market of a request whose ``symbol`` is mandatory."""
        market = self._symbol(params)
        assert market is not None
        return market


def _weight(method: str, path: str, query: Mapping[str, str]) -> int:
    """Binance's request weight of one REST call."""
    if path == "/api/v3/depth":
        raw = query.get("limit", "100")
        limit = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 20 else 100
        return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250
    if path == "/api/v3/openOrders" and method == "GET":
        return 6 if query.get("symbol") else 80
    if path == "/api/v3/order":
        return 4 if method == "GET" else 1
    if path == "/api/v3/myTrades":
        return 5 if query.get("orderId") else 20
    return {
        "/api/v3/exchangeInfo": 20,
        "/api/v3/klines": 2,
        "/api/v3/avgPrice": 2,
        "/api/v3/trades": 25,
        "/api/v3/aggTrades": 4,
        "/api/v3/account": 20,
        "/api/v3/ticker/price": 2 if query.get("symbol") else 4,
        "/api/v3/userDataStream": 2,
    }.get(path, 1)
