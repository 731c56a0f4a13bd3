"""The portfolio's marks of its open positions: each one's running P&L, newest mark wins.

Marks reach the portfolio two ways: the feed forwards every position's mark of a batch in one
call, and a position reports its own after a venue fill. Either can overtake the other, so a mark
older than the one held is dropped; the mark's time is its position actor's clock, so the two
paths of one position compare.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from actors.domain.model import ZERO


class Mark(NamedTuple):
    at_ns: int
    realized_pnl: Decimal
    unrealized_pnl: Decimal


class MarkBook:
    """Running P&L per held position (fees included); the shell's equity adds it to booked capital."""

    def __init__(self) -> None:
        self._marks: dict[str, Mark] = {}

    def take(self, position_id: str, at_ns: int, realized_pnl: Decimal, unrealized_pnl: Decimal) -> bool:
        """Keep this mark unless one taken later is held; ``False`` when it was dropped."""
        held = self._marks.get(position_id)
        if held is not None and held.at_ns > at_ns:
            return False
        self._marks[position_id] = Mark(at_ns, realized_pnl, unrealized_pnl)
        return True

    def drop(self, position_id: str) -> None:
        """The position closed: its P&L is booked now, its marks must not count twice."""
        self._marks.pop(position_id, None)

    @property
    def running_pnl(self) -> Decimal:
        return sum((m.realized_pnl + m.unrealized_pnl for m in self._marks.values()), ZERO)

    @property
    def unrealized_pnl(self) -> Decimal:
        return sum((m.unrealized_pnl for m in self._marks.values()), ZERO)
