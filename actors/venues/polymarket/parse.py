"""Polymarket's wire formats as domain objects: market ids, numbers and times, REST payloads.

``token_of`` / ``market_of`` turn ``polymarket:<token id>`` into a token id and back. ``decimal_of``
and ``ms_of`` read the venue's numbers (strings or numbers, finite only) and times (unix seconds or
milliseconds, or ISO-8601). ``order_from_json``, ``book_from_summary`` and
``instruments_from_market`` read the CLOB's ``/data/order(s)`` objects, py-clob-client's
``OrderBookSummary`` and ``/markets`` entries. Each raises ``ValueError`` / ``KeyError`` /
``TypeError`` (or pydantic's ``ValidationError``) on a malformed payload; the callers decide what
that means.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from actors.data.polymarket import CORRELATION_GROUP, LOT_SIZE
from actors.domain.model import (
    BookLevel,
    Instrument,
    MarketKind,
    Order,
    OrderBook,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from actors.venues.gateway import VenueError, VenueErrorKind

VENUE = "polymarket"


# --------------------------------------------------------------------------- ids


def token_of(market: str) -> str:
    """``polymarket:<token id>`` -> token id (a bare token id passes through)."""
    venue, sep, token = market.partition(":")
    if not sep:
        return market
    if venue != VENUE or not token:
        raise VenueError(VENUE, VenueErrorKind.REJECTED, f"not a polymarket market: {market!r}")
    return token


def market_of(token: str) -> str:
    return f"{VENUE}:{token}"


# --------------------------------------------------------------------------- wire -> domain


def decimal_of(value: Any, name: str) -> Decimal:
    """A finite ``Decimal`` of a number or numeric text; ``name`` names the field in the error."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{name} is missing")
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{name} is not a number: {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"{name} is not finite: {value!r}")
    return result


def ms_of(value: Any) -> int | None:
    """Milliseconds of a unix time (seconds or ms, number or string) or an ISO-8601 text."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        text = str(value)
        try:
            number = float(text)
        except ValueError:
            try:
                dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return None
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            return int(dt.timestamp() * 1000)
    return int(number if number >= 1e11 else number * 1000)


def order_from_json(raw: dict[str, Any], client_id: str | None = None) -> Order:
    """A CLOB order object (``/data/order``, ``/data/orders``) as a domain ``Order``."""
    size = decimal_of(raw.get("original_size"), "original_size")
    matched = decimal_of(raw.get("size_matched") or 0, "size_matched")
    status_text = str(raw.get("status", "")).upper()
    if status_text == "MATCHED":
        status = OrderStatus.FILLED if matched >= size else OrderStatus.CANCELLED
    elif status_text.startswith("CANCEL") or status_text in ("INVALID", "EXPIRED"):
        status = OrderStatus.CANCELLED
    else:  # LIVE, DELAYED, UNMATCHED: still working
        status = OrderStatus.PARTIALLY_FILLED if matched > 0 else OrderStatus.OPEN
    order_type = str(raw.get("order_type", "GTC")).upper()
    created = ms_of(raw.get("created_at")) or 0
    return Order(
        client_id=client_id or str(raw["id"]),
        market=market_of(str(raw["asset_id"])),
        side=Side.BUY if str(raw.get("side", "")).upper() == "BUY" else Side.SELL,
        type=OrderType.LIMIT,
        tif=TimeInForce.IOC if order_type in ("FAK", "FOK") else TimeInForce.GTC,
        price=decimal_of(raw.get("price"), "price"),
        qty=size,
        filled_qty=matched,
        status=status,
        venue_order_id=str(raw["id"]),
        created_ms=created,
        updated_ms=created,
    )


def book_from_summary(summary: Any, token: str) -> OrderBook:
    """py-clob-client's ``OrderBookSummary`` (levels worst first) as a domain ``OrderBook``."""
    bids = [
        BookLevel(price=decimal_of(s.price, "price"), size=decimal_of(s.size, "size"))
        for s in summary.bids or []
    ]
    asks = [
        BookLevel(price=decimal_of(s.price, "price"), size=decimal_of(s.size, "size"))
        for s in summary.asks or []
    ]
    return OrderBook(
        market=market_of(token),
        ts_ms=ms_of(summary.timestamp) or 0,
        bids=tuple(lv for lv in bids if lv.size > 0),
        asks=tuple(lv for lv in asks if lv.size > 0),
    )


def instruments_from_market(raw: dict[str, Any]) -> list[Instrument]:
    """The outcome tokens of one CLOB market object as binary instruments."""
    tick = decimal_of(raw.get("minimum_tick_size"), "minimum_tick_size")
    min_size = decimal_of(raw.get("minimum_order_size") or 0, "minimum_order_size")
    condition = str(raw["condition_id"])
    slug = str(raw.get("market_slug", ""))
    group = CORRELATION_GROUP if slug.startswith("btc-updown-5m") else f"{VENUE}:{condition}"
    found = []
    for token in raw.get("tokens") or []:
        found.append(
            Instrument(
                venue=VENUE,
                symbol=str(token["token_id"]),
                kind=MarketKind.BINARY,
                tick_size=tick,
                lot_size=LOT_SIZE,
                min_size=min_size,
                created_ms=ms_of(raw.get("accepting_order_timestamp")),
                end_ms=ms_of(raw.get("end_date_iso")),
                correlation_group=group,
                condition_id=condition,
                outcome=str(token.get("outcome")) if token.get("outcome") is not None else None,
                start_ms=ms_of(raw.get("game_start_time")),
            )
        )
    return found
