"""Binance's JSON onto the domain: orders, candles, instruments, exact amounts.

Exactness: every price, size, fee and balance is read from the venue's own JSON strings
(``info`` of ccxt's parsed objects, or the raw implicit endpoints), never from ccxt's floats.
Pure functions, no I/O: the gateway (``actors.venues.binance.gateway``) calls them and keeps
what it learns (an order id's client id) itself.

Our trades come two ways, read into one ``OwnTrade``: ``myTrades`` rows (REST) and the user data
stream's ``executionReport`` of execution type ``TRADE`` (pushed; ``t`` is the row's ``id``, so a
fill seen both ways has one fill id).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from actors.domain.messages import UpdateKind
from actors.domain.model import (
    Candle,
    Frozen,
    Instrument,
    MarketKind,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    to_decimal,
)

VENUE = "binance"

STATUS = {
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
"""Binance's order status -> ours (an expired order ended without filling whole: cancelled)."""


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


class OwnTrade(Frozen):
    """One trade of ours as Binance reports it (REST or pushed), before its fee is valued."""

    trade_id: str
    order_id: str
    price: Decimal
    qty: Decimal
    is_buyer: bool
    is_maker: bool
    commission: Decimal
    commission_asset: str
    ts_ms: int


def own_trade_from_rest(info: dict[str, Any]) -> OwnTrade:
    """A ``myTrades`` row (``info`` of ccxt's trade)."""
    return OwnTrade(
        trade_id=str(info["id"]),
        order_id=str(info["orderId"]),
        price=dec(info["price"]),
        qty=dec(info["qty"]),
        is_buyer=bool(info.get("isBuyer")),
        is_maker=bool(info.get("isMaker")),
        commission=dec(info.get("commission") or "0"),
        commission_asset=str(info.get("commissionAsset") or ""),
        ts_ms=int(info["time"]),
    )


_REPORT_KINDS = {
    "NEW": UpdateKind.ACCEPTED,
    "TRADE": UpdateKind.FILL,
    "CANCELED": UpdateKind.CANCELLED,
    "EXPIRED": UpdateKind.CANCELLED,
    "TRADE_PREVENTION": UpdateKind.CANCELLED,
    "REJECTED": UpdateKind.REJECTED,
}


def report_kind(report: dict[str, Any]) -> UpdateKind:
    """What an ``executionReport``'s execution type (``x``) did to the order."""
    return _REPORT_KINDS.get(str(report.get("x")), UpdateKind.UNCHANGED)


def report_client_id(report: dict[str, Any]) -> str:
    """Our client id of a report: a cancel's ``c`` is the cancel request's own, ``C`` the order's."""
    return str(report.get("C") or report["c"]) if report.get("x") == "CANCELED" else str(report["c"])


def order_from_report(report: dict[str, Any], market: str) -> Order:
    """The order as an ``executionReport`` shows it after the event (``z``: filled in total)."""
    wire_type = str(report.get("o") or "LIMIT").upper()
    price = dec(report.get("p") or "0")
    return Order(
        client_id=report_client_id(report),
        market=market,
        side=Side.BUY if str(report.get("S")).upper() == "BUY" else Side.SELL,
        type=OrderType.MARKET if wire_type == "MARKET" else OrderType.LIMIT,
        tif=tif_of(wire_type, report.get("f")),
        price=price if price > 0 else None,
        qty=dec(report["q"]),
        filled_qty=dec(report.get("z") or "0"),
        status=status_of(report.get("X")),
        venue_order_id=str(report["i"]),
        created_ms=int(report.get("O") or report.get("T") or 0),
        updated_ms=int(report.get("T") or report.get("E") or 0),
    )


def own_trade_from_report(report: dict[str, Any]) -> OwnTrade | None:
    """The trade a ``TRADE`` report announces (``l`` at ``L``, commission ``n`` in ``N``); else None."""
    if report.get("x") != "TRADE":
        return None
    return OwnTrade(
        trade_id=str(report["t"]),
        order_id=str(report["i"]),
        price=dec(report["L"]),
        qty=dec(report["l"]),
        is_buyer=str(report.get("S")).upper() == "BUY",
        is_maker=bool(report.get("m")),
        commission=dec(report.get("n") or "0"),
        commission_asset=str(report.get("N") or ""),
        ts_ms=int(report["T"]),
    )


def status_of(raw: Any) -> OrderStatus:
    """Our status of Binance's (``None`` or one we do not know: still open)."""
    return STATUS.get(str(raw), OrderStatus.OPEN) if raw is not None else OrderStatus.OPEN


def tif_of(wire_type: str, time_in_force: Any) -> TimeInForce:
    """Our time in force of Binance's order type and ``timeInForce``."""
    if wire_type == "LIMIT_MAKER":
        return TimeInForce.POST_ONLY
    if wire_type == "MARKET" or str(time_in_force) == "IOC":
        return TimeInForce.IOC
    return TimeInForce.GTC


def order_from_ccxt(raw: dict[str, Any], market: str, template: Order | None = None) -> Order:
    """Our ``Order`` in ``market`` from a ccxt order, amounts from Binance's strings; with
    ``template`` (the order as sent) only what the venue says changed is taken."""
    info: dict[str, Any] = raw.get("info") or {}
    client_id = str(
        info.get("origClientOrderId") or info.get("clientOrderId") or raw.get("clientOrderId") or ""
    )
    order_id = info.get("orderId", raw.get("id"))
    status = status_of(info.get("status"))
    when = info.get("updateTime") or info.get("transactTime") or info.get("time") or raw.get("timestamp") or 0
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
    price_raw = info.get("price")
    price = dec(price_raw) if price_raw is not None and Decimal(str(price_raw)) > 0 else None
    side = Side.BUY if str(info.get("side") or raw.get("side")).lower() == "buy" else Side.SELL
    return Order(
        client_id=client_id,
        market=market,
        side=side,
        type=otype,
        tif=tif_of(wire_type, info.get("timeInForce")),
        price=price,
        qty=dec(info.get("origQty", raw.get("amount"))),
        filled_qty=dec(info.get("executedQty", raw.get("filled") or 0)),
        status=status,
        venue_order_id=venue_id,
        created_ms=int(created),
        updated_ms=int(when),
    )


def instrument_from_market(symbol: str, market: dict[str, Any]) -> Instrument:
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


def candle_from_row(market: str, row: list[Any], step: int) -> Candle:
    """A kline row ``[open time, o, h, l, c, volume, ...]`` as a candle of ``step`` ms."""
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


def is_plain_order(raw: Any) -> bool:
    """cancel_all answers orders and order lists (OCO); only plain orders are ours."""
    if not isinstance(raw, dict):
        return False
    info = raw.get("info") or {}
    return "orders" not in info and info.get("orderListId", -1) == -1
