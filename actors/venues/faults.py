"""Faults the paper venue injects at its edge, for chaos runs: off unless asked for.

A :class:`PaperGateway` carries a :class:`VenueFaults` only when ``runtime.fault_injection`` is
on, and the settings refuse that flag in live mode, so a live venue has no fault hook at all.
The faults act where a real venue's weather comes from, the gateway edge: the matching engine
itself is untouched (orders it never saw were refused before reaching it, and a thinned market
is just less liquidity).

Two shapes of fault:

- a **window** of wall time (the edge may read the clock; the cores never do):
  ``reject_balance`` (every submit refused for insufficient balance), ``reject_min_notional``
  (the minimum notional raised above every order: every submit refused), ``reject_tick_size``
  (the tick coarsened :data:`TICK_FACTOR`-fold: a price off the new grid is refused), and
  ``partial_fills`` (the market is thinned so that one candle or book fills at most half of the
  smallest working order's remainder: orders fill in pieces);
- a number of **calls** that fail like a real venue's HTTP weather: ``venue_5xx`` (the next
  3 calls: unavailable), ``venue_429`` (the next 2: rate limited), ``venue_timeout`` (the next
  lookup hangs :data:`TIMEOUT_S`, then fails), ``lost_answer`` (the next submit reaches the
  engine, its answer is lost).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from actors.domain.model import Candle, Instrument, MarketEvent, Order, OrderBook, floor_to
from actors.venues.gateway import VenueError, VenueErrorKind

REJECTION_FAULTS = ("reject_balance", "reject_min_notional", "reject_tick_size")
WINDOW_FAULTS = (*REJECTION_FAULTS, "partial_fills")
CALL_FAULTS: dict[str, int] = {"venue_5xx": 3, "venue_429": 2, "venue_timeout": 1, "lost_answer": 1}
"""Call faults and how many calls each one fails."""
VENUE_FAULTS = WINDOW_FAULTS + tuple(CALL_FAULTS)
TICK_FACTOR = 10
TIMEOUT_S = 2.0
RETRY_AFTER_S = 0.3
LOOKUPS = frozenset({"order", "open_orders", "fills"})


class VenueFaults:
    """The faults one paper venue is injecting now; ``clock`` is monotonic seconds."""

    def __init__(self, venue: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.venue = venue
        self.clock = clock
        self._until: dict[str, float] = {}
        self._calls: dict[str, int] = {}
        self.struck: dict[str, int] = {}
        """How often each fault acted (an order refused, an event thinned, a call failed)."""

    def inject(self, kind: str, seconds: float = 0.0) -> None:
        """Open a window of ``seconds`` (window faults), or arm a call fault."""
        if kind in WINDOW_FAULTS:
            if seconds <= 0:
                raise ValueError(f"{kind} needs a window of seconds > 0, got {seconds}")
            self._until[kind] = max(self._until.get(kind, 0.0), self.clock() + seconds)
        elif kind in CALL_FAULTS:
            self._calls[kind] = CALL_FAULTS[kind]
        else:
            raise ValueError(f"unknown venue fault {kind!r}; known: {', '.join(VENUE_FAULTS)}")

    def clear(self) -> None:
        self._until.clear()
        self._calls.clear()

    def active(self, kind: str) -> bool:
        return self._until.get(kind, 0.0) > self.clock()

    def status(self) -> dict[str, Any]:
        return {
            "active": sorted(k for k in self._until if self.active(k)),
            "armed": {k: n for k, n in sorted(self._calls.items()) if n > 0},
            "struck": dict(sorted(self.struck.items())),
        }

    def _strike(self, kind: str) -> None:
        self.struck[kind] = self.struck.get(kind, 0) + 1

    def _take(self, kind: str) -> bool:
        left = self._calls.get(kind, 0)
        if left <= 0:
            return False
        self._calls[kind] = left - 1
        self._strike(kind)
        return True

    # ------------------------------------------------------------------ calls

    def call_error(self, call: str) -> VenueError | None:
        """The error a gateway call meets now (``call`` is the gateway method's name)."""
        if self._take("venue_5xx"):
            return VenueError(
                self.venue, VenueErrorKind.UNAVAILABLE, f"{call}: 503 service unavailable (injected)"
            )
        if self._take("venue_429"):
            return VenueError(
                self.venue,
                VenueErrorKind.RATE_LIMITED,
                f"{call}: 429 too many requests (injected)",
                retry_after_s=RETRY_AFTER_S,
            )
        return None

    def times_out(self, call: str) -> bool:
        """Does this lookup hang and time out (``venue_timeout``)?"""
        return call in LOOKUPS and self._take("venue_timeout")

    def timeout_error(self, call: str) -> VenueError:
        return VenueError(
            self.venue, VenueErrorKind.UNAVAILABLE, f"{call}: timed out after {TIMEOUT_S}s (injected)"
        )

    def loses_answer(self) -> bool:
        """Does the answer of this submit get lost after the venue took it (``lost_answer``)?"""
        return self._take("lost_answer")

    def lost_answer_error(self, client_id: str) -> VenueError:
        return VenueError(
            self.venue, VenueErrorKind.UNAVAILABLE, f"submit {client_id}: 504, answer lost (injected)"
        )

    # ------------------------------------------------------------------ windows

    def rejection(self, order: Order, instrument: Instrument | None) -> VenueError | None:
        """Why the venue refuses this order now, if a rejection window is open."""
        error: VenueError | None = None
        if self.active("reject_balance"):
            error = VenueError(
                self.venue,
                VenueErrorKind.INSUFFICIENT_FUNDS,
                "account has insufficient balance for requested action (injected)",
            )
            self._strike("reject_balance")
        elif self.active("reject_min_notional"):
            error = VenueError(
                self.venue, VenueErrorKind.REJECTED, "Filter failure: NOTIONAL (minimum raised; injected)"
            )
            self._strike("reject_min_notional")
        elif self.active("reject_tick_size") and order.price is not None and instrument is not None:
            tick = instrument.tick_size * TICK_FACTOR
            if order.price % tick != 0:
                error = VenueError(
                    self.venue,
                    VenueErrorKind.REJECTED,
                    f"Filter failure: PRICE_FILTER (tick size now {tick}; injected)",
                )
                self._strike("reject_tick_size")
        return error

    def thin(
        self, event: MarketEvent, working: Sequence[Order], instrument: Instrument | None
    ) -> MarketEvent:
        """The market as the venue matches it during a ``partial_fills`` window: one candle or
        book can fill at most half of the smallest working order's remainder (one lot at least)."""
        if not working or instrument is None or not self.active("partial_fills"):
            return event
        lot = instrument.lot_size
        cap = max(lot, floor_to(min(o.remaining for o in working) / 2, lot))
        if isinstance(event, Candle):
            self._strike("partial_fills")
            return event.model_copy(update={"volume": float(cap)})
        if isinstance(event, OrderBook):
            self._strike("partial_fills")
            return event.model_copy(
                update={
                    "bids": tuple(lv.model_copy(update={"size": min(lv.size, cap)}) for lv in event.bids[:1]),
                    "asks": tuple(lv.model_copy(update={"size": min(lv.size, cap)}) for lv in event.asks[:1]),
                }
            )
        return event


PARTICIPATION = 1.0
"""A venue with fault hooks caps a candle's fills by its volume (all of it: real volumes dwarf our
orders), so that a thinned candle can fill only part of an order."""
