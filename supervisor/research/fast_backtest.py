"""The backtester's fast path: a vectorised signal pass, then the driver stepped only where it matters.

Why it exists: the event-by-event :class:`~supervisor.research.driver.Driver` builds a pydantic ``Candle`` and
runs every strategy core on every bar. Most bars of a backtest change nothing (no position, no
order, no signal), yet they cost as much as the busy ones. This module splits the work in two:

1. **Signal pass** (:func:`signal_pass`). A strategy's signals are a pure function of the bars it
   has seen, never of positions or fills, so they can be computed for the whole series up front.
   ``mean_reversion`` (without the regime filter) and ``momentum_breakout`` are vectorised with
   numpy: rolling mean and population std over sliding windows (two-pass per window, accurate to
   ~1e-14 relative, closer to the streaming cores than TA-Lib's running sums), RSI by
   :func:`rsi_series`, :class:`~actors.core.indicators.RSI`'s own arithmetic step for step
   (bit-identical). Every other candle strategy (``ml_momentum``, a regime-filtered
   ``mean_reversion``) runs its real core over the bars: exact by construction, just slower.

   *Exactness guard*: a vectorised float may differ from the streaming core's in its last bits. A
   bar whose decision is within :data:`DECISION_MARGIN` (relative) of flipping (``close`` within
   1e-9 of a band, a z-score within 1e-9, or its float-noise bound, of ``z_entry``) is
   *ambiguous*; one ambiguous bar sends that strategy to the exact core pass. The remaining
   difference is the signal *strength* (a float sizing multiplier): it can differ in its last bits,
   which changes a position's size only if the size lands within ~1e-15 of a lot boundary. The
   parity tests (tests/test_backtest.py) prove identical trades on the bundled data.

2. **Stepping** (:class:`FastDriver`). The driver itself, with its strategy cores replaced by a
   replay of the precomputed signals. A bar is handed to ``Driver.process`` (engine, positions,
   timers, marks, portfolio: the very code the paper path runs) whenever it can matter: it carries
   a signal, a position is open or entering, an order rests, or it is a duplicate bar. The other
   bars (flat book, no signal) are *quiet*: the driver would only append an equity point equal to
   the cash, so the fast path appends exactly that and moves on to the next signal bar.

3. **Event bars** (:mod:`supervisor.research.event_bars`). While positions are simply held (no
   entry or exit under way, only resting targets), a bar where no target can fill, no stop or
   trailing stop be hit and no time exit fall due changes nothing but the marks. After each
   processed bar the driver searches the following bars (numpy, in widening windows up to the next
   signal or duplicate bar) for the first that may be an event, brings each position core there
   with a few of the skipped prices that leave it exactly as all of them would, appends the skipped
   bars' equity points (cash plus the positions at each close, in Decimal as ``Driver._mark``) and
   processes that bar. ``event_bars=False`` steps every held bar (the reference the tests compare).

Result: the same round trips, the same equity curve point for point, the same counters (signal
counts, rejections, skipped gates), at the cost of the event bars only: signal bars, fills, exits
(see ops/bench/backtest.py for the measured split).
"""

from __future__ import annotations

import bisect
import gc
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from math import isnan
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from actors.core.indicators import NAN
from actors.core.position import PositionCore
from actors.core.strategies import StrategyCore, build_strategy
from actors.data.candles import CandleTable
from actors.domain.model import ZERO, Candle, ExitStatus, Instrument, RoundTrip, Side, Signal, to_decimal
from actors.domain.topology import watches
from config.models import MeanReversionConfig, MomentumBreakoutConfig, Settings, StrategyConfig
from supervisor.research.driver import Driver, EquityPoint
from supervisor.research.event_bars import STEPS_PER_BAR, Watch, Window, feed_steps, next_event

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

DECISION_MARGIN = 1e-9
"""Relative distance from a decision threshold below which a vectorised decision is not trusted."""
_WINDOW_CHUNK = 65_536
"""Rows of sliding windows reduced at a time (bounds the temporary arrays to a few MB)."""

VECTORISED_KINDS = ("mean_reversion", "momentum_breakout")


