"""A held position's quiet band: the prices on which its core would do nothing but mark.

Why: a feed calls every subscribed position with every price, and almost every call changes
nothing but the mark (no order, no stop raised, no time-exit clock started or reset). Each call is
a Ray round trip and a (de)serialisation on both sides; with ten positions they were most of the
runtime's CPU. A position now tells its feed the band; the feed skips the call while every price of
a batch is inside it and the batch's time is before ``until_ms``, and marks the position itself
(:meth:`QuietBand.mark`, the core's own arithmetic).

Exactness: the band is derived from the same rules as :meth:`PositionCore.on_price` and narrowed by
:data:`MARGIN` (relative) in floats, so a price within float noise of a level is always delivered
and the exact core decides it. Inside the band the core's only change would be its mark and the high
it tracks below the trailing activation, neither of which is saved nor decides anything later (the
activating price itself is outside the band). A band is never given while an exit is under way,
the entry is working, or the position is closed: those states react to every price.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from actors.domain.messages import PositionMarked
from actors.domain.model import Candle, MarketEvent, OrderBook, to_decimal

MARGIN = 1e-9
"""Relative narrowing of the band's float bounds: prices this close to a level go to the core."""


@dataclass(frozen=True, slots=True)
class QuietBand:
    """Prices strictly inside ``(low, high)`` at data times before ``until_ms`` only mark the position.

    ``low`` and ``high`` are already narrowed floats; ``high`` may be ``inf`` and ``until_ms`` None.
    The rest is what the position's mark needs, as of the band (fills change it and end the band).
    """

    position_id: str
    low: float
    high: float
    until_ms: int | None
    entry_price: Decimal
    entry_qty: Decimal
    open_qty: Decimal
    status: str
    realized_pnl: Decimal

    @classmethod
    def between(
        cls,
        low: Decimal,
        high: Decimal | None,
        until_ms: int | None,
        *,
        position_id: str,
        entry_price: Decimal,
        entry_qty: Decimal,
        open_qty: Decimal,
        status: str,
        realized_pnl: Decimal,
    ) -> QuietBand | None:
        """The band of exact levels ``low < price < high`` (None: no price is quiet)."""
        lo = float(low) * (1.0 + MARGIN) if low > 0 else 0.0
        hi = float("inf") if high is None else float(high) * (1.0 - MARGIN)
        if not lo < hi:
            return None
        return cls(
            position_id=position_id,
            low=lo,
            high=hi,
            until_ms=until_ms,
            entry_price=entry_price,
            entry_qty=entry_qty,
            open_qty=open_qty,
            status=status,
            realized_pnl=realized_pnl,
        )

    def last_price(self, events: Sequence[MarketEvent]) -> Decimal | None:
        """The mark the core would hold after ``events`` if every one is quiet; None if one is not
        (or none carries a price): then the position must see the batch."""
        last: Decimal | float | None = None
        for event in events:
            if isinstance(event, Candle):
                t = event.ts_ms + event.interval_ms
                prices: tuple[float, ...] = (event.low, event.high, event.close)
                price: Decimal | float = event.close
            elif isinstance(event, OrderBook):
                if event.best_bid is None:
                    continue  # the core ignores a book without a bid
                t = event.ts_ms
                prices = (float(event.best_bid),)
                price = event.best_bid
            else:  # a settlement, or anything the core may act on
                return None
            if self.until_ms is not None and t >= self.until_ms:
                return None
            for p in prices:
                if not self.low < p < self.high:
                    return None
            last = price
        return None if last is None else to_decimal(last)

    def mark(self, price: Decimal) -> PositionMarked:
        """The position's mark at ``price``, as :class:`~actors.domain.model.Position` computes it."""
        mark_value = price * self.open_qty
        return PositionMarked(
            position_id=self.position_id,
            notional=self.entry_price * self.entry_qty,
            entry_qty=self.entry_qty,
            status=self.status,
            realized_pnl=self.realized_pnl,
            unrealized_pnl=mark_value - self.entry_price * self.open_qty,
            mark_value=mark_value,
            at_ns=time.time_ns(),
        )


@dataclass(frozen=True, slots=True)
class QuietNotice:
    """A position's band for its feed (None: send every price), stamped with the position's wall
    clock when it was computed: answers and pushes may cross, and the newest wins."""

    band: QuietBand | None
    at_ns: int


@dataclass(frozen=True, slots=True)
class PositionPriced:
    """A position's answer to a feed's prices: its mark for the portfolio, and its band."""

    mark: PositionMarked | None
    notice: QuietNotice
