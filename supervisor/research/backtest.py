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
* **Data.** Candle strategies default to their market's file in ``replay.candles``; ``data``
  overrides it. CSV and ccxt JSON are cleaned on load exactly as ``raytrader data import`` would
  (duplicates, zero-volume bars, flagged moves); Parquet is taken as stored (``data import``/
  ``download`` cleaned it, and cleaning again would drop forward-filled bars). All selected
  candle strategies must trade the one market of the file. ``polymarket_lag`` runs on the bundled
  Polymarket day (``replay.polymarket_markets``/``replay.chainlink_ticks``), equity sampled on the
  Chainlink candles.
* **Timing.** Signals act on the bar after: a signal from a bar closing at T is an order at T that
  the matching engine fills no earlier than the next bar's open (the driver guarantees it).
* **Engine.** ``auto`` runs candle backtests on the fast path (:mod:`supervisor.research.fast_backtest`,
  identical trades, proven by tests) and the Polymarket day on the event-by-event driver.
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from actors.data.candles import CandleTable, clean_table, load_table
from actors.data.replay import BINANCE_BTCUSDT, CHAINLINK_MARKET, candle_events, polymarket_events
from actors.domain.model import Candle, Instrument, MarketEvent, MarketKind, RoundTrip
from actors.domain.topology import watches
from config.models import Settings, StrategyConfig
from supervisor.research.driver import Driver
from supervisor.research.fast_backtest import Bars, FastDriver, SignalPass, sample_curve, signal_pass
from supervisor.research.performance import (
    PerformanceStats,
    compute_stats,
    iso_utc,
    per_strategy_stats,
    round_trips_csv,
    strategy_return_correlation,
)

ExitsMode = Literal["signal", "managed"]
EngineMode = Literal["auto", "fast", "driver"]
Progress = Callable[[int, int], None]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

POLYMARKET_KINDS = frozenset({"polymarket_lag"})
"""Strategy kinds that run on the Polymarket day rather than on candles."""

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


class BacktestError(ValueError):
    """A backtest that cannot run as asked (unknown strategy, mixed data kinds, unusable data)."""


# --------------------------------------------------------------------------- settings for a run


def revalidated(settings: Settings) -> Settings:
    """Settings rebuilt through validation (model_copy does not validate; the run must not start wrong)."""
    return Settings.model_validate(settings.model_dump())


def is_polymarket(cfg: StrategyConfig) -> bool:
    return cfg.kind in POLYMARKET_KINDS


def select_strategies(settings: Settings, names: Sequence[str] = ()) -> tuple[Settings, list[str]]:
    """Settings holding only the strategies of the run (enabled, in config order), and notes on the choice.

    See the module docstring for the rules (default set, data kinds, single-strategy allocation).
    """
    known = {s.name: s for s in settings.strategies}
    notes: list[str] = []
    wanted = list(dict.fromkeys(names))
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise BacktestError(
            f"unknown strateg{'y' if len(unknown) == 1 else 'ies'} {', '.join(map(repr, unknown))}; "
            f"the config has: {', '.join(known) or 'none'}"
        )
    if wanted:
        chosen = [s for s in settings.strategies if s.name in wanted]
        kinds = {is_polymarket(s) for s in chosen}
        if len(kinds) > 1:
            raise BacktestError(
                "polymarket_lag runs on the Polymarket day and candle strategies on Binance candles: "
                "backtest them separately"
            )
    else:
        chosen = [s for s in settings.strategies if s.enabled]
        if not chosen:
            raise BacktestError("the config enables no strategy; name one with --strategy")
        candles = [s for s in chosen if not is_polymarket(s)]
        if candles and len(candles) < len(chosen):
            left_out = [s.name for s in chosen if is_polymarket(s)]
            notes.append(
                f"Left out {', '.join(left_out)}: it needs the Polymarket day, not candles "
                f"(run it alone with --strategy {left_out[0]})."
            )
            chosen = candles
    chosen = [s if s.enabled else s.model_copy(update={"enabled": True}) for s in chosen]
    if len(wanted) == 1:
        share = round(1.0 - settings.portfolio.cash_reserve, 12)
        notes.append(
            f"Single-strategy run: {chosen[0].name} gets {share:.0%} of equity (1 - cash reserve) instead "
            f"of its configured {chosen[0].allocation:.0%}; risk per trade and notional caps still apply."
        )
        chosen = [chosen[0].model_copy(update={"allocation": share})]
    return revalidated(settings.model_copy(update={"strategies": chosen})), notes


def apply_exit_mode(settings: Settings, mode: ExitsMode | None) -> Settings:
    """``managed`` on the top-level exits and every strategy's own exits (``None`` keeps the config)."""
    if mode is None:
        return settings
    managed = mode == "managed"
    strategies = [
        s
        if s.exits is None
        else s.model_copy(update={"exits": s.exits.model_copy(update={"managed": managed})})
        for s in settings.strategies
    ]
    exits = settings.exits.model_copy(update={"managed": managed})
    return revalidated(settings.model_copy(update={"exits": exits, "strategies": strategies}))


