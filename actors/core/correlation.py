"""Rolling correlation of the markets' returns, for the portfolio's correlated-positions cap.

The algo-trading guide's rule: keep a rolling correlation matrix of the markets' returns and refuse
a new position when it would make more than ``max_per_correlation_group`` open positions that are
correlated above ``correlation_threshold``. Returns are per bar (close to close), keyed by the
bar's open time, so two markets are compared only on the bars both have seen: feeds replay at
their own pace and may be apart in data time. Too few shared bars is "not known", and the caller
falls back to the fixed correlation groups. Observations, not state: after a restart the window
refills from the feeds (the fixed groups cover the meantime), so nothing here is checkpointed.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from actors.domain.model import MINUTE_MS, Candle


def is_bar_close(candle: Candle) -> bool:
    """A bar the correlation counts: a minute or longer, not a 1 s reference tick (Chainlink)."""
    return candle.interval_ms >= MINUTE_MS


MIN_SHARED_BARS = 30
"""Fewer shared returns than this give no correlation (noise would pass for a measurement)."""


class RollingCorrelation:
    """The last ``window`` bar returns of each market, and their pairwise Pearson correlation."""

    def __init__(self, window: int) -> None:
        if window < MIN_SHARED_BARS:
            raise ValueError(f"window must be >= {MIN_SHARED_BARS} bars, got {window}")
        self.window = window
        self._returns: dict[str, deque[tuple[int, float]]] = {}
        self._last: dict[str, tuple[int, float]] = {}
        self._cache: dict[tuple[str, str], tuple[tuple[int, int, int, int], float | None]] = {}

    def on_close(self, market: str, ts_ms: int, close: float) -> None:
        """A closed bar's price; a bar older than the last one seen (a replay) is ignored."""
        last = self._last.get(market)
        if last is not None and ts_ms <= last[0]:
            return
        self._last[market] = (ts_ms, close)
        if last is not None and last[1] > 0 and close > 0:
            series = self._returns.setdefault(market, deque(maxlen=self.window))
            series.append((ts_ms, math.log(close / last[1])))

    def markets(self) -> tuple[str, ...]:
        return tuple(sorted(self._returns))

    def correlation(self, a: str, b: str) -> float | None:
        """Pearson correlation of the two markets' returns on their shared bars; None if unknown.

        Cached until either market sees a new bar: entry signals ask many times per bar.
        """
        if a == b:
            return 1.0
        ra, rb = self._returns.get(a), self._returns.get(b)
        if not ra or not rb:
            return None
        key = (a, b) if a < b else (b, a)
        stamp = (ra[-1][0], rb[-1][0], len(ra), len(rb))
        cached = self._cache.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        ts_a, x = np.array(ra).T
        ts_b, y = np.array(rb).T
        _shared, ia, ib = np.intersect1d(ts_a, ts_b, assume_unique=True, return_indices=True)
        value: float | None = None
        if len(ia) >= MIN_SHARED_BARS:
            xs, ys = x[ia] - x[ia].mean(), y[ib] - y[ib].mean()
            sxx, syy = float(xs @ xs), float(ys @ ys)
            if sxx > 0 and syy > 0:  # a flat series correlates with nothing
                value = float(xs @ ys) / math.sqrt(sxx * syy)
        self._cache[key] = (stamp, value)
        return value

    def matrix(self) -> dict[str, dict[str, float | None]]:
        """Every pair's correlation, for reports and ``raytrader status``."""
        names = self.markets()
        return {a: {b: self.correlation(a, b) for b in names} for a in names}
