"""Fuzzing the Binance gateway's parsing of ccxt results.

It either builds valid domain objects or raises a plain error, never passes a non-finite amount on.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from actors.venues.binance.gateway import BinanceGateway
from actors.venues.binance.parse import candle_from_row, dec, instrument_from_market
from tests.paths import FIXTURES
from tests.property.fuzz_inputs import FUZZ, json_leaves, mutated

PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError, ArithmeticError, ValidationError)


@given(raw=json_leaves | st.decimals(allow_nan=True, allow_infinity=True))
def test_dec_returns_a_finite_decimal_or_raises(raw: Any) -> None:
    try:
        value = dec(raw)
    except PARSE_ERRORS:
        return
    assert value.is_finite()


def test_dec_refuses_nan_and_infinity() -> None:
    """Found by fuzzing: dec("NaN") returned Decimal('NaN') (a NaN balance could reach the books)."""
    for raw in ("NaN", "nan", "Infinity", "-Infinity", math.nan, Decimal("sNaN")):
        with pytest.raises(ValueError, match="finite"):
            dec(raw)


BINANCE_ORDERS = [
    json.loads((FIXTURES / "binance-spot" / name).read_text())
    for name in ("order_response.json", "new_order_full_response.json", "cancel_order_response.json")
]


def offline_gateway() -> BinanceGateway:
    return BinanceGateway(exchange=SimpleNamespace(options={}, enableRateLimit=False), use_websockets=False)


@FUZZ
@given(data=st.data(), index=st.integers(0, len(BINANCE_ORDERS) - 1))
def test_gateway_order_parsing_builds_valid_orders_or_raises(data: st.DataObject, index: int) -> None:
    info = data.draw(mutated(BINANCE_ORDERS[index]))
    if not isinstance(info, dict):
        return
    raw = {"info": info, "symbol": "BTC/USDT", "id": str(info.get("orderId", "1"))}
    try:
        order = offline_gateway()._to_order(raw)
    except PARSE_ERRORS:
        return
    assert order.qty.is_finite()
    assert order.qty > 0
    assert order.filled_qty >= 0
    assert order.price is None or (order.price.is_finite() and order.price > 0)


KLINE = [1499040000000, "0.01634790", "0.80000000", "0.01575800", "0.01577100", "148976.11427815"]


@FUZZ
@given(row=mutated(KLINE) | st.lists(json_leaves, max_size=8))
def test_gateway_kline_parsing_builds_valid_candles_or_raises(row: Any) -> None:
    if not isinstance(row, list):
        return
    try:
        candle = candle_from_row("binance:BTC/USDT", row, 60_000)
    except PARSE_ERRORS:
        return
    for price in (candle.open, candle.high, candle.low, candle.close):
        assert math.isfinite(price)
        assert price > 0
    assert math.isfinite(candle.volume)
    assert candle.volume >= 0


MARKET = {
    "base": "BTC",
    "precision": {"price": 0.01, "amount": 0.00001},
    "limits": {"amount": {"min": 0.00001}},
    "info": {
        "filters": [
            {"filterType": "PRICE_FILTER", "tickSize": "0.01000000"},
            {"filterType": "LOT_SIZE", "stepSize": "0.00001000", "minQty": "0.00001000"},
        ]
    },
}


@FUZZ
@given(market=mutated(MARKET))
def test_gateway_market_parsing_builds_valid_instruments_or_raises(market: Any) -> None:
    if not isinstance(market, dict):
        return
    try:
        instrument = instrument_from_market("BTC/USDT", market)
    except (*PARSE_ERRORS, AttributeError):  # ccxt's own market shape (dicts) is not what is fuzzed
        return
    assert instrument.tick_size.is_finite()
    assert instrument.tick_size > 0
    assert instrument.lot_size > 0
    assert instrument.min_size >= 0