def exit_modes(settings: Settings) -> dict[str, bool]:
    """Per strategy: does the exit state machine run (``managed``) for its positions?"""
    return {s.name: (s.exits or settings.exits).managed for s in settings.strategies}


# --------------------------------------------------------------------------- data


def load_candles(path: Path) -> CandleTable:
    """A candle file ready to backtest: CSV/JSON cleaned on load, Parquet as stored (see module doc)."""
    if not path.exists():
        raise BacktestError(f"{path}: no such data file")
    try:
        table = load_table(path)
    except (ValueError, KeyError, OSError) as exc:
        raise BacktestError(f"{path}: {exc}") from exc
    if path.suffix.lower() != ".parquet":
        table, _report = clean_table(table)
    if len(table) < 2:
        raise BacktestError(f"{path}: {len(table)} bar(s), too few to backtest")
    return table


def candle_market(settings: Settings) -> str:
    """The one market every strategy of a candle run trades."""
    markets = sorted({s.market for s in settings.strategies})
    if len(markets) != 1:
        raise BacktestError(f"one data file is one market, but the strategies trade {', '.join(markets)}")
    return markets[0]


def default_candles(settings: Settings) -> Path:
    """The bundled candle file of the one market a candle run trades (``replay.candles``)."""
    market = candle_market(settings)
    path = settings.replay.candles.get(market)
    if path is None:
        raise BacktestError(f"no candle file for {market} in replay.candles: give one with --data")
    return path


def instrument_for(market: str) -> Instrument:
    """The instrument of a candle market: Binance BTC/USDT as bundled, or a Binance spot pair with its
    tick (0.01) and lot (0.00001) for another symbol."""
    if market == BINANCE_BTCUSDT.market_id:
        return BINANCE_BTCUSDT
    venue, _, symbol = market.partition(":")
    if venue != "binance" or "/" not in symbol:
        raise BacktestError(f"candle backtests trade Binance spot pairs (binance:BASE/QUOTE), not {market!r}")
    return BINANCE_BTCUSDT.model_copy(update={"symbol": symbol, "correlation_group": symbol.split("/")[0]})


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
    """Fast path only: bars the driver processed and quiet bars it skipped."""

    @property
    def allocations(self) -> dict[str, float]:
        return {s.name: s.allocation for s in self.settings.strategies}

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
            "bars_per_second": round(s.bars / self.elapsed_s, 1) if self.elapsed_s > 0 else None,
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
        from supervisor.research.report import write_report

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
        )
        if len(self.per_strategy) > 1:
            chart = plot_strategy_pnl(out_dir / "strategies.png", self.ts_ms, self.strategy_pnl, self.title)
            report = out_dir / "report.md"
            with report.open("a", encoding="utf-8") as handle:
                handle.write("\n" + "\n".join(self.breakdown_markdown(chart.name)) + "\n")
            written.append(chart)
        return written

    def breakdown_markdown(self, chart_name: str) -> list[str]:
        """Per-strategy statistics and the correlation of the strategies' per-bar P&L."""
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
        names = list(self.correlation)
        lines += [
            "",
            "## Correlation of strategy returns",
            "",
            "Pearson correlation of the per-bar P&L increments (0 where a strategy never traded).",
            "",
            "| | " + " | ".join(names) + " |",
            "| :--- |" + " ---: |" * len(names),
        ]
        for a in names:
            lines.append(f"| {a} | " + " | ".join(f"{self.correlation[a][b]:.2f}" for b in names) + " |")
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
    )


# --------------------------------------------------------------------------- runs


