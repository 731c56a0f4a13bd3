"""Event bars of a held position: where the next fill, stop, trailing stop or time exit can happen.

Between two events nothing a position's exit plan does changes anything but its marks: no order, no
fill, no close. So the fast path need not step the exact cores on every bar a position is held; it
asks :func:`next_event` for the first bar (of a window) where something *can* happen, brings the
exact core to that bar with a few of the window's real prices (:func:`feed_steps`), and steps the
exact cores on that bar alone.

The search is in floats, the cores in Decimal. Every float test is widened by :data:`MARGIN`
(relative) towards "an event": a bar whose decision is within float noise of flipping is an event
bar and the exact core decides it. A false event costs one exact step; a missed one would change
trades, which the margins rule out (prices and levels are ~1e-16 apart in floats, the margin 1e-9).

Each bar is three prices in the driver's intrabar order (low, high, close), all at the bar's close
time; the rules are :class:`~actors.core.position.PositionCore`'s ``on_price``:

* **targets** (resting limit sells): the matching engine fills a sell when the bar's high is above
  its price;
* **stop**: ``price <= stop``, the stop rising with the high since open once it reaches
  ``entry * (1 + trailing_activate_pct)`` to ``max(stop, entry * (1 + lock), high * (1 - distance))``;
* **time exit**: an in-band price (``|price - entry| <= entry * band``) whose in-band run started
  ``time_exit_s`` or more before it (the run starts at the first in-band price after an out-of-band
  one, or continues the core's ``band_since`` when the window opens in band).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

MARGIN = 1e-9
"""Relative widening of every float test towards an event (see the module docstring)."""
STEPS_PER_BAR = 3
"""The driver's intrabar path for a held position: low, high, close."""


@dataclass(frozen=True)
class Watch:
    """What one held position (no exit under way) reacts to, in floats, as its core stands now."""

    managed: bool
    entry: float
    stop: float
    """The core's current stop (already raised by any earlier trailing)."""
    activate: float
    """``entry * (1 + trailing_activate_pct)``: the high that turns trailing on."""
    lock: float
    distance: float
    band: float
    """``entry * time_exit_band_pct``: the time-exit band's half width."""
    time_exit_ms: int
    band_since_ms: int | None
    sell_price: float | None
    """The lowest resting sell of the position (a target), None without one."""


@dataclass(frozen=True)
class Window:
    """Bars ``[start, start + n)`` as intrabar steps: prices and the time each is seen."""

    prices: FloatArray
    times: IntArray

    @classmethod
    def of(cls, low: FloatArray, high: FloatArray, close: FloatArray, close_ms: IntArray) -> Window:
        prices = np.column_stack((low, high, close)).ravel()
        return cls(prices=prices, times=np.repeat(close_ms, STEPS_PER_BAR))


def next_event(watch: Watch, window: Window, high: FloatArray) -> int:
    """Index (into the window's bars) of the first bar where the position may act; the window's
    length when none can."""
    first = int(high.shape[0])
    if watch.sell_price is not None:
        hits = np.flatnonzero(high > watch.sell_price * (1.0 - MARGIN))
        if hits.shape[0]:
            first = int(hits[0])
    if not watch.managed or first == 0:
        return first
    steps = first * STEPS_PER_BAR
    prices, times = window.prices[:steps], window.times[:steps]
    if steps == 0:
        return first
    event = _stop_steps(watch, prices) | _time_steps(watch, prices, times)
    hits = np.flatnonzero(event)
    if hits.shape[0]:
        first = min(first, int(hits[0]) // STEPS_PER_BAR)
    return first


def _stop_steps(watch: Watch, prices: FloatArray) -> BoolArray:
    """Steps at or near the stop, with the trailing stop raised as the running high says."""
    running = np.maximum.accumulate(prices)
    active = running >= watch.activate * (1.0 - MARGIN)
    trail = np.maximum(watch.lock, running * (1.0 - watch.distance))
    stop = np.where(active, np.maximum(watch.stop, trail), watch.stop)
    return np.asarray(prices <= stop * (1.0 + MARGIN), dtype=bool)


def band_membership(watch: Watch, prices: FloatArray) -> tuple[BoolArray, BoolArray]:
    """In band per step, and steps too close to the band's edge for a float to decide."""
    gap = np.abs(prices - watch.entry)
    edge = watch.band * MARGIN + watch.entry * MARGIN
    return gap <= watch.band, np.abs(gap - watch.band) <= edge


def _time_steps(watch: Watch, prices: FloatArray, times: IntArray) -> BoolArray:
    """In-band steps whose run has lasted ``time_exit_s`` (and steps on the band's edge)."""
    inside, unsure = band_membership(watch, prices)
    idx = np.arange(prices.shape[0])
    starts = inside & np.concatenate(([True], ~inside[:-1]))
    run_start = np.maximum.accumulate(np.where(starts, idx, -1))
    since = times[np.maximum(run_start, 0)]  # np.clip costs five times as much on a window
    if watch.band_since_ms is not None and inside[0]:
        # the first run continues the core's own run (it started before the window)
        since = np.where(run_start == 0, watch.band_since_ms, since)
    due = inside & (times - since >= watch.time_exit_ms)
    return np.asarray(due | unsure, dtype=bool)


def feed_steps(watch: Watch, prices: FloatArray) -> list[int]:
    """A few steps of a quiet window that leave the core exactly as the whole window would.

    The core's state after quiet prices is its high (the highest price: stop and trailing), its
    band clock (when the last in-band run started, or none after an out-of-band last price) and its
    mark (the last price). Fed in order: the highest step, the last step, and before each of them
    that is in band the last out-of-band step and the step after it. A fed in-band step then never
    sees a band clock older than the real one (no time exit the whole window would not have fired),
    its stop is never above the real one, and the last state is the real one.
    """
    n = prices.shape[0]
    if n == 0:
        return []
    inside, _unsure = band_membership(watch, prices)
    last_out = np.maximum.accumulate(np.where(~inside, np.arange(n), -1))
    fed = {int(np.argmax(prices)), n - 1}
    for k in list(fed):
        o = int(last_out[k])
        if inside[k] and o >= 0:
            fed.update((o, o + 1))
    return sorted(fed)
