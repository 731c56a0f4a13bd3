"""The portfolio's daily-loss limit: one UTC day book per clock, halted when a day loses too much.

The day's P&L is equity now minus equity at the day's first event. When the loss reaches
``max_daily_loss_fraction`` of the day's starting equity, entries are halted until that clock's
next UTC day (``now_ms // DAY_MS``); exits never are. Each clock (a market's venue) keeps its own
day: live, every venue runs on the wall clock, but a paper replay of Binance candles of 2024
beside a Polymarket day of 2026 runs on two clocks, and one day shared between them would never
roll over for the earlier one. A loss counts on every clock's day (equity is one); a halt ends
with the day of the clock it is on. :class:`~actors.core.portfolio.PortfolioCore` owns one
:class:`DailyLossBook` and says when to roll and check it (only on fresh marks).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from actors.core.portfolio_decisions import Gate, GateResult, fmt, pct
from actors.domain.model import DAY_MS, ZERO, to_decimal

log = logging.getLogger(__name__)

LEGACY_CLOCK = "*"
"""The day book of a snapshot taken before clocks were kept apart: each clock starts from it."""


@dataclass
class DayBook:
    """One clock's UTC day and the equity it started with; ``halted`` by the daily-loss limit."""

    day: int
    start_equity: Decimal
    halted: bool = False


def day_text(day: int) -> str:
    """A UTC day number (``now_ms // DAY_MS``) as an ISO date."""
    return datetime.fromtimestamp(day * DAY_MS / 1000, tz=UTC).date().isoformat()


class DailyLossBook:
    """The day books of every clock, and the clock of the latest timed event (the one reported)."""

    def __init__(self) -> None:
        self.days: dict[str, DayBook] = {}
        """Per clock (a market's venue), the UTC day (``now_ms // DAY_MS``) of its latest event and
        that day's daily-loss book."""
        self.clock = ""
        """The clock of the latest timed event: :meth:`pnl`, :attr:`halted` and :meth:`status` show
        its book."""

    def pnl(self, equity: Decimal) -> Decimal:
        """Equity now minus equity at the current UTC day's first event (0 before any timed event)."""
        book = self.days.get(self.clock)
        return ZERO if book is None else equity - book.start_equity

    @property
    def halted(self) -> bool:
        """Entries are halted for the rest of the current clock's UTC day."""
        book = self.days.get(self.clock)
        return book is not None and book.halted

    def status(self, equity: Decimal, limit: float | None) -> dict[str, Any]:
        """The current day's book for heartbeats and alerts (money as strings, exact)."""
        book = self.days.get(self.clock)
        day = None if book is None else datetime.fromtimestamp(book.day * DAY_MS / 1000, tz=UTC)
        return {
            "day": None if day is None else day.date().isoformat(),
            "day_pnl": str(self.pnl(equity)),
            "day_start_equity": str(ZERO if book is None else book.start_equity),
            "limit_fraction": limit,
            "halted": self.halted,
        }

    def roll(self, now_ms: int, clock: str, equity: Decimal) -> None:
        """Start a new UTC day's book on ``clock`` at its first event of the day, from ``equity`` (its
        time never moves it back; another clock's time never moves it at all)."""
        day = now_ms // DAY_MS
        self.clock = clock
        book = self.days.get(clock)
        if book is None and LEGACY_CLOCK in self.days:
            book = self.days[clock] = replace(self.days[LEGACY_CLOCK])
        if book is not None and day <= book.day:
            return
        if book is not None and book.halted:
            log.warning("daily loss halt lifted: a new UTC day began (%s, %s clock)", day_text(day), clock)
        self.days[clock] = DayBook(day=day, start_equity=equity)

    def check(self, equity: Decimal, limit: float | None, now_ms: int | None) -> None:
        """Halt every clock's day whose loss reached the limit: equity is one, whichever venue lost it."""
        if limit is None:
            return
        for clock, book in self.days.items():
            start = book.start_equity
            loss = start - equity
            if book.halted or start <= 0 or loss <= 0 or loss < start * to_decimal(limit):
                continue
            book.halted = True
            log.warning(
                "pre-trade limit daily_loss: day %s (%s clock) lost %s = %s of its starting equity %s "
                "(limit %s): entries halted until the next UTC day%s",
                day_text(book.day),
                clock,
                fmt(loss),
                pct(loss / start),
                fmt(start),
                pct(to_decimal(limit)),
                "" if now_ms is None else f" (at {now_ms} ms)",
            )

    def gate(self, clock: str, equity: Decimal, limit: float | None) -> GateResult:
        """The ``daily_loss`` gate of an entry on ``clock``."""
        if limit is None:
            return GateResult(gate=Gate.DAILY_LOSS, passed=True, detail="no daily loss limit")
        book = self.days.get(clock)
        start = ZERO if book is None else book.start_equity
        pnl = ZERO if book is None else equity - start
        share = f" = {pct(pnl / start)}" if start > 0 else ""
        text = f"day P&L {fmt(pnl)}{share} of starting equity {fmt(start)}, limit -{pct(to_decimal(limit))}"
        if book is not None and book.halted:
            return GateResult(
                gate=Gate.DAILY_LOSS, passed=False, detail=f"{text}: entries halted until the next UTC day"
            )
        return GateResult(gate=Gate.DAILY_LOSS, passed=True, detail=text)

    def state(self) -> dict[str, Any]:
        """The ``days`` and ``clock`` entries of the portfolio's snapshot."""
        return {
            "days": {
                clock: {"day": b.day, "start_equity": str(b.start_equity), "halted": b.halted}
                for clock, b in self.days.items()
            },
            "clock": self.clock,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> DailyLossBook:
        """Inverse of :meth:`state`, from the portfolio's snapshot. A snapshot from before the limit
        existed starts a fresh day book; one from before clocks were kept apart (``day``,
        ``day_start_equity``, ``halted_day``) seeds every clock's first book."""
        book = cls()
        book.days = {
            str(clock): DayBook(
                day=int(b["day"]), start_equity=Decimal(b["start_equity"]), halted=bool(b["halted"])
            )
            for clock, b in state.get("days", {}).items()
        }
        book.clock = str(state.get("clock", ""))
        if state.get("day") is not None:
            day = int(state["day"])
            book.days[LEGACY_CLOCK] = DayBook(
                day=day,
                start_equity=Decimal(state.get("day_start_equity", "0")),
                halted=state.get("halted_day") == day,
            )
        return book