def run_candles(
    settings: Settings,
    table: CandleTable,
    *,
    trade_from_ms: int | None = None,
    engine: EngineMode = "auto",
    progress: Progress | None = None,
    source: str = "",
    notes: Sequence[str] = (),
    exits_mode: str = "config",
) -> BacktestResult:
    """Backtest the settings' (candle) strategies on one table; bars before ``trade_from_ms`` only warm up."""
    started = time.perf_counter()
    market = candle_market(settings)
    instrument = instrument_for(market)
    bars = Bars.from_table(table, market)
    start = 0 if trade_from_ms is None else bars.index_at(trade_from_ms)
    if start >= len(bars):
        raise BacktestError("no bar to trade after the warm-up")
    total = len(bars) - start
    methods: dict[str, str] = {}
    steps: dict[str, int] = {}
    if engine == "driver":
        driver = Driver(settings, [instrument], equity_market=market)
        stream = candle_events(table, market)
        for candle in itertools.islice(stream, start):  # warm-up: the strategies see it, the book does not
            for core in driver.strategies.values():
                if watches(core.config, market):
                    core.on_candle(candle)
        driver.run(stream, progress=None if progress is None else (lambda n: progress(n, total)))
        if progress is not None:
            progress(total, total)
        engine_name = "driver"
    else:
        signals: SignalPass = signal_pass(settings.strategies, bars)
        methods = signals.methods
        fast = FastDriver(settings, [instrument], bars, signals)
        fast.run_bars(start, progress=None if progress is None else (lambda n: progress(n, total)))
        driver = fast
        engine_name = "fast"
        steps = {"processed": fast.steps.processed, "quiet": fast.steps.quiet}
    elapsed = time.perf_counter() - started
    grid = bars.close_ms[start:]
    close = bars.close[start:]
    first, last = int(bars.ts[start]), int(bars.ts[-1])
    data = {
        "source": source or str(table.provenance.get("source", "")),
        "market": market,
        "rows": len(table),
        "bars": total,
        "warmup_bars": start,
        "flagged_bars": int(table.flags.sum()),
        "interval_ms": bars.interval_ms,
        "start": iso_utc(first),
        "end": iso_utc(last + bars.interval_ms),
        "provenance": table.provenance,
    }
    mode = "/".join(sorted({"managed" if m else "signal" for m in exit_modes(settings).values()}))
    names = ", ".join(s.name for s in settings.strategies)
    title = f"Backtest {names} on {instrument.symbol} ({mode} exits)"
    run_notes = [
        *notes,
        f"Data: {data['source'] or 'table'}: {total:,} bars of {bars.interval_ms // 1000}s, "
        f"{data['start']} to {data['end']}" + (f" after {start:,} warm-up bars" if start else "") + ".",
        "Signals act on the next bar: an order decided at a bar's close fills no earlier than the next "
        "bar's open. Costs: maker/taker fees and slippage from [costs] (FeeModel).",
    ]
    if int(table.flags.sum()):
        run_notes.append(
            f"{int(table.flags.sum())} bar(s) flagged as suspicious moves were left out of the run."
        )
    result = _collect(
        title=title,
        settings=settings,
        driver=driver,
        engine=engine_name,
        data=data,
        grid=grid,
        bar_ms=bars.interval_ms,
        benchmark=close,
        price_ts=grid,
        price_close=close,
        elapsed_s=elapsed,
        notes=run_notes,
        signal_methods=methods,
        exits_mode=exits_mode,
    )
    result.steps = steps
    return result


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


def prepare(
    settings: Settings, strategies: Sequence[str] = (), exits: ExitsMode | None = None
) -> tuple[Settings, list[str]]:
    """The run's settings (strategies chosen, exit mode applied) and notes on the adjustments."""
    chosen, notes = select_strategies(settings, strategies)
    adjusted = apply_exit_mode(chosen, exits)
    if exits == "signal":
        risk = adjusted.portfolio.risk_per_trade
        notes.append(
            "Exits: signal. managed=false for the run: only a strategy's own exit signal (or settlement) "
            "closes a position; no targets, stop, time or trailing exit. Without a stop the whole entry "
            f"is at risk, so the portfolio sizes each entry to about {risk:.0%} x signal strength of "
            "equity (portfolio.risk_per_trade; raise it with --set for larger positions)."
        )
    elif exits == "managed":
        notes.append(
            "Exits: managed. The exit state machine (targets, stop, time, trailing) runs for every position."
        )
    return adjusted, notes


def run_backtest(
    settings: Settings,
    *,
    strategies: Sequence[str] = (),
    data: Path | None = None,
    exits: ExitsMode | None = None,
    engine: EngineMode = "auto",
    progress: Progress | None = None,
) -> BacktestResult:
    """``raytrader backtest``: choose, adjust, load and run (see the module docstring for every rule)."""
    run_settings, notes = prepare(settings, strategies, exits)
    mode = exits or "config"
    if all(is_polymarket(s) for s in run_settings.strategies):
        if data is not None:
            raise BacktestError(
                "polymarket_lag runs on the bundled Polymarket day; point replay.polymarket_markets and "
                "replay.chainlink_ticks elsewhere with --set instead of --data"
            )
        if engine == "fast":
            raise BacktestError(
                "the fast path is for candle backtests; the Polymarket day runs on the driver"
            )
        return run_polymarket(run_settings, progress=progress, notes=notes, exits_mode=mode)
    path = data if data is not None else default_candles(run_settings)
    table = load_candles(path)
    return run_candles(
        run_settings, table, engine=engine, progress=progress, source=str(path), notes=notes, exits_mode=mode
    )


__all__ = [
    "BacktestError",
    "BacktestResult",
    "ExitsMode",
    "apply_exit_mode",
    "load_candles",
    "prepare",
    "run_backtest",
    "run_candles",
    "run_polymarket",
    "select_strategies",
    "strategy_pnl_curves",
]