# --------------------------------------------------------------------------- bars


@dataclass(frozen=True)
class Bars:
    """The bars a candle backtest feeds the driver, as plain arrays.

    Exactly what :func:`actors.data.replay.candle_events` yields: the table's rows minus those cleaning
    flagged as suspicious moves, with the table's modal interval. ``accepted`` marks the bars a
    strategy core takes (strictly newer than every earlier bar); the others are duplicates the cores
    ignore but the matching engine and positions still see.
    """

    market: str
    interval_ms: int
    ts: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    accepted: BoolArray

    @classmethod
    def from_table(cls, table: CandleTable, market: str) -> Bars:
        keep = ~table.flags
        ts = np.ascontiguousarray(table.timestamp[keep], dtype=np.int64)
        accepted = np.ones(ts.shape[0], dtype=bool)
        if ts.shape[0] > 1:
            accepted[1:] = ts[1:] > np.maximum.accumulate(ts)[:-1]
        return cls(
            market=market,
            interval_ms=table.interval_ms,
            ts=ts,
            open=np.ascontiguousarray(table.open[keep]),
            high=np.ascontiguousarray(table.high[keep]),
            low=np.ascontiguousarray(table.low[keep]),
            close=np.ascontiguousarray(table.close[keep]),
            volume=np.ascontiguousarray(table.volume[keep]),
            accepted=accepted,
        )

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    @property
    def close_ms(self) -> IntArray:
        """When each bar becomes known (its close time): the driver's clock for it."""
        return self.ts + self.interval_ms

    def index_at(self, ts_ms: int) -> int:
        """Index of the first bar opening at or after ``ts_ms``."""
        return int(np.searchsorted(self.ts, ts_ms, side="left"))

    def candles(self, start: int = 0, stop: int | None = None) -> Iterator[Candle]:
        """Validated ``Candle`` events of bars ``[start, stop)``, equal to ``candle_events``' output."""
        stop = len(self) if stop is None else stop
        cols = (self.ts, self.open, self.high, self.low, self.close, self.volume)
        ts, o, h, lo, c, v = (col[start:stop].tolist() for col in cols)
        market, interval = self.market, self.interval_ms
        for i in range(len(ts)):
            yield Candle(
                market=market,
                ts_ms=ts[i],
                interval_ms=interval,
                open=o[i],
                high=h[i],
                low=lo[i],
                close=c[i],
                volume=v[i],
            )


# --------------------------------------------------------------------------- signal pass


@dataclass
class SignalPass:
    """Every signal of every strategy over a bar series, by bar index, in the driver's strategy order."""

    by_bar: dict[int, list[Signal]]
    methods: dict[str, str]
    """Per strategy: ``vectorised``, or ``core`` with the reason the exact core pass was used."""
    bars: int
    elapsed_s: float

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.by_bar.values())

    @property
    def bar_indices(self) -> list[int]:
        return sorted(self.by_bar)


@dataclass
class _Raw:
    """Vectorised signals of one strategy: bar indices (into ``Bars``), sides, strengths, reasons."""

    index: IntArray
    buy: BoolArray
    strength: FloatArray
    reasons: list[str]


def _rolling_mean_std(values: FloatArray, period: int) -> tuple[FloatArray, FloatArray, BoolArray]:
    """Mean, population std and exact flatness of each full window ending at each index (nan before)."""
    n = values.shape[0]
    mean = np.full(n, np.nan)
    std = np.full(n, np.nan)
    flat = np.zeros(n, dtype=bool)
    if n < period:
        return mean, std, flat
    windows = sliding_window_view(values, period)
    for lo in range(0, windows.shape[0], _WINDOW_CHUNK):
        w = windows[lo : lo + _WINDOW_CHUNK]
        out = slice(lo + period - 1, lo + period - 1 + w.shape[0])
        mean[out] = w.mean(axis=1)
        std[out] = w.std(axis=1)
        flat[out] = w.max(axis=1) == w.min(axis=1)
    return mean, std, flat


