"""Binance's ``executionReport`` (the recorded shapes in tests/fixtures/binance-spot) read into the
domain: the order after the event, the trade it announces, what kind of update it is."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from actors.domain.messages import UpdateKind
from actors.domain.model import OrderStatus, OrderType, Side, TimeInForce
from actors.venues.binance.parse import (
    OwnTrade,
    order_from_report,
    own_trade_from_report,
    own_trade_from_rest,
    report_client_id,
    report_kind,
)
from tests.paths import FIXTURES

MARKET = "binance:ETH/USDT"


def _report(name: str) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads((FIXTURES / "binance-spot" / f"{name}.json").read_text())
    return raw.get("event", raw)


def test_trade_report_reads_the_fill_and_the_order_after_it() -> None:
    report = _report("execution_report_trade")
    order = order_from_report(report, MARKET)
    assert (order.client_id, order.side, order.type, order.tif) == (
        "x-TD67BGP9-T0000000000000",
        Side.BUY,
        OrderType.LIMIT,
        TimeInForce.GTC,
    )
    assert (order.status, order.qty, order.filled_qty, order.price) == (
        OrderStatus.FILLED,
        Decimal(1),
        Decimal(1),
        Decimal(2500),
    )
    assert order.venue_order_id == "12345678"
    assert report_kind(report) is UpdateKind.FILL
    assert own_trade_from_report(report) == OwnTrade(
        trade_id="98765432",
        order_id="12345678",
        price=Decimal(2500),
        qty=Decimal(1),
        is_buyer=True,
        is_maker=True,
        commission=Decimal("0.001"),
        commission_asset="ETH",
        ts_ms=1709654401000,
    )


@pytest.mark.parametrize(
    ("name", "kind", "status"),
    [
        ("execution_report_new", UpdateKind.ACCEPTED, OrderStatus.OPEN),
        ("execution_report_wrapped", UpdateKind.ACCEPTED, OrderStatus.OPEN),
        ("execution_report_canceled", UpdateKind.CANCELLED, OrderStatus.CANCELLED),
        ("execution_report_expired", UpdateKind.CANCELLED, OrderStatus.CANCELLED),
    ],
)
def test_report_without_a_trade_reads_its_kind_and_status_and_no_fill(
    name: str, kind: UpdateKind, status: OrderStatus
) -> None:
    report = _report(name)
    assert report_kind(report) is kind
    assert order_from_report(report, MARKET).status is status
    assert own_trade_from_report(report) is None


def test_cancel_report_names_the_cancelled_order_not_the_cancel_request() -> None:
    report = {**_report("execution_report_canceled"), "c": "cancel-req-1", "C": "rt-entry-1"}
    assert report_client_id(report) == "rt-entry-1"
    assert order_from_report(report, MARKET).client_id == "rt-entry-1"


def test_pushed_and_polled_trade_read_the_same() -> None:
    """A myTrades row and the TRADE report of the same execution: one trade, hence one fill id."""
    report = _report("execution_report_trade")
    row = {
        "symbol": "ETHUSDT",
        "id": report["t"],
        "orderId": report["i"],
        "price": report["L"],
        "qty": report["l"],
        "commission": report["n"],
        "commissionAsset": report["N"],
        "time": report["T"],
        "isBuyer": True,
        "isMaker": report["m"],
    }
    assert own_trade_from_rest(row) == own_trade_from_report(report)
