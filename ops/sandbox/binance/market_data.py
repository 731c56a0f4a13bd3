"""Public market-data endpoints (no key): server time, exchange info with its filters, klines,
depth, trades and aggregated trades of every replayed symbol, all up to the current bar and never
beyond it; klines from the first bar of the data (the history before the replay's start) on.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import numpy as np
from aiohttp import web

from actors.domain.model import to_decimal
from ops.sandbox.binance.exchange import SandboxMarket
from ops.sandbox.binance.protocol import (
    ASK_MULTIPLIER_DOWN,
    ASK_MULTIPLIER_UP,
    AVG_PRICE_MINS,
    BAR_MS,
    BID_MULTIPLIER_DOWN,
    BID_MULTIPLIER_UP,
    INTERVALS_MS,
    MAX_NOTIONAL,
    MAX_PRICE,
    MIN_NOTIONAL,
    QUOTE,
    BinanceError,
    _illegal,
    _int,
    _mandatory,
    fmt,
)
from ops.sandbox.binance.rest import BinanceRest


class MarketDataEndpoints(BinanceRest):
    """``GET /api/v3/ping``, ``time``, ``exchangeInfo``, ``klines``, ``ticker/price``, ``depth``, ``trades``,
    ``aggTrades``."""

    async def ping(self, _request: web.Request) -> web.Response:
        return web.json_response({})

    async def server_time(self, _request: web.Request) -> web.Response:
        return web.json_response({"serverTime": int(self.clock() * 1000)})

    def exchange_info_json(self, symbols: list[SandboxMarket] | None = None) -> dict[str, Any]:
        """``exchangeInfo`` of ``symbols`` (every replayed one by default)."""
        return {
            "timezone": "UTC",
            "serverTime": int(self.clock() * 1000),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": self.weight_limit,
                },
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
                {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
            ],
            "exchangeFilters": [],
            "symbols": [_symbol_info(m) for m in (symbols if symbols is not None else self.symbols.values())],
        }

    async def exchange_info(self, request: web.Request) -> web.Response:
        """As Binance: ``symbol`` or ``symbols`` narrow the answer; an unknown one is -1121."""
        params = await self._params(request)
        picked: list[SandboxMarket] | None = None
        if "symbol" in params:
            picked = [self._market(params)]
        if "symbols" in params:
            try:
                wanted = json.loads(params["symbols"])
            except ValueError:
                raise _illegal("symbols", '["SYMBOL",...]') from None
            if not isinstance(wanted, list) or any(s not in self.symbols for s in wanted):
                raise BinanceError(-1121, "Invalid symbol.")
            picked = [self.symbols[s] for s in wanted]
        return web.json_response(self.exchange_info_json(picked))

    async def avg_price_endpoint(self, request: web.Request) -> web.Response:
        """``/api/v3/avgPrice``: the reference of PERCENT_PRICE_BY_SIDE and of market NOTIONAL."""
        market = self._market(await self._params(request))
        return web.json_response(
            {"mins": AVG_PRICE_MINS, "price": fmt(self.avg_price(market)), "closeTime": self._now_ms}
        )

    async def klines(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        market = self._market(params)
        interval = params.get("interval")
        if not interval:
            raise _mandatory("interval")
        step = INTERVALS_MS.get(interval)
        if step is None:
            raise BinanceError(-1120, "Invalid interval.")
        limit = min(_int(params, "limit", default=500, lo=1), 1000)
        start = _int(params, "startTime", default=-1)
        end = _int(params, "endTime", default=-1)
        rows = self.klines_rows(market, step, start if start >= 0 else None, end if end >= 0 else None, limit)
        return web.json_response(rows)

    def klines_rows(
        self, market: SandboxMarket, step: int, start: int | None, end: int | None, limit: int
    ) -> list[list[Any]]:
        """Bars of ``step`` ms built from the 1m data up to the current bar, closed ones only.

        Binance also serves the bar still forming, which a client tells apart by its clock; the
        sandbox's replay clock is not the wall clock a client reads, so a 5m bar half played would
        pass as closed (and a strategy would warm up on it): it is left out until its last minute.

        As Binance: bars opening in [startTime, endTime]; the first ``limit`` of them from
        ``startTime``, else the last ``limit``. History is every bar of the data before the
        replay's start, so a client asking for the last bars gets them from the first second.
        """
        table = market.table
        played = table.timestamp[: self._bar + 1]
        groups = (
            played[: int(np.searchsorted(played, (int(played[-1]) + BAR_MS) // step * step, "left"))] // step
        )
        if len(groups) == 0:
            return []
        g_lo = -(-start // step) if start is not None else int(groups[0])
        g_hi = end // step if end is not None else int(groups[-1])
        lo = int(np.searchsorted(groups, g_lo, "left"))
        hi = int(np.searchsorted(groups, g_hi, "right"))
        sub = groups[lo:hi]
        if len(sub) == 0:
            return []
        firsts = np.flatnonzero(np.r_[True, sub[1:] != sub[:-1]])
        lasts = np.r_[firsts[1:], len(sub)]
        if start is not None:
            firsts, lasts = firsts[:limit], lasts[:limit]
        else:
            firsts, lasts = firsts[-limit:], lasts[-limit:]
        o, h, low, c, v = table.open, table.high, table.low, table.close, table.volume
        rows: list[list[Any]] = []
        for a, b in zip(firsts.tolist(), lasts.tolist(), strict=True):
            i, j = lo + a, lo + b
            open_ms = int(groups[i]) * step
            volume = to_decimal(round(float(v[i:j].sum()), 8))
            close = to_decimal(float(c[j - 1]))
            rows.append(
                [
                    open_ms,
                    fmt(to_decimal(float(o[i]))),
                    fmt(to_decimal(float(h[i:j].max()))),
                    fmt(to_decimal(float(low[i:j].min()))),
                    fmt(close),
                    fmt(volume),
                    open_ms + step - 1,
                    fmt(volume * close),
                    4 * (j - i),
                    "0.00000000",
                    "0.00000000",
                    "0",
                ]
            )
        return rows

    def ticker_prices(self) -> dict[str, Decimal]:
        """Last price per symbol: each pair's last trade, and the fee token's pair at its set price."""
        prices = {s: m.trades[-1].price if m.trades else m.bar(self._bar)[4] for s, m in self.symbols.items()}
        token = self.engine.fees.fee_token
        if token is not None:
            prices[f"{token.asset}{QUOTE}"] = token.price
        return prices

    async def ticker_price(self, request: web.Request) -> web.Response:
        """``GET /api/v3/ticker/price``: one symbol's last price, or every symbol's."""
        params = await self._params(request)
        prices = self.ticker_prices()
        symbol = params.get("symbol")
        if symbol is None:
            return web.json_response([{"symbol": s, "price": fmt(p)} for s, p in prices.items()])
        if symbol not in prices:
            raise BinanceError(-1121, "Invalid symbol.")
        return web.json_response({"symbol": symbol, "price": fmt(prices[symbol])})

    async def depth(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        market = self._market(params)
        limit = min(_int(params, "limit", default=100, lo=1), 5000)
        return web.json_response(self._depth_json(market, limit))

    async def trades(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        market = self._market(params)
        limit = min(_int(params, "limit", default=500, lo=1), 1000)
        recent = list(market.trades)[-limit:]
        return web.json_response(
            [
                {
                    "id": t.id,
                    "price": fmt(t.price),
                    "qty": fmt(t.qty),
                    "quoteQty": fmt(t.price * t.qty),
                    "time": t.ts_ms,
                    "isBuyerMaker": t.buyer_maker,
                    "isBestMatch": True,
                }
                for t in recent
            ]
        )

    async def agg_trades(self, request: web.Request) -> web.Response:
        params = await self._params(request)
        market = self._market(params)
        limit = min(_int(params, "limit", default=500, lo=1), 1000)
        from_id = _int(params, "fromId", default=-1)
        start = _int(params, "startTime", default=-1)
        end = _int(params, "endTime", default=-1)
        picked = [
            t
            for t in market.trades
            if (from_id < 0 or t.id >= from_id)
            and (start < 0 or t.ts_ms >= start)
            and (end < 0 or t.ts_ms <= end)
        ]
        picked = picked[:limit] if (from_id >= 0 or start >= 0) else picked[-limit:]
        return web.json_response(
            [
                {
                    "a": t.id,
                    "p": fmt(t.price),
                    "q": fmt(t.qty),
                    "f": t.id,
                    "l": t.id,
                    "T": t.ts_ms,
                    "m": t.buyer_maker,
                    "M": True,
                }
                for t in picked
            ]
        )


def _symbol_info(m: SandboxMarket) -> dict[str, Any]:
    """One pair of ``exchangeInfo``: its assets and its real filters (tick, lot, notional)."""
    inst = m.instrument
    fee_precision = 8
    return {
        "symbol": m.symbol,
        "status": "TRADING",
        "baseAsset": m.base,
        "baseAssetPrecision": 8,
        "quoteAsset": m.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": fee_precision,
        "quoteCommissionPrecision": fee_precision,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
        "icebergAllowed": False,
        "ocoAllowed": False,
        "otoAllowed": False,
        "opoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": False,
        "amendAllowed": False,
        "pegInstructionsAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": fmt(inst.tick_size),
                "maxPrice": fmt(MAX_PRICE),
                "tickSize": fmt(inst.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": fmt(inst.min_size or inst.lot_size),
                "maxQty": fmt(m.max_qty),
                "stepSize": fmt(inst.lot_size),
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": "0.00000000",
                "maxQty": fmt(m.market_max_qty),
                "stepSize": "0.00000000",
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": fmt(MIN_NOTIONAL),
                "applyMinToMarket": True,
                "maxNotional": fmt(MAX_NOTIONAL),
                "applyMaxToMarket": False,
                "avgPriceMins": AVG_PRICE_MINS,
            },
            {
                "filterType": "PERCENT_PRICE_BY_SIDE",
                "bidMultiplierUp": str(BID_MULTIPLIER_UP),
                "bidMultiplierDown": str(BID_MULTIPLIER_DOWN),
                "askMultiplierUp": str(ASK_MULTIPLIER_UP),
                "askMultiplierDown": str(ASK_MULTIPLIER_DOWN),
                "avgPriceMins": AVG_PRICE_MINS,
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "NONE",
        "allowedSelfTradePreventionModes": ["NONE"],
    }