def rsi_series(values: Sequence[float], period: int) -> FloatArray:
    """``RSI(period).update`` over a series, step for step: the same float operations in the same
    order (so bit-identical), without a method call per value."""
    out = [NAN] * len(values)
    prev = NAN
    seen = 0
    gain = loss = 0.0
    p, q = period, period - 1
    for i, x in enumerate(values):
        last, prev = prev, x
        if isnan(last):  # the first value (or after a nan input), as RSI.update
            continue
        diff = x - last
        if seen < p:
            if diff < 0.0:
                loss -= diff
            else:
                gain += diff
            seen += 1
            if seen < p:
                continue
            gain = gain / p
            loss = loss / p
        else:
            loss = loss * q
            gain = gain * q
            if diff < 0.0:
                loss -= diff
            else:
                gain += diff
            loss = loss / p
            gain = gain / p
        total = gain + loss
        out[i] = 100.0 * (gain / total) if (total >= 1e-14 or total <= -1e-14) else 0.0
    return np.asarray(out, dtype=np.float64)


def _near(a: FloatArray, b: FloatArray | float, scale: FloatArray | float) -> BoolArray:
    """Where ``a`` and ``b`` are too close for float noise to be ruled out as the decider."""
    with np.errstate(invalid="ignore"):
        return np.asarray(np.abs(a - b) <= DECISION_MARGIN * scale, dtype=bool)


def _mean_reversion(cfg: MeanReversionConfig, bars: Bars) -> _Raw | str:
    """Bollinger(bb_period, bb_std) + RSI(rsi_period) as the core decides them; a reason string when
    the vectorised decision cannot be trusted (ambiguous bars, regime filter)."""
    if cfg.regime_filter:
        return "regime filter (its detector runs in the core)"
    idx = np.flatnonzero(bars.accepted)
    close = bars.close[idx]
    mean, std, flat = _rolling_mean_std(close, cfg.bb_period)
    rsi = rsi_series(close.tolist(), cfg.rsi_period)
    k = cfg.bb_std
    lower = mean - k * std
    upper = mean + k * std
    live = ~flat & (std > 0.0)  # the core: no band to be beyond in a flat window
    with np.errstate(invalid="ignore"):
        below, oversold = close < lower, rsi < cfg.rsi_buy
        above, overbought = close > upper, rsi > cfg.rsi_sell
    # RSI is bit-identical to the core's, so only the band comparisons can be float noise.
    scale = np.abs(close) + k * np.nan_to_num(std)
    near_lower, near_upper = _near(close, lower, scale), _near(close, upper, scale)
    ambiguous = live & ((near_lower & oversold) | (near_upper & overbought))
    if ambiguous.any():
        return f"{int(ambiguous.sum())} ambiguous bar(s)"
    buy = live & below & oversold
    sell = live & ~buy & above & overbought
    hits = np.flatnonzero(buy | sell)
    with np.errstate(invalid="ignore", divide="ignore"):
        deviation = np.abs(close[hits] - mean[hits]) / std[hits]
    strength = np.minimum(1.0, deviation / (2.0 * k))
    reasons = [
        f"close<lower {lower[j]:.6g}, rsi={rsi[j]:.2f}<{cfg.rsi_buy:g}"
        if buy[j]
        else f"close>upper {upper[j]:.6g}, rsi={rsi[j]:.2f}>{cfg.rsi_sell:g}"
        for j in hits.tolist()
    ]
    return _Raw(index=idx[hits], buy=buy[hits], strength=strength, reasons=reasons)


