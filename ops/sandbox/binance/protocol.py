"""Binance's wire vocabulary, shared by every part of the sandbox: symbols, the filter
limits, the error shape and the parsing of request parameters (Binance's own error codes for
each way a parameter can be wrong).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import ROUND_DOWN, Decimal

from aiohttp import web

from config.models import BINANCE_TIMEFRAMES_MS

SYMBOL = "BTCUSDT"
BASE, QUOTE = "BTC", "USDT"
"""The first replayed pair and its assets (what a fresh account is funded in)."""
BAR_MS = 60_000
INTERVALS_MS = {name: ms for name, ms in BINANCE_TIMEFRAMES_MS.items() if BAR_MS <= ms <= 86_400_000}
"""The kline intervals served (REST ``interval``, ``<symbol>@kline_<interval>``): 1m bars aggregated."""

MIN_NOTIONAL = Decimal(5)
MAX_NOTIONAL = Decimal(9_000_000)
BID_MULTIPLIER_UP, BID_MULTIPLIER_DOWN = Decimal(5), Decimal("0.2")
ASK_MULTIPLIER_UP, ASK_MULTIPLIER_DOWN = Decimal(5), Decimal("0.2")
"""PERCENT_PRICE_BY_SIDE as Binance lists BTCUSDT: limit prices within 0.2x..5x the average price."""
AVG_PRICE_MINS = 5
MAX_PRICE = Decimal(1_000_000)
MAX_QTY = Decimal(9000)
"""LOT_SIZE maxQty of a pair traded in fractions (BTC, ETH, SOL); whole-unit pairs (XRP) allow more."""
MAX_WHOLE_QTY = Decimal(92_141_578)
MARKET_MAX_QTY = Decimal("63.94567891")
"""MARKET_LOT_SIZE maxQty of a fractional pair: Binance lists a market order limit far under LOT_SIZE's
(BTCUSDT: tens of BTC, off any grid), with ``minQty`` and ``stepSize`` 0 (LOT_SIZE's apply)."""
MARKET_MAX_WHOLE_QTY = Decimal("1847263.5")


def binance_symbol(symbol: str) -> str:
    """Binance's id of a ccxt symbol: ``BTC/USDT`` -> ``BTCUSDT``."""
    return symbol.replace("/", "")


def max_qty(lot: Decimal) -> Decimal:
    """LOT_SIZE maxQty of a pair with step ``lot`` (as Binance lists BTCUSDT and XRPUSDT)."""
    return MAX_WHOLE_QTY if lot >= 1 else MAX_QTY


def market_max_qty(lot: Decimal) -> Decimal:
    """MARKET_LOT_SIZE maxQty of a pair with step ``lot``: what one market order may trade."""
    return MARKET_MAX_WHOLE_QTY if lot >= 1 else MARKET_MAX_QTY


_INT_RE = re.compile(r"-?[0-9]{1,20}")
_DEC_RE = re.compile(r"[0-9]{1,20}(\.[0-9]{1,20})?")


class BinanceError(Exception):
    """An answer in Binance's error shape ``{"code": ..., "msg": ...}``."""

    def __init__(self, code: int, msg: str, status: int = 400, headers: Mapping[str, str] | None = None):
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        return web.json_response(
            {"code": self.code, "msg": self.msg}, status=self.status, headers=self.headers
        )


def _mandatory(name: str) -> BinanceError:
    return BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def _illegal(name: str, legal: str) -> BinanceError:
    return BinanceError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'.")


def _not_required(name: str) -> BinanceError:
    return BinanceError(-1106, f"Parameter '{name}' sent when not required.")


def fmt(value: Decimal) -> str:
    """Binance's 8-decimal string form of an amount."""
    return f"{value.quantize(Decimal('1e-8'), rounding=ROUND_DOWN):f}"


def _int(
    params: Mapping[str, str], name: str, *, default: int = 0, required: bool = False, lo: int | None = None
) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise _mandatory(name)
        return default
    if not _INT_RE.fullmatch(raw):
        raise _illegal(name, "^[0-9]{1,20}$")
    value = int(raw)
    if lo is not None and value < lo:
        raise _illegal(name, f"value >= {lo}")
    return value


def _decimal(params: Mapping[str, str], name: str) -> Decimal | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not _DEC_RE.fullmatch(raw):
        raise _illegal(name, r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
    return Decimal(raw)
