"""Fuzzing the domain models: they refuse NaN, infinite, zero or negative prices and sizes."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from actors.domain.model import BookLevel, Candle, Fill, Instrument, Order, OrderBook, Side, Signal

BAD_FLOATS = st.sampled_from([math.nan, math.inf, -math.inf, -1.0, -1e-300, 0.0, -0.0])
BAD_AMOUNTS = st.sampled_from(
    ["NaN", "sNaN", "Infinity", "-Infinity", "-1", "0", "-0.0000001", math.nan, math.inf]
)
GOOD_FLOATS = st.floats(min_value=1e-9, max_value=1e12)
GOOD_AMOUNTS = st.decimals(min_value=Decimal("1e-8"), max_value=Decimal("1e12"), places=8)


@given(field=st.sampled_from(["open", "high", "low", "close"]), bad=BAD_FLOATS)
def test_candle_refuses_non_finite_or_non_positive_prices(field: str, bad: float) -> None:
    raw = {"market": "m", "ts_ms": 0, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0}
    with pytest.raises(ValidationError):
        Candle(**(raw | {field: bad}))


@given(bad=st.sampled_from([math.nan, math.inf, -math.inf, -1.0, -1e-300]))
def test_candle_refuses_non_finite_or_negative_volume(bad: float) -> None:
    with pytest.raises(ValidationError):
        Candle(market="m", ts_ms=0, open=1.0, high=1.0, low=1.0, close=1.0, volume=bad)


@given(o=GOOD_FLOATS, c=GOOD_FLOATS, v=st.floats(min_value=0, max_value=1e15))
def test_candle_accepts_finite_positive_values(o: float, c: float, v: float) -> None:
    candle = Candle(market="m", ts_ms=0, open=o, high=max(o, c), low=min(o, c), close=c, volume=v)
    assert candle.close == c


@given(field=st.sampled_from(["price", "size"]), bad=BAD_AMOUNTS)
def test_book_level_and_order_book_refuse_bad_prices_and_sizes(field: str, bad: Any) -> None:
    level = {"price": "0.5", "size": "10"} | {field: bad}
    with pytest.raises(ValidationError):
        BookLevel.model_validate(level)
    with pytest.raises(ValidationError):
        OrderBook.model_validate({"market": "m", "ts_ms": 0, "bids": [level], "asks": []})


@given(field=st.sampled_from(["price", "qty", "fee"]), bad=BAD_AMOUNTS)
def test_fill_refuses_bad_amounts(field: str, bad: Any) -> None:
    raw = {
        "fill_id": "f",
        "client_id": "c",
        "market": "m",
        "side": "buy",
        "price": "1",
        "qty": "1",
        "ts_ms": 0,
    }
    if field == "fee" and bad in ("-1", "0", "-0.0000001"):
        return  # a fee may be zero or negative (a maker rebate); only non-finite fees are nonsense
    with pytest.raises(ValidationError):
        Fill.model_validate(raw | {field: bad})


@given(field=st.sampled_from(["price", "qty", "filled_qty"]), bad=BAD_AMOUNTS)
def test_order_refuses_bad_amounts_at_creation_and_assignment(field: str, bad: Any) -> None:
    if field == "filled_qty" and bad == "0":
        return  # nothing filled yet is the normal start
    raw = {"client_id": "c", "market": "m", "side": "buy", "price": "1", "qty": "1"}
    with pytest.raises(ValidationError):
        Order.model_validate(raw | {field: bad})
    order = Order.model_validate(raw)
    with pytest.raises(ValidationError):
        setattr(order, field, bad)


@given(price=GOOD_AMOUNTS, qty=GOOD_AMOUNTS)
def test_order_and_fill_accept_finite_positive_amounts(price: Decimal, qty: Decimal) -> None:
    order = Order(client_id="c", market="m", side=Side.BUY, price=price, qty=qty)
    fill = Fill(fill_id="f", client_id="c", market="m", side=Side.BUY, price=price, qty=qty, ts_ms=0)
    assert order.remaining == qty
    assert fill.notional == price * qty


@given(price=BAD_FLOATS, strength=st.sampled_from([math.nan, math.inf, -0.1, 1.1]))
def test_signal_refuses_bad_price_or_strength(price: float, strength: float) -> None:
    with pytest.raises(ValidationError):
        Signal(strategy="s", market="m", side=Side.BUY, strength=0.5, ts_ms=0, price=price)
    with pytest.raises(ValidationError):
        Signal(strategy="s", market="m", side=Side.BUY, strength=strength, ts_ms=0, price=1.0)


def test_instrument_strike_refuses_nan() -> None:
    with pytest.raises(ValidationError):
        Instrument(venue="v", symbol="s", tick_size=Decimal("0.01"), lot_size=Decimal(1), strike=math.nan)
