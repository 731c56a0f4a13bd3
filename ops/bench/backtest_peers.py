"""The backtest benchmark's peers, on raytrader's workload: mean_reversion with managed exits.

Both peers trade the same rule on the same bars: buy at the next open after ``close < lower
Bollinger(20, 2) and RSI(14) < 30`` while flat; then the default managed exits (half at +2%, the rest
at +5%, stop -3%, a time exit after 4 h within 0.5% of the entry, trailing from +10% locking +5% and
trailing 5% behind the high) plus the strategy's own exit (``close > upper band and RSI > 70``).
Indicators are computed once with numpy (both peers get the same arrays, outside their timing).

* :func:`plain_loop`: one Python ``for`` over the bars' arrays (lists), floats, the exit rules
  inline: the floor any per-bar Python backtester pays.
* :func:`backtesting_py`: `backtesting.py <https://kernc.github.io/backtesting.py/>`_ (the
  ``bench`` extra), two orders per entry (one per target, each with the stop as ``sl``), the
  trailing stop, the time exit and the exit signal in ``Strategy.next``, as its docs do trailing.

Neither peer reproduces raytrader's trades to the cent (lots, ticks, fees as Binance charges them,
slippage, risk sizing); they do the same work per bar, which is what bars per second compares.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from actors.data.candles import CandleTable
from config.models import ExitConfig
from supervisor.research.fast_backtest import Bars, rsi_series

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Workload:
    """The bars and the precomputed entry and exit signals both peers trade."""

    bars: Bars
    buy: BoolArray
    sell: BoolArray

    @classmethod
    def of(cls, table: CandleTable, market: str) -> Workload:
        bars = Bars.from_table(table, market)
        close = bars.close
        n = close.shape[0]
        mean = np.full(n, np.nan)
        std = np.full(n, np.nan)
        windows = np.lib.stride_tricks.sliding_window_view(close, 20)
        mean[19:] = windows.mean(axis=1)
        std[19:] = windows.std(axis=1)
        rsi = rsi_series(close.tolist(), 14)
        with np.errstate(invalid="ignore"):
            buy = (close < mean - 2.0 * std) & (rsi < 30.0)
            sell = (close > mean + 2.0 * std) & (rsi > 70.0)
        return cls(bars, buy, sell)


def plain_loop(work: Workload, cfg: ExitConfig, capital: float = 10_000.0) -> tuple[int, float]:
    """The rule and its exits in one Python loop over lists; returns (trades, final cash)."""
    b = work.bars
    opens, highs, lows, closes = b.open.tolist(), b.high.tolist(), b.low.tolist(), b.close.tolist()
    times = b.close_ms.tolist()
    buy, sell = work.buy.tolist(), work.sell.tolist()
    t1_pct, t2_pct, stop_pct = cfg.target_one_pct, cfg.target_two_pct, cfg.stop_pct
    act_pct, lock_pct, dist_pct = cfg.trailing_activate_pct, cfg.trailing_lock_pct, cfg.trailing_distance_pct
    band_pct, time_ms, fraction = cfg.time_exit_band_pct, cfg.time_exit_s * 1000, cfg.target_one_fraction
    cash, trades = capital, 0
    qty1 = qty2 = 0.0
    entry = stop = t1 = t2 = high = 0.0
    band_since = -1
    want_entry = want_exit = False
    for i in range(len(opens)):
        now = times[i]
        if want_entry:
            entry = opens[i]
            size = cash * 0.25 / entry
            qty1, qty2 = size * fraction, size * (1.0 - fraction)
            cash -= size * entry
            stop, t1, t2 = entry * (1 - stop_pct), entry * (1 + t1_pct), entry * (1 + t2_pct)
            high, band_since, want_entry = entry, now, False
        if qty1 + qty2 <= 0.0:
            if buy[i]:
                want_entry = True
            continue
        if want_exit:
            cash += (qty1 + qty2) * opens[i]
            qty1 = qty2 = 0.0
            trades, want_exit = trades + 1, False
            continue
        if qty1 and highs[i] > t1:
            cash, qty1 = cash + qty1 * t1, 0.0
        if qty2 and highs[i] > t2:
            cash, qty2 = cash + qty2 * t2, 0.0
        if qty1 + qty2 <= 0.0:
            trades += 1
            continue
        for price in (lows[i], highs[i], closes[i]):
            high = max(high, price)
            if high >= entry * (1 + act_pct):
                stop = max(stop, entry * (1 + lock_pct), high * (1 - dist_pct))
            if price <= stop:
                want_exit = True
                break
            if abs(price - entry) <= entry * band_pct:
                band_since = now if band_since < 0 else band_since
                if now - band_since >= time_ms:
                    want_exit = True
                    break
            else:
                band_since = -1
        if sell[i]:
            want_exit = True
    return trades, cash


def backtesting_py(work: Workload, cfg: ExitConfig, capital: float = 10_000_000.0) -> tuple[int, Any]:
    """The rule and its exits in backtesting.py; returns (trades, its stats)."""
    import pandas as pd  # type: ignore[import-untyped]
    from backtesting import Backtest, Strategy  # type: ignore[import-untyped]

    b = work.bars
    frame = pd.DataFrame(
        {"Open": b.open, "High": b.high, "Low": b.low, "Close": b.close, "Volume": b.volume},
        index=pd.to_datetime(b.ts, unit="ms"),
    )
    buy, sell, close_ms = work.buy, work.sell, b.close_ms

    class MeanReversion(Strategy):  # type: ignore[misc]  # backtesting.py is untyped
        def init(self) -> None:
            self.entry = self.high = 0.0
            self.band_since = -1

        def next(self) -> None:
            i = len(self.data) - 1
            price = float(self.data.Close[-1])
            if not self.position:
                if buy[i] and not self.orders:
                    sl = price * (1 - cfg.stop_pct)
                    self.buy(size=0.125, tp=price * (1 + cfg.target_one_pct), sl=sl)
                    self.buy(size=0.125, tp=price * (1 + cfg.target_two_pct), sl=sl)
                    self.entry, self.high, self.band_since = price, price, int(close_ms[i])
                return
            entry, now = self.entry, int(close_ms[i])
            self.high = max(self.high, float(self.data.High[-1]))
            if self.high >= entry * (1 + cfg.trailing_activate_pct):
                trail = max(entry * (1 + cfg.trailing_lock_pct), self.high * (1 - cfg.trailing_distance_pct))
                for trade in self.trades:
                    trade.sl = max(trade.sl or 0.0, trail)
            if abs(price - entry) <= entry * cfg.time_exit_band_pct:
                self.band_since = now if self.band_since < 0 else self.band_since
            else:
                self.band_since = -1
            timed_out = self.band_since >= 0 and now - self.band_since >= cfg.time_exit_s * 1000
            if sell[i] or timed_out:
                self.position.close()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        test = Backtest(frame, MeanReversion, cash=capital, commission=0.001, finalize_trades=True)
        stats = test.run()
    return int(stats["# Trades"]), stats


def timed(repeat: int, fn: Any, *args: Any) -> tuple[float, float, Any]:
    """Best wall and CPU seconds of ``repeat`` calls, and the last result."""
    wall = cpu = float("inf")
    result = None
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = fn(*args)
        wall = min(wall, time.perf_counter() - started)
        cpu = min(cpu, time.process_time() - started_cpu)
    return wall, cpu, result