def _momentum_breakout(cfg: MomentumBreakoutConfig, bars: Bars) -> _Raw | str:
    """The core's resampling and z-score, vectorised: bars banked in the core's order, z over the
    last ``lookback`` banked closes, a BUY on each completed bar with z > z_entry."""
    idx = np.flatnonzero(bars.accepted)
    ts = bars.ts[idx]
    close = bars.close[idx]
    bar_ms, interval = cfg.bar_ms, bars.interval_ms
    close_ms = ts + interval
    bar_end = ts - ts % bar_ms + bar_ms
    straddling = np.flatnonzero(close_ms > bar_end)
    if straddling.shape[0]:
        j = int(straddling[0])
        raise ValueError(
            f"{cfg.name}: candle [{int(ts[j])}, {int(close_ms[j])}) straddles the {bar_ms} ms bar ending "
            f"{int(bar_end[j])}; candle intervals must divide bar_ms and be aligned"
        )
    complete = close_ms == bar_end
    bar_start = bar_end - bar_ms
    # A bar left open by candle k-1 is banked (silently) when candle k belongs to another bar.
    stale = np.zeros(ts.shape[0], dtype=bool)
    if ts.shape[0] > 1:
        stale[1:] = ~complete[:-1] & (bar_start[:-1] != bar_start[1:])
    # Banked values in the core's order: for candle k, first the stale bar (close of k-1), then k.
    slots = np.zeros(2 * ts.shape[0], dtype=np.float64)
    used = np.zeros(2 * ts.shape[0], dtype=bool)
    slots[0::2][1:] = close[:-1]
    used[0::2] = stale
    slots[1::2] = close
    used[1::2] = complete
    order = np.flatnonzero(used)
    banked = slots[order]
    emits = order % 2 == 1  # completed bars may signal; banked stale bars never do
    candle_of = order // 2
    mean, std, flat = _rolling_mean_std(banked, cfg.lookback)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(flat, 0.0, (banked - mean) / std)
    u = 2.0**-53
    with np.errstate(invalid="ignore", divide="ignore"):
        noise = 1024.0 * u * (np.abs(banked) + np.abs(mean)) / std * (1.0 + np.abs(z))
    ambiguous = emits & ~flat & ~np.isnan(z) & (np.abs(z - cfg.z_entry) <= np.maximum(DECISION_MARGIN, noise))
    if ambiguous.any():
        return f"{int(ambiguous.sum())} ambiguous bar(s)"
    with np.errstate(invalid="ignore"):
        fire = emits & (z > cfg.z_entry)
    hits = np.flatnonzero(fire)
    zs = z[hits]
    reasons = [
        f"z={v:.3f}>{cfg.z_entry:g} over {cfg.lookback} bars of {bar_ms // 1000}s" for v in zs.tolist()
    ]
    return _Raw(
        index=idx[candle_of[hits]],
        buy=np.ones(hits.shape[0], dtype=bool),
        strength=np.minimum(1.0, zs / cfg.z_full_strength),
        reasons=reasons,
    )


def _vectorised(cfg: StrategyConfig, bars: Bars) -> _Raw | str:
    if isinstance(cfg, MeanReversionConfig):
        return _mean_reversion(cfg, bars)
    if isinstance(cfg, MomentumBreakoutConfig):
        return _momentum_breakout(cfg, bars)
    return f"no vectorised form of {cfg.kind}"


def _core_signals(cfg: StrategyConfig, bars: Bars) -> dict[int, list[Signal]]:
    """The strategy's own core over every bar: exact by construction."""
    core = build_strategy(cfg)
    out: dict[int, list[Signal]] = {}
    for i, candle in enumerate(bars.candles()):
        signals = core.on_candle(candle)
        if signals:
            out[i] = signals
    return out


def _raw_signals(cfg: StrategyConfig, bars: Bars, raw: _Raw) -> dict[int, list[Signal]]:
    close_ms = bars.close_ms
    out: dict[int, list[Signal]] = {}
    rows = zip(raw.index.tolist(), raw.buy.tolist(), raw.strength.tolist(), raw.reasons, strict=True)
    for i, buy, strength, reason in rows:
        signal = Signal(
            strategy=cfg.name,
            market=cfg.market,
            side=Side.BUY if buy else Side.SELL,
            strength=strength,
            ts_ms=int(close_ms[i]),
            price=float(bars.close[i]),
            reason=reason,
        )
        out.setdefault(i, []).append(signal)
    return out


