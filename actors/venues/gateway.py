"""The one interface every venue gateway implements: paper (the matching engine), Binance
(ccxt) and Polymarket (py-clob-client). The venue actor shell drives any of them alike.

Errors from any venue map onto one model, ``VenueError`` with a ``VenueErrorKind``, so the
shell decides retries by kind, never by venue-specific codes: only ``RATE_LIMITED`` and
``UNAVAILABLE`` are retryable, and an order submit is retried only after looking the client
id up at the venue (the answer may have been lost after the venue accepted it).

Venue rules (tick, step, minimum notional, price bands) are applied by the real gateways before
an order leaves (``enforce_rules``): an order is adjusted onto the tick and step, or refused
locally as ``OrderRefusedError`` (a ``REJECTED`` that never made a round trip). The paper venue
applies the same, from its instruments (``instrument_rules``), so paper refuses what live would.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from enum import StrEnum
from typing import Protocol, runtime_checkable

from actors.core.exchange_rules import OrderRules, Refusal, check_order
from actors.domain.model import Fill, Instrument, Order, OrderBook

log = logging.getLogger(__name__)


class VenueErrorKind(StrEnum):
    REJECTED = "rejected"
    NOT_FOUND = "not_found"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    AUTH = "auth"

    @property
    def retryable(self) -> bool:
        return self in (VenueErrorKind.RATE_LIMITED, VenueErrorKind.UNAVAILABLE)


class VenueError(Exception):
    """A venue call failed; ``kind`` says what the caller may do about it."""

    def __init__(
        self, venue: str, kind: VenueErrorKind, message: str, *, retry_after_s: float | None = None
    ) -> None:
        super().__init__(f"{venue}: {kind.value}: {message}")
        self.venue = venue
        self.kind = kind
        self.message = message
        self.retry_after_s = retry_after_s

    @property
    def retryable(self) -> bool:
        return self.kind.retryable


class OrderRefusedError(VenueError):
    """Refused before sending: the order breaks a venue rule (``actors.core.exchange_rules``) that no
    safe adjustment fixes. It never left, so nothing is to be looked up; ``rule`` names the rule."""

    def __init__(self, venue: str, refusal: Refusal) -> None:
        super().__init__(venue, VenueErrorKind.REJECTED, refusal.message)
        self.rule = refusal.rule.value


def enforce_rules(venue: str, rules: OrderRules, order: Order, reference: Decimal | None = None) -> Order:
    """The order to send under the venue's ``rules`` (on its tick and step); ``OrderRefusedError`` if none."""
    result = check_order(rules, order, reference)
    if isinstance(result, Refusal):
        log.warning("%s: order %s %s", venue, order.client_id, result.message)
        raise OrderRefusedError(venue, result)
    if result.adjusted:
        log.info(
            "%s: order %s adjusted to the venue's rules: %s",
            venue,
            order.client_id,
            "; ".join(result.adjusted),
        )
    return result.order


def stream_url(rest_url: str, official_rest: str, official_stream: str, path: str) -> str:
    """Where a REST host's streams are: a real venue streams from its own stream host (not the
    REST host with a ws scheme); any other host (a sandbox) at ``<host><path>``."""
    rest = rest_url.rstrip("/")
    if rest == official_rest:
        return official_stream
    return rest.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + path


@runtime_checkable
class VenueGateway(Protocol):
    """Async access to one venue. Orders carry our deterministic client id end to end."""

    venue: str

    async def start(self) -> None:
        """Connect, authenticate, load markets."""

    async def close(self) -> None: ...

    async def instruments(self) -> list[Instrument]:
        """Every tradable market with its tick, lot and minimum size."""

    async def submit(self, order: Order) -> Order:
        """Place an order; returns the venue's view (status, venue id, filled qty).

        Idempotent by client id where the venue allows; raises ``VenueError``.
        """

    async def cancel(self, client_id: str, market: str) -> Order:
        """Cancel by client id; returns the order's final view (its cumulative filled qty included)."""

    async def cancel_all(self, market: str | None = None) -> list[Order]: ...

    async def order(self, client_id: str, market: str) -> Order | None:
        """Look an order up by client id; ``None`` if the venue never saw it (safe to re-send)."""

    async def open_orders(self, market: str | None = None) -> list[Order]: ...

    async def fills(self, market: str, since_ms: int | None = None) -> list[Fill]:
        """Our executions, fill ids unique across venues and markets (prefixed by the gateway)."""

    async def balances(self) -> dict[str, Decimal]:
        """Free + locked per asset."""

    async def order_book(self, market: str) -> OrderBook: ...
