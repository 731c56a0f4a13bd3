"""Typed messages between actors: venue order updates, store operations, position reports.

Actors talk in these, never in positional tuples or string-keyed dicts, so a message that is
wrong fails where it is built (type checker, constructor) rather than where it is read.
Store operations and position reports are frozen slotted dataclasses: they cross an actor
boundary on every fill and mark, and a dataclass pickles several times faster than a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from actors.domain.model import Fill, Frozen, Order

# ---------------------------------------------------------------------- venue -> position


class UpdateKind(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    FILL = "fill"
    CANCELLED = "cancelled"
    UNCHANGED = "unchanged"
    """Nothing changed: a duplicate submit, or a cancel of an order that is no longer open."""


class Reason(StrEnum):
    UNKNOWN_MARKET = "unknown market"
    INVALID_ORDER = "invalid order"
    INVALID_QTY = "invalid quantity"
    LOT_SIZE = "quantity not a multiple of the lot size"
    MIN_SIZE = "quantity below the minimum size"
    INVALID_PRICE = "invalid price"
    TICK_SIZE = "price not a multiple of the tick size"
    INSUFFICIENT_FUNDS = "insufficient funds"
    POST_ONLY_WOULD_TAKE = "post-only order would take liquidity"
    DUPLICATE_CLIENT_ID = "duplicate client id"
    NOT_OPEN = "order is not open"
    REQUESTED = "cancel requested"
    UNFILLED_REMAINDER = "unfilled remainder of an immediate order"
    """An IOC or market order's remainder (thin book, no liquidity, price protection)."""


class OrderUpdate(Frozen):
    """Something that happened to one order; ``order`` is a snapshot taken after it happened."""

    seq: int
    kind: UpdateKind
    ts_ms: int
    order: Order
    fill: Fill | None = None
    reason: Reason | None = None
    detail: str = ""


# ---------------------------------------------------------------------- anyone -> store


@dataclass(frozen=True, slots=True)
class PutRecord:
    """Write (replace) one record: ``kind/key`` -> ``data``."""

    kind: str
    key: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DeleteRecord:
    kind: str
    key: str


@dataclass(frozen=True, slots=True)
class RecordIntent:
    """Write-ahead: the order as it will be sent, before the venue is called."""

    order: Order


@dataclass(frozen=True, slots=True)
class RecordAnswer:
    """The venue's answer to an order (status, venue id, filled quantity) at ``ts_ms``."""

    order: Order
    ts_ms: int


@dataclass(frozen=True, slots=True)
class RecordFill:
    fill: Fill


@dataclass(frozen=True, slots=True)
class AppendTrade:
    """A closed round trip for the trade log (``record["ts_ms"]`` is its close time)."""

    record: dict[str, Any]


StoreOp = PutRecord | DeleteRecord | RecordIntent | RecordAnswer | RecordFill | AppendTrade
"""One operation of a store batch; a batch commits in one durable transaction."""


# ---------------------------------------------------------------------- position -> portfolio


@dataclass(frozen=True, slots=True)
class PositionMarked:
    """What an open position costs and is worth now (sent on every mark, and once it holds)."""

    position_id: str
    notional: Decimal
    entry_qty: Decimal
    status: str
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    mark_value: Decimal
    at_ns: int


@dataclass(frozen=True, slots=True)
class PositionReleased:
    """A position has closed: what the portfolio must book to free its slot.

    Kept in the position's record too (``close``), so the supervisor can deliver it for an
    actor that died between closing and reporting.
    """

    position_id: str
    realized_pnl: Decimal
    fees: Decimal
    unfilled: bool
    pool: str | None = None
    """The pooled actor (``pool:<n>``) that ran it, asking to rejoin the pool; only the actor
    itself sends it (never the supervisor's release on its behalf), before it goes idle."""

    def to_record(self) -> dict[str, Any]:
        return {
            "realized_pnl": str(self.realized_pnl),
            "fees": str(self.fees),
            "unfilled": self.unfilled,
        }

    @classmethod
    def from_record(cls, position_id: str, data: dict[str, Any]) -> PositionReleased:
        return cls(
            position_id=position_id,
            realized_pnl=Decimal(str(data.get("realized_pnl", "0"))),
            fees=Decimal(str(data.get("fees", "0"))),
            unfilled=bool(data.get("unfilled", False)),
        )


PositionReport = PositionMarked | PositionReleased