def signal_pass(strategies: Sequence[StrategyConfig], bars: Bars, *, vectorise: bool = True) -> SignalPass:
    """Signals of every strategy that watches ``bars.market``, by bar index, in strategy order."""
    started = time.perf_counter()
    by_bar: dict[int, list[Signal]] = {}
    methods: dict[str, str] = {}
    for cfg in strategies:
        if not watches(cfg, bars.market):
            continue
        outcome: _Raw | str = _vectorised(cfg, bars) if vectorise else "vectorisation off"
        if isinstance(outcome, _Raw):
            methods[cfg.name] = "vectorised"
            signals = _raw_signals(cfg, bars, outcome)
        else:
            methods[cfg.name] = f"core ({outcome})"
            signals = _core_signals(cfg, bars)
        for i, found in signals.items():
            by_bar.setdefault(i, []).extend(found)
    return SignalPass(by_bar=by_bar, methods=methods, bars=len(bars), elapsed_s=time.perf_counter() - started)


# --------------------------------------------------------------------------- stepping


class _Replayed(StrategyCore[Any]):
    """Stands in for a strategy core: hands back the precomputed signals of each bar, once."""

    def __init__(self, config: Any, by_ts: dict[int, list[Signal]]) -> None:
        super().__init__(config)
        self._by_ts = by_ts

    def on_candle(self, candle: Candle) -> list[Signal]:
        return self._by_ts.pop(candle.ts_ms, [])

    def drop_before(self, ts_ms: int) -> None:
        """Forget the signals of bars opening before ``ts_ms`` (a warm-up the book never trades)."""
        for ts in [t for t in self._by_ts if t < ts_ms]:
            del self._by_ts[ts]


@dataclass
class StepStats:
    """How much of the series the driver actually had to process: ``quiet`` bars were skipped
    flat, ``held`` bars skipped with positions open but no event possible (:mod:`event_bars`)."""

    processed: int = 0
    quiet: int = 0
    held: int = 0


