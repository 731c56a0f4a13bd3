"""Backtests: choose strategies and data, adjust the settings for the run, drive the cores, collect results.

One entry point, :func:`run_backtest`, behind ``raytrader backtest``, the walk-forward and the sweep.
Decisions, so nobody has to guess:

* **Strategies.** ``strategies`` names strategies of the config (any number; a disabled one named
  explicitly is enabled for the run). Without names every enabled strategy runs, in one portfolio.
  Candle strategies and ``polymarket_lag`` need different data (the Binance candles of 2024-03, the
  Polymarket day of 2026-07-24), so they never share a run: by default the candle strategies run
  and ``polymarket_lag`` is left out with a note; naming both kinds is an error.
* **Allocation.** When exactly one strategy is *named*, it gets ``1 - portfolio.cash_reserve`` of the
  equity (all the investable capital), so the result measures the strategy and not the share the
  config happens to give it; the risk per trade and notional caps still size every trade. A
  portfolio run (several names, or the config's enabled strategies) keeps the config's allocations.
* **Exits.** ``exits="signal"`` sets ``managed=false`` on the top-level ``[exits]`` and on every
  strategy's own ``exits``: only the strategy's exit signal (or a settlement) closes a position,
  as in the algo-trading guide's backtests. ``exits="managed"`` sets ``managed=true`` everywhere:
  the exit state machine (targets, stop, time, trailing) plus the strategy's exit signal. ``None``
  keeps the config as written. A strategy without exit signals (``momentum_breakout``) never closes
  in signal mode: its position is still open at the end (marked in the equity, not a trade).
* **Data.** Without ``data`` a candle run trades every market its strategies trade (``markets``),
  each from its file in ``replay.candles``. ``data`` names the run's markets and their files:
  ``(market, path)`` pairs (``--data MARKET=FILE``, repeatable) and at most one plain path (``--data
  FILE``: the first strategy's ``market``, so a one-market config reads as it always did); each
  strategy then trades only the named markets it lists, and one listing none of them is left out
  (with a note). Naming a market no strategy of the run trades is an error. CSV and ccxt JSON are
  cleaned on load exactly as ``raytrader data import`` would (duplicates, zero-volume bars, flagged
  moves); Parquet is taken as stored (``data import``/``download`` cleaned it, and cleaning again
  would drop forward-filled bars). The markets' files must have one bar size. ``polymarket_lag``
  runs on the bundled Polymarket day (``replay.polymarket_markets``/``replay.chainlink_ticks``),
  equity sampled on the Chainlink candles.
* **Several markets.** The markets' candle streams are merged by bar close time (ties in the order
  the strategies list the markets) and driven event by event; each strategy runs one core per market
  (``StrategyBook``), so with gates that do not interact a market trades exactly as it does alone
  (tested on the four bundled markets). Equity is sampled at every bar close of any market (the
  common clock), each position marked at its own market's last close. Buy and hold is the equal-weight
  portfolio of the markets: each market's close over its first close in the data, averaged (bought in
  equal parts at the start, never rebalanced; a market with no bar yet counts at its first close).
  The JSON adds ``trades_by_market``, ``pnl_by_market`` (a Polymarket window's Up and Down tokens
  are one market, ``polymarket:<condition id>``, as for the gates), ``per_market`` (tally and each
  market's own buy and hold), ``market_correlation`` (per-bar close-to-close returns on the common clock) and
  ``pair_correlation`` (each strategy/market pair's realised P&L per UTC day).
* **Timing.** Signals act on the bar after: a signal from a bar closing at T is an order at T that
  the matching engine fills no earlier than the next bar's open (the driver guarantees it).
* **Engine.** ``auto`` runs one-market candle backtests on the fast path
  (:mod:`supervisor.research.fast_backtest`, identical trades, proven by tests); several markets and
  the Polymarket day run on the event-by-event driver (the fast path steps one bar series), and
  ``fast`` with several markets is an error.
* **Warm-up** (walk-forward): bars before ``trade_from_ms`` only warm the strategies up (their
  signals are dropped); the book starts flat, with the initial capital, at ``trade_from_ms``.
* **Per strategy** (several strategies): each strategy's curve is its sleeve, ``initial_capital *
  allocation``, plus the cumulative P&L of its round trips *at their exit times*, on the run's bar
  grid (realised P&L only: an open position shows when it closes). The correlation matrix is of
  these curves' per-bar P&L increments (``strategy_return_correlation(kind="pnl")``).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from actors.data.candles import CandleTable
from actors.data.replay import (
    CHAINLINK_MARKET,
    candle_events,
    merge_streams,
    polymarket_events,
)
from actors.domain.market_groups import conditions_of
from actors.domain.model import Candle, Instrument, MarketEvent, MarketKind, RoundTrip
from actors.domain.topology import watches
from config.models import Settings
from supervisor.research.backtest_setup import (
    BacktestError,
    DataSpec,
    EngineMode,
    ExitsMode,
    MarketCandles,
    Progress,
    candle_files,
    candle_markets,
    exit_modes,
    instrument_for,
    is_polymarket,
    load_market_candles,
    market_candles,
    prepare,
)
from supervisor.research.driver import Driver
from supervisor.research.fast_backtest import Bars, FastDriver, SignalPass, sample_curve, signal_pass
from supervisor.research.performance import (
    PerformanceStats,
    TradeTally,
    buy_and_hold_return,
    compute_stats,
    daily_pnl,
    iso_utc,
    market_tally,
    per_strategy_stats,
    round_trips_csv,
    strategy_return_correlation,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

POLYMARKET_NOTES = (
    "REAL (recorded): the list of 5-minute 'Bitcoin Up or Down' markets of 2026-07-24, their Up/Down "
    "token ids, strikes (price to beat), listing and window times, the recorded outcomes (payouts), "
    "and the Chainlink BTC/USD path they settle on.",
    "MODELLED (no book history exists): every Up/Down order book: a fair value from the Chainlink "
    "path shown with a lag, a spread, depth and size jitter (actors/data/polymarket_books.py). "
    "Fills, entry prices and so the P&L measure the strategy against this model, not against "
    "what Polymarket actually quoted.",
    "Fees follow Polymarket's crypto fee schedule (taker only); settlement pays 1 or 0 per share.",
)


# --------------------------------------------------------------------------- results


@dataclass
class BacktestResult:
    """Everything one run produced, and the ways to write it out."""

    title: str
    settings: Settings
    strategies: list[str]
    engine: str
    data: dict[str, Any]
    bar_ms: int
    ts_ms: IntArray
    equity: FloatArray
    exposure: FloatArray
    benchmark: FloatArray
    price_ts_ms: IntArray
    price_close: FloatArray
    trips: list[RoundTrip]
    stats: PerformanceStats
    per_strategy: dict[str, PerformanceStats]
    strategy_pnl: dict[str, FloatArray]
    correlation: dict[str, dict[str, float]]
    counters: dict[str, Any]
    reconciliation: dict[str, Decimal]
    open_positions: int
    elapsed_s: float
    notes: list[str] = field(default_factory=list)
    signal_methods: dict[str, str] = field(default_factory=dict)
    exits_mode: str = "config"
    steps: dict[str, int] = field(default_factory=dict)
    """Fast path only: bars the driver processed, flat bars it skipped (quiet), held bars it skipped
    between events (held)."""
    prices: dict[str, tuple[IntArray, FloatArray]] = field(default_factory=dict)
    """Candle runs: each market's traded bars (close times, closes)."""
    market_correlation: dict[str, dict[str, float]] = field(default_factory=dict)
    """Candle runs: correlation of the markets' per-bar returns on the common clock."""
    pair_correlation: dict[str, dict[str, float]] = field(default_factory=dict)
    """Candle runs: correlation of each strategy@market pair's realised P&L per UTC day."""
    conditions: dict[str, str] = field(default_factory=dict)
    """Binary runs: outcome token market id -> its window (``conditions_of``), so a window's Up and
    Down count as one market, as every gate counts them."""

    @property
    def allocations(self) -> dict[str, float]:
        return {s.name: s.allocation for s in self.settings.strategies}

    @property
    def by_market(self) -> dict[str, TradeTally]:
        """Closed trades per market (a Polymarket window is one): every market of a candle run (idle
        ones too), then any other."""
        return market_tally(self.trips, self.conditions, self.prices)

    def per_market_json(self) -> dict[str, dict[str, Any]]:
        """Per market: its trade tally, its bars and its own buy and hold over the run."""
        out: dict[str, dict[str, Any]] = {}
        for market, tally in self.by_market.items():
            _ts, close = self.prices.get(market, (None, np.zeros(0)))
            out[market] = {
                **tally.as_json_dict(),
                "bars": int(close.shape[0]),
                "buy_and_hold_return": buy_and_hold_return(close),
            }
        return out

    def as_json_dict(self) -> dict[str, Any]:
        """The run as plain JSON types: headline numbers flat at the top, full statistics nested."""
        s = self.stats
        return {
            "title": self.title,
            "strategies": self.strategies,
            "allocations": self.allocations,
            "exits": {"mode": self.exits_mode, "managed": exit_modes(self.settings)},
            "engine": self.engine,
            "signal_pass": self.signal_methods,
            "steps": self.steps,
            "data": self.data,
            "bars": s.bars,
            "trades": s.trades,
            "total_return": s.total_return,
            "buy_and_hold_return": s.buy_and_hold_return,
            "max_drawdown": s.max_drawdown,
            "win_rate": s.win_rate,
            "sharpe": s.sharpe,
            "sortino": s.sortino,
            "cagr": s.cagr,
            "exposure": s.exposure,
            "fees_paid": str(s.fees_paid),
            "pnl_by_exit_reason": {k: str(v) for k, v in s.pnl_by_exit_reason.items()},
            "trades_by_exit_reason": dict(s.trades_by_exit_reason),
            "elapsed_s": round(self.elapsed_s, 6),
            "bars_per_second": (
                round(int(self.data.get("bars", s.bars)) / self.elapsed_s, 1) if self.elapsed_s > 0 else None
            ),
            "skipped_gates": self.counters["skipped_gates"],
            "rejections": self.counters["rejections"],
            "signals": self.counters["signals"],
            "orders": self.counters["orders"],
            "fills": self.counters["fills"],
            "events": self.counters["events"],
            "open_positions": self.open_positions,
            "reconciliation": {k: str(v) for k, v in self.reconciliation.items()},
            "reconciliation_difference": str(self.reconciliation["difference"]),
            "stats": s.as_json_dict(),
            "per_strategy": {name: st.as_json_dict() for name, st in self.per_strategy.items()},
            "correlation": self.correlation,
            "trades_by_market": {m: t.trades for m, t in self.by_market.items()},
            "pnl_by_market": {m: str(t.pnl) for m, t in self.by_market.items()},
            "per_market": self.per_market_json(),
            "market_correlation": self.market_correlation,
            "pair_correlation": self.pair_correlation,
            "notes": self.notes,
        }

    def write_json(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_json_dict(), indent=2, allow_nan=False) + "\n", encoding="utf-8")
        return path

    def write_trades(self, path: Path) -> Path:
        """One row per round trip (supervisor.research.performance.round_trips_csv)."""
        return round_trips_csv(self.trips, path)

    def write_report(self, out_dir: Path) -> list[Path]:
        """report.md with equity, drawdown and trade charts; several strategies add their breakdown."""
        from supervisor.research.report import markets_markdown, write_report

        written = write_report(
            out_dir,
            self.stats,
            self.ts_ms,
            self.equity,
            self.benchmark,
            self.trips,
            self.price_ts_ms,
            self.price_close,
            self.title,
            self.notes,
            prices=self.prices,
            conditions=self.conditions,
        )
        extra: list[str] = []
        if len(self.per_strategy) > 1:
            chart = plot_strategy_pnl(out_dir / "strategies.png", self.ts_ms, self.strategy_pnl, self.title)
            extra += ["", *self.breakdown_markdown(chart.name)]
            written.append(chart)
        if len(self.prices) > 1:
            per = self.per_market_json()
            extra += [
                "",
                *markets_markdown(
                    self.by_market,
                    {m: v["buy_and_hold_return"] for m, v in per.items()},
                    {m: v["bars"] for m, v in per.items()},
                    self.market_correlation,
                    self.pair_correlation,
                ),
            ]
        if extra:
            with (out_dir / "report.md").open("a", encoding="utf-8") as handle:
                handle.write("\n".join(extra) + "\n")
        return written

    def breakdown_markdown(self, chart_name: str) -> list[str]:
        """Per-strategy statistics and the correlation of the strategies' per-bar P&L."""
        from supervisor.research.report import correlation_table

        lines = [
            "## Strategies in the portfolio",
            "",
            "Each strategy's sleeve is initial capital x its allocation; its curve adds the P&L of its "
            "round trips at their exit times (realised only), on the run's bar grid.",
            "",
            "| Strategy | Allocation | Trades | Win rate | P&L | Return on sleeve | Sharpe | Max drawdown |",
            "| :--- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, st in self.per_strategy.items():
            lines.append(
                f"| {name} | {self.allocations.get(name, 0.0):.0%} | {st.trades:,} | {st.win_rate:.1%} | "
                f"{float(st.total_pnl):,.2f} | {st.total_return:.2%} | {st.sharpe:.2f} | "
                f"{st.max_drawdown:.2%} |"
            )
        lines += [
            "",
            "## Correlation of strategy returns",
            "",
            "Pearson correlation of the per-bar P&L increments (0 where a strategy never traded).",
            "",
            *correlation_table(self.correlation),
        ]
        lines += ["", "### Cumulative P&L by strategy", "", f"![Cumulative P&L by strategy]({chart_name})"]
        return lines

    def summary_lines(self) -> list[str]:
        """A short plain-text summary for the terminal."""
        s = self.stats
        skipped = ", ".join(f"{k} x{v}" for k, v in self.counters["skipped_gates"].items()) or "none"
        lines = [
            self.title,
            f"  bars {s.bars:,}  trades {s.trades:,}  open at end {self.open_positions}  "
            f"engine {self.engine}  {self.elapsed_s:.2f}s",
            f"  total return {s.total_return:+.2%}  buy&hold {s.buy_and_hold_return:+.2%}  "
            f"max DD {s.max_drawdown:.2%}  sharpe {s.sharpe:.2f}  sortino {s.sortino:.2f}",
            f"  win rate {s.win_rate:.1%}  exposure {s.exposure:.1%}  fees {float(s.fees_paid):,.2f}  "
            f"reconciliation diff {self.reconciliation['difference']}",
            f"  skipped gates: {skipped}",
        ]
        if len(self.per_strategy) > 1:
            for name, st in self.per_strategy.items():
                lines.append(f"  {name}: {st.trades} trades, P&L {float(st.total_pnl):,.2f}")
        if len(self.prices) > 1:
            for market, tally in self.by_market.items():
                lines.append(f"  {market}: {tally.trades} trades, P&L {float(tally.pnl):,.2f}")
        return lines


def plot_strategy_pnl(path: Path, ts_ms: npt.ArrayLike, pnl: Mapping[str, npt.ArrayLike], title: str) -> Path:
    """One line per strategy: its cumulative realised P&L on the bar grid."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from supervisor.research.report import downsample

    fig = Figure(figsize=(12.0, 5.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ts = np.asarray(ts_ms, dtype=np.int64)
    for name, series in pnl.items():
        x, y = downsample(ts, np.asarray(series, dtype=np.float64))
        ax.plot(x.astype("datetime64[ms]"), y, linewidth=1.3, label=name)
    ax.axhline(0.0, color="black", linestyle=":", linewidth=0.8)
    ax.set_ylabel("Cumulative realised P&L (quote currency)")
    ax.set_xlabel("Time (UTC)")
    ax.set_title(f"{title}: P&L by strategy")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    return path


def strategy_pnl_curves(
    grid_ms: IntArray, trips: Sequence[RoundTrip], names: Iterable[str]
) -> dict[str, FloatArray]:
    """Cumulative realised P&L of each strategy at each grid time (trips counted at their exit time)."""
    out: dict[str, FloatArray] = {}
    for name in names:
        own = sorted((t for t in trips if t.strategy == name), key=lambda t: t.exit_time_ms)
        exits = np.asarray([t.exit_time_ms for t in own], dtype=np.int64)
        cum = np.concatenate([[0.0], np.cumsum([float(t.pnl) for t in own])])
        out[name] = np.asarray(cum[np.searchsorted(exits, grid_ms, side="right")], dtype=np.float64)
    return out


def _counters(driver: Driver) -> dict[str, Any]:
    c = driver.counters
    return {
        "signals": dict(sorted(c.signals.items())),
        "rejections": dict(sorted(c.rejections.items())),
        "skipped_gates": {str(k): v for k, v in sorted(c.skipped_gates.items(), key=lambda kv: str(kv[0]))},
        "orders": dict(sorted(c.orders.items())),
        "fills": c.fills,
        "events": c.events,
    }


def _gate_notes(counters: Mapping[str, Any]) -> list[str]:
    notes = []
    for gate, count in counters["skipped_gates"].items():
        why = " (a candle backtest has no order book)" if gate == "liquidity" else ""
        notes.append(f"Gate '{gate}' was SKIPPED, not passed, on {count:,} entry signal(s){why}.")
    return notes


def _collect(
    *,
    title: str,
    settings: Settings,
    driver: Driver,
    engine: str,
    data: dict[str, Any],
    grid: IntArray,
    bar_ms: int,
    benchmark: FloatArray,
    price_ts: IntArray,
    price_close: FloatArray,
    elapsed_s: float,
    notes: list[str],
    signal_methods: dict[str, str] | None = None,
    exits_mode: str = "config",
) -> BacktestResult:
    initial = settings.portfolio.initial_capital
    equity, exposure = sample_curve(driver.curve, grid, float(initial))
    trips = list(driver.trips)
    stats = compute_stats(grid, equity, bar_ms, exposure, benchmark, trips, initial, driver.fees_paid)
    names = [s.name for s in settings.strategies]
    pnl = strategy_pnl_curves(grid, trips, names)
    capital = {s.name: initial * Decimal(repr(s.allocation)) for s in settings.strategies}
    sleeves = {name: float(capital[name]) + pnl[name] for name in names}
    per = per_strategy_stats(grid, bar_ms, sleeves, capital, benchmark, trips)
    correlation = strategy_return_correlation(pnl, kind="pnl")
    counters = _counters(driver)
    open_positions = len(driver.positions)
    all_notes = [*notes, *_gate_notes(counters)]
    if open_positions:
        all_notes.append(
            f"{open_positions} position(s) still open at the end: marked in the equity, "
            "not counted as trades."
        )
    return BacktestResult(
        title=title,
        settings=settings,
        strategies=names,
        engine=engine,
        data=data,
        bar_ms=bar_ms,
        ts_ms=grid,
        equity=equity,
        exposure=exposure,
        benchmark=benchmark,
        price_ts_ms=price_ts,
        price_close=price_close,
        trips=trips,
        stats=stats,
        per_strategy=per,
        strategy_pnl=pnl,
        correlation=correlation,
        counters=counters,
        reconciliation=driver.reconcile(),
        open_positions=open_positions,
        elapsed_s=elapsed_s,
        notes=all_notes,
        signal_methods=signal_methods or {},
        exits_mode=exits_mode,
        conditions=conditions_of(driver.instruments.values()),
    )


# --------------------------------------------------------------------------- runs


def run_candles(
    settings: Settings,
    table: CandleTable | MarketCandles,
    *,
    trade_from_ms: int | None = None,
    engine: EngineMode = "auto",
    progress: Progress | None = None,
    source: str = "",
    notes: Sequence[str] = (),
    exits_mode: str = "config",
) -> BacktestResult:
    """Backtest the settings' (candle) strategies on their markets' candles (one table is the one
    market); bars opening before ``trade_from_ms`` only warm the strategies up."""
    started = time.perf_counter()
    settings, candles, restricted = market_candles(settings, table)
    markets = candle_markets(settings)
    instruments = [instrument_for(m) for m in markets]
    bars = {m: Bars.from_table(candles.tables[m], m) for m in markets}
    first_bar = min((int(b.ts[0]) for b in bars.values() if len(b)), default=0)
    trade_from = first_bar if trade_from_ms is None else trade_from_ms
    starts = {m: b.index_at(trade_from) for m, b in bars.items()}
    total = sum(len(b) - starts[m] for m, b in bars.items())
    if total <= 0:
        raise BacktestError("no bar to trade after the warm-up")
    run_notes = [*notes, *restricted]
    if engine == "fast" and len(markets) > 1:
        raise BacktestError(
            f"the fast path steps one bar series, but the run trades {len(markets)} markets: "
            "use --engine driver (or auto)"
        )
    if engine == "auto" and len(markets) > 1:
        run_notes.append(
            f"Engine: {len(markets)} markets run on the event-by-event driver (the fast path steps one "
            "bar series); each market trades exactly as it would alone when no gate binds across markets."
        )
        engine = "driver"
    methods: dict[str, str] = {}
    steps: dict[str, int] = {}
    report = None if progress is None else (lambda n: progress(n, total))
    engine_name: str = engine
    if engine == "driver":
        driver = _drive(settings, instruments, candles, markets, trade_from, report)
        if progress is not None:
            progress(total, total)
    else:
        engine_name = "fast"
        only = bars[markets[0]]
        signals: SignalPass = signal_pass(settings.strategies, only)
        methods = signals.methods
        fast = FastDriver(settings, instruments, only, signals)
        fast.run_bars(starts[markets[0]], progress=report)
        driver = fast
        steps = {"processed": fast.steps.processed, "quiet": fast.steps.quiet, "held": fast.steps.held}
    elapsed = time.perf_counter() - started
    prices = {m: (b.close_ms[starts[m] :], b.close[starts[m] :]) for m, b in bars.items()}
    if len(markets) == 1:
        grid, benchmark = prices[markets[0]]
    else:
        grid = np.unique(np.concatenate([ts for ts, _c in prices.values()]))
        benchmark = np.mean(
            [closes_on(bars[m], grid, candles.bases[m]) / candles.bases[m] for m in markets], axis=0
        )
    data = _candle_data(candles, bars, starts, source)
    mode = "/".join(sorted({"managed" if m else "signal" for m in exit_modes(settings).values()}))
    names = ", ".join(s.name for s in settings.strategies)
    symbols = ", ".join(i.symbol for i in instruments)
    title = f"Backtest {names} on {symbols} ({mode} exits)"
    interval = candles.interval_ms
    warmup = sum(starts.values())
    run_notes += [
        f"Data: {data['source'] or 'table'}: {total:,} bars of {interval // 1000}s, "
        f"{data['start']} to {data['end']}" + (f" after {warmup:,} warm-up bars" if warmup else "") + ".",
        "Signals act on the next bar: an order decided at a bar's close fills no earlier than the next "
        "bar's open. Costs: maker/taker fees and slippage from [costs] (FeeModel).",
    ]
    if len(markets) > 1:
        run_notes.append(
            f"{len(markets)} markets merged by bar time; equity sampled at every bar close of any market "
            "(each position at its market's last close); buy and hold is the equal-weight portfolio of "
            "the markets (bought in equal parts at the start, never rebalanced)."
        )
    flagged = int(data["flagged_bars"])
    if flagged:
        run_notes.append(f"{flagged} bar(s) flagged as suspicious moves were left out of the run.")
    result = _collect(
        title=title,
        settings=settings,
        driver=driver,
        engine=engine_name,
        data=data,
        grid=grid,
        bar_ms=interval,
        benchmark=benchmark,
        price_ts=prices[markets[0]][0],
        price_close=prices[markets[0]][1],
        elapsed_s=elapsed,
        notes=run_notes,
        signal_methods=methods,
        exits_mode=exits_mode,
    )
    result.steps = steps
    result.prices = prices
    result.market_correlation = strategy_return_correlation(
        {m: closes_on(bars[m], grid, candles.bases[m]) for m in markets}, kind="equity"
    )
    pairs = {f"{s.name}@{m}": (s.name, m) for s in settings.strategies for m in s.markets}
    span = (int(grid[0]), int(grid[-1])) if grid.shape[0] else (trade_from, trade_from)
    daily = daily_pnl(result.trips, lambda t: f"{t.strategy}@{t.market}", list(pairs), *span)
    result.pair_correlation = strategy_return_correlation(daily, kind="returns")
    return result


def closes_on(bars: Bars, grid: IntArray, default: float) -> FloatArray:
    """A market's last close known at each grid time: its first close before its first bar,
    ``default`` throughout when it has no bar at all."""
    if len(bars) == 0:
        return np.full(grid.shape[0], default, dtype=np.float64)
    pos = np.searchsorted(bars.close_ms, grid, side="right") - 1
    return np.asarray(bars.close[np.clip(pos, 0, None)], dtype=np.float64)


def _drive(
    settings: Settings,
    instruments: Sequence[Instrument],
    candles: MarketCandles,
    markets: Sequence[str],
    trade_from: int,
    progress: Callable[[int], None] | None,
) -> Driver:
    """The event-by-event driver over the markets' merged candles; bars opening before ``trade_from``
    only warm the strategies up (the book never sees them)."""
    driver = Driver(settings, instruments, equity_market=markets[0] if len(markets) == 1 else None)
    streams = [candle_events(candles.tables[m], m) for m in markets]
    # merging candle streams yields candles
    stream = streams[0] if len(streams) == 1 else cast(Iterator[Candle], merge_streams(*streams))
    head: list[Candle] = []
    for candle in stream:
        if candle.ts_ms >= trade_from:
            head.append(candle)
            break
        for core in driver.strategies.values():
            if watches(core.config, candle.market):
                core.on_candle(candle)
    driver.run(itertools.chain(head, stream), progress=progress)
    return driver


def _candle_data(
    candles: MarketCandles, bars: Mapping[str, Bars], starts: Mapping[str, int], source: str
) -> dict[str, Any]:
    """The JSON ``data`` of a candle run: the first market's figures flat (as one market has always
    had them) with sums over the markets, and ``per_market`` details."""
    per_market: dict[str, Any] = {}
    for market, b in bars.items():
        table, start = candles.tables[market], starts[market]
        per_market[market] = {
            "source": candles.sources.get(market, ""),
            "rows": len(table),
            "bars": len(b) - start,
            "warmup_bars": start,
            "flagged_bars": int(table.flags.sum()),
            "start": iso_utc(int(b.ts[start])) if start < len(b) else None,
            "end": iso_utc(int(b.ts[-1]) + b.interval_ms) if len(b) else None,
            "provenance": table.provenance,
        }
    rows = list(per_market.values())
    first = rows[0]
    return {
        "source": source or "; ".join(str(r["source"]) for r in rows),
        "market": ", ".join(per_market),
        "rows": sum(int(r["rows"]) for r in rows),
        "bars": sum(int(r["bars"]) for r in rows),
        "warmup_bars": sum(int(r["warmup_bars"]) for r in rows),
        "flagged_bars": sum(int(r["flagged_bars"]) for r in rows),
        "interval_ms": candles.interval_ms,
        "start": min(str(r["start"]) for r in rows if r["start"] is not None),
        "end": max(str(r["end"]) for r in rows if r["end"] is not None),
        "provenance": first["provenance"],
        "per_market": per_market,
    }


def run_polymarket(
    settings: Settings,
    *,
    progress: Progress | None = None,
    notes: Sequence[str] = (),
    exits_mode: str = "config",
) -> BacktestResult:
    """The bundled Polymarket day: every market of the series (resolved ones keep their losses), books
    modelled, equity sampled on the Chainlink candles."""
    started = time.perf_counter()
    replay = settings.replay
    instruments, stream = polymarket_events(replay.polymarket_markets, replay.chainlink_ticks)
    events: list[MarketEvent] = list(stream)
    driver = Driver(settings, instruments, equity_market=CHAINLINK_MARKET)
    total = len(events)
    driver.run(events, progress=None if progress is None else (lambda n: progress(n, total)))
    if progress is not None:
        progress(total, total)
    elapsed = time.perf_counter() - started
    reference = [e for e in events if isinstance(e, Candle) and e.market == CHAINLINK_MARKET]
    grid = np.asarray([c.ts_ms + c.interval_ms for c in reference], dtype=np.int64)
    close = np.asarray([c.close for c in reference], dtype=np.float64)
    markets = {i.condition_id for i in instruments if i.kind is MarketKind.BINARY}
    data = {
        "source": f"{replay.polymarket_markets.name} + {replay.chainlink_ticks.name}",
        "market": CHAINLINK_MARKET,
        "markets": len(markets),
        "tokens": sum(1 for i in instruments if i.kind is MarketKind.BINARY),
        "events": total,
        "bars": int(grid.shape[0]),
        "interval_ms": 1000,
        "start": iso_utc(int(grid[0])) if grid.shape[0] else None,
        "end": iso_utc(int(grid[-1])) if grid.shape[0] else None,
        "provenance": {"markets": str(replay.polymarket_markets), "chainlink": str(replay.chainlink_ticks)},
    }
    names = ", ".join(s.name for s in settings.strategies)
    title = f"Backtest {names} on the Polymarket BTC 5-minute series"
    run_notes = [
        *notes,
        *POLYMARKET_NOTES,
        f"Survivorship: all {len(markets)} markets of the day are in the run, each until it resolves; "
        "a market that ends keeps its trades and losses.",
        "Equity is sampled on the Chainlink candles (one a second); buy and hold is BTC on that path.",
    ]
    return _collect(
        title=title,
        settings=settings,
        driver=driver,
        engine="driver",
        data=data,
        grid=grid,
        bar_ms=1000,
        benchmark=close,
        price_ts=np.zeros(0, dtype=np.int64),
        price_close=np.zeros(0, dtype=np.float64),
        elapsed_s=elapsed,
        notes=run_notes,
        exits_mode=exits_mode,
    )


def run_backtest(
    settings: Settings,
    *,
    strategies: Sequence[str] = (),
    data: Path | Sequence[DataSpec] | None = None,
    exits: ExitsMode | None = None,
    engine: EngineMode = "auto",
    progress: Progress | None = None,
) -> BacktestResult:
    """``raytrader backtest``: choose, adjust, load and run (see the module docstring for every rule).

    ``data``: a plain path (the run's one market) or ``(market, path)`` pairs (see :func:`candle_files`).
    """
    run_settings, notes = prepare(settings, strategies, exits)
    mode = exits or "config"
    if all(is_polymarket(s) for s in run_settings.strategies):
        if data:
            raise BacktestError(
                "polymarket_lag runs on the bundled Polymarket day; point replay.polymarket_markets and "
                "replay.chainlink_ticks elsewhere with --set instead of --data"
            )
        if engine == "fast":
            raise BacktestError(
                "the fast path is for candle backtests; the Polymarket day runs on the driver"
            )
        return run_polymarket(run_settings, progress=progress, notes=notes, exits_mode=mode)
    run = candle_files(run_settings, data)
    candles = load_market_candles(run.files)
    return run_candles(
        run.settings,
        candles,
        engine=engine,
        progress=progress,
        notes=[*notes, *run.notes],
        exits_mode=mode,
    )


__all__ = [
    "BacktestResult",
    "closes_on",
    "plot_strategy_pnl",
    "run_backtest",
    "run_candles",
    "run_polymarket",
    "strategy_pnl_curves",
]