class FastDriver(Driver):
    """The driver over one bar series, processing only bars that can change anything.

    Everything that happens on a processed bar is ``Driver.process`` itself; only the strategy cores
    are replaced by the :class:`SignalPass`. Quiet bars (no position, no resting order, no signal,
    not a duplicate) get the equity point the driver would have appended: the cash, exposure 0.
    """

    def __init__(
        self,
        settings: Settings,
        instruments: Iterable[Instrument],
        bars: Bars,
        signals: SignalPass,
        *,
        on_trade: Callable[[RoundTrip], None] | None = None,
        event_bars: bool = True,
    ) -> None:
        super().__init__(settings, instruments, equity_market=bars.market, on_trade=on_trade)
        self.bars = bars
        self.event_bars = event_bars
        """Skip held bars where no event can happen (False: step every held bar, the reference)."""
        self.signal_pass = signals
        self.steps = StepStats()
        by_strategy: dict[str, dict[int, list[Signal]]] = {name: {} for name in self.strategies}
        ts = bars.ts
        for i, found in signals.by_bar.items():
            for signal in found:
                by_strategy.setdefault(signal.strategy, {}).setdefault(int(ts[i]), []).append(signal)
        self.strategies = {
            name: _Replayed(core.config, by_strategy.get(name, {})) for name, core in self.strategies.items()
        }
        self._columns = tuple(
            col.tolist() for col in (bars.ts, bars.open, bars.high, bars.low, bars.close, bars.volume)
        )
        self._close_ms: list[int] = bars.close_ms.tolist()
        whole = Window.of(bars.low, bars.high, bars.close, bars.close_ms)
        self._step_prices, self._step_times = whole.prices, whole.times
        """Every bar's intrabar steps, built once: a held window is a slice of them."""

    def _flat(self) -> bool:
        return not self.positions and not self.engine.has_open_orders()

    def _candle(self, i: int) -> Candle:
        ts, o, h, lo, c, v = self._columns
        return Candle(
            market=self.bars.market,
            ts_ms=ts[i],
            interval_ms=self.bars.interval_ms,
            open=o[i],
            high=h[i],
            low=lo[i],
            close=c[i],
            volume=v[i],
        )

    def run_bars(
        self, start: int = 0, stop: int | None = None, progress: Callable[[int], None] | None = None
    ) -> None:
        """Process bars ``[start, stop)``; signals of earlier bars are dropped (they were warm-up).

        A warm-up is therefore exact: the signal pass saw every bar before ``start``, as a strategy
        fed those bars would have, and the book starts flat at ``start``. The cyclic garbage
        collector is paused meanwhile: the run allocates an equity point per bar and hardly any
        cycle, and its full collections traversing the growing curve cost about a twentieth of it.
        """
        paused = gc.isenabled()
        gc.disable()
        try:
            self._run_bars(start, stop, progress)
        finally:
            if paused:
                gc.enable()

    def _run_bars(self, start: int, stop: int | None, progress: Callable[[int], None] | None) -> None:
        bars = self.bars
        n = len(bars) if stop is None else min(stop, len(bars))
        if start < len(bars):
            for core in self.strategies.values():
                if isinstance(core, _Replayed):
                    core.drop_before(int(bars.ts[start]))
        signal_bars = [i for i in self.signal_pass.bar_indices if start <= i < n]
        duplicates = (np.flatnonzero(~bars.accepted[start:n]) + start).tolist()
        stops = sorted({*signal_bars, *duplicates})
        close_ms = bars.close_ms.tolist()
        zero = ZERO
        i = start
        last_report = start
        while i < n:
            if self._flat():
                k = bisect.bisect_left(stops, i)
                j = stops[k] if k < len(stops) else n
                if j > i:
                    cash = self.cash
                    self.curve.extend([EquityPoint(t, cash, zero) for t in close_ms[i:j]])
                    self.counters.events += j - i
                    self.now_ms = max(self.now_ms, close_ms[j - 1])
                    self.steps.quiet += j - i
                    i = j
            if i < n:
                self.process(self._candle(i))
                self.steps.processed += 1
                i += 1
                if i < n and self.positions and self.event_bars:
                    k = bisect.bisect_left(stops, i)
                    i = self._skip_held(i, stops[k] if k < len(stops) else n)
            if progress is not None and i - last_report >= 10_000:
                progress(i - start)
                last_report = i
        if progress is not None:
            progress(n - start)

    # ------------------------------------------------------------------ held bars between events

    def _watches(self, i: int) -> list[tuple[PositionCore, Watch]] | None:
        """Each open position's :class:`Watch` when every one is simply held (no entry or exit under
        way) and every working order is one of their resting sells that had arrived by bar ``i - 1``
        (a bar this driver processed); None when bar ``i`` must be processed."""
        held = (ExitStatus.OPEN, ExitStatus.HALF_CLOSED)
        if any(c.position.status not in held for c in self.positions.values()):
            return None
        since = int(self.bars.ts[i - 1])
        sells: dict[str, list[float]] = {}
        for order in self.engine.open_orders(self.bars.market):
            if order.side is not Side.SELL or order.price is None or order.created_ms > since:
                return None
            if order.position_id not in self.positions:
                return None
            sells.setdefault(order.position_id, []).append(float(order.price))
        return [(core, watch_of(core, sells.get(pid, ()))) for pid, core in self.positions.items()]

    def _skip_held(self, i: int, limit: int) -> int:
        """Bring the book through the held bars ``[i, limit)`` up to the first that may be an event;
        returns the next bar to process. Windows grow from 64 bars, each applied before the next is
        searched (a window moves the stop and the band clock)."""
        bars = self.bars
        size = 64
        while i < limit:
            watches = self._watches(i)
            if watches is None:
                return i
            end = min(limit, i + size)
            steps = slice(i * STEPS_PER_BAR, end * STEPS_PER_BAR)
            window = Window(prices=self._step_prices[steps], times=self._step_times[steps])
            high = bars.high[i:end]
            quiet = min(next_event(w, window, high) for _core, w in watches)
            if quiet:
                self._apply_held(i, i + quiet, window, watches)
            if i + quiet < end:
                return i + quiet
            i = end
            size *= 4
        return i

    def _apply_held(
        self, a: int, b: int, window: Window, watches: Sequence[tuple[PositionCore, Watch]]
    ) -> None:
        """What the driver does on quiet held bars ``[a, b)``: each core sees enough of their prices to
        stand exactly where all of them would leave it (:func:`feed_steps`), and every bar gets its
        equity point (cash plus the positions marked at its close)."""
        steps = (b - a) * STEPS_PER_BAR
        prices, times = window.prices[:steps], window.times[:steps]
        for core, watch in watches:
            fed = feed_steps(watch, prices) if watch.managed else [steps - 1]
            for k in fed:
                if core.on_price(to_decimal(float(prices[k])), int(times[k])):
                    raise AssertionError(f"{core.position.position_id} acted on a bar found quiet")
        cash, zero = self.cash, ZERO
        qtys = [c.position.open_qty for c, _w in watches]
        closes = [Decimal(repr(c)) for c in self.bars.close[a:b].tolist()]  # to_decimal, inlined
        if len(qtys) == 1:
            held = qtys[0]
            marks = [price * held for price in closes]
        else:
            marks = [sum((price * q for q in qtys), zero) for price in closes]
        equities = [cash + m for m in marks]
        exposures = [m / e if e > 0 else zero for e, m in zip(equities, marks, strict=True)]
        self.curve.extend(map(EquityPoint, self._close_ms[a:b], equities, exposures))
        self._peak_equity = max(self._peak_equity, *equities)
        self.portfolio.on_equity(min(equities))  # a daily-loss limit latches on the lowest mark
        self.portfolio.on_equity(equities[-1])
        self.counters.events += b - a
        self.now_ms = max(self.now_ms, self._close_ms[b - 1])
        self.steps.held += b - a


def watch_of(core: PositionCore, sells: Iterable[float]) -> Watch:
    """A held position's exit rules as floats (entry, stop, trailing, band clock, lowest target)."""
    pos, cfg = core.position, core.config
    entry = float(pos.entry_price)
    band_since = core.progress_marker()[2]
    prices = list(sells)
    return Watch(
        managed=cfg.managed,
        entry=entry,
        stop=float(pos.stop_price),
        activate=entry * (1.0 + cfg.trailing_activate_pct),
        lock=entry * (1.0 + cfg.trailing_lock_pct),
        distance=cfg.trailing_distance_pct,
        band=entry * cfg.time_exit_band_pct,
        time_exit_ms=cfg.time_exit_s * 1000,
        band_since_ms=band_since if isinstance(band_since, int) else None,
        sell_price=min(prices) if prices else None,
    )


def curve_arrays(curve: Sequence[EquityPoint]) -> tuple[IntArray, FloatArray, FloatArray]:
    """A driver's equity curve as arrays (ts, equity, exposure)."""
    ts = np.array([p.ts_ms for p in curve], dtype=np.int64)
    eq = np.array(_floats([p.equity for p in curve]), dtype=np.float64)
    ex = np.array(_floats([p.exposure for p in curve]), dtype=np.float64)
    return ts, eq, ex


def _floats(values: list[Decimal]) -> list[float]:
    """``float`` of each value, converting a run of the same object once: a quiet span's points
    share one Decimal (its cash, exposure zero), and ``float(Decimal)`` is the costly part."""
    out: list[float] = []
    append = out.append
    last: Decimal | None = None
    found = 0.0
    for value in values:
        if value is not last:
            last, found = value, float(value)
        append(found)
    return out


def sample_curve(
    curve: Sequence[EquityPoint], grid_ms: IntArray, initial: float
) -> tuple[FloatArray, FloatArray]:
    """Equity and exposure at each grid time: the last curve point at or before it (initial before any)."""
    ts, eq, ex = curve_arrays(curve)
    if ts.shape[0] == 0:
        return np.full(grid_ms.shape[0], initial), np.zeros(grid_ms.shape[0])
    pos = np.searchsorted(ts, grid_ms, side="right") - 1
    have = pos >= 0
    safe = np.where(have, pos, 0)
    equity = np.where(have, eq[safe], initial)
    exposure = np.where(have, ex[safe], 0.0)
    return np.asarray(equity, dtype=np.float64), np.asarray(exposure, dtype=np.float64)
