"""Walk-forward optimisation and parameter sweeps, serially or as Ray tasks.

Walk-forward: split the data into consecutive windows; on each *train* window try every point of a
parameter grid and keep the best by the objective (Sharpe by default); then trade the chosen point
on the following *test* window, which no choice has seen. The report: the chosen parameters per
window, how stable they are, and the stitched out-of-sample equity with its statistics.

Decisions:

* **Windows.** Train ``[s, s + train)``, test ``[s + train, s + train + test)``; the next window starts
  one test length later (rolling), or keeps ``s`` at the data's start and grows its train
  (``anchored``). Only whole test windows are used; a shorter tail is left out (and said so).
* **Grid.** ``key=v1,v2,...`` with keys relative to the strategy's config (``bb_std``, ``rsi_buy``,
  ``regime.period``, ``exits.stop_pct``); values are read like ``--set`` values. Every point is
  validated by the strategy's model before anything runs. Points are tried in grid order; a tie in
  the objective keeps the earlier point, so the choice is deterministic.
* **Warm-up, no look-ahead.** A test window's strategy is warmed up on the train window's bars
  (those immediately before the test), never on bars inside or after the test window: the run
  covers ``[train start, test end)``, bars before the test only feed the strategy (their signals are
  dropped) and the book starts flat, with the initial capital, at the test's first bar. A train run
  warms up on its own first bars, as a plain backtest does.
* **Stitching.** Each test window starts with the initial capital; the out-of-sample curve chains
  their returns (window ``w``'s equity scaled by the product of the earlier windows' growth), and
  its statistics are those of that chained curve with every test trade.
* **Stability.** Per parameter, how many windows chose each value; its score is the share of windows
  that chose its most frequent value (1.0 = always the same). The overall score is the mean over
  parameters; ``changes`` counts windows whose chosen point differs from the previous window's.
* **Markets.** The strategy runs on every market it trades (``markets``): each slice is the
  markets' bars in the window, one portfolio over them (:func:`~supervisor.research.backtest.run_candles`),
  and the objective is that portfolio's; ``trades_by_market`` counts the out-of-sample trades (and
  each sweep point's) per market.
* **Execution.** ``workers == 1`` runs everything serially in-process (no Ray). Otherwise every
  (window, point) train run, then every test run, is a Ray task (``num_cpus=1``), at most
  ``workers`` in flight; Ray is started locally (``num_cpus=workers``) unless already running or an
  ``address`` is given. Tasks are pure functions of their inputs and results are collected in
  submission order, so serial and parallel runs give identical results.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, Protocol, TypeVar

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from actors.data.candles import CandleTable
from actors.domain.model import RoundTrip
from config.models import Settings
from supervisor.research.backtest import run_candles
from supervisor.research.backtest_setup import (
    BacktestError,
    ExitsMode,
    MarketCandles,
    market_candles,
    prepare,
    revalidated,
)
from supervisor.research.performance import PerformanceStats, compute_stats, iso_utc, market_tally

T = TypeVar("T")
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

OBJECTIVES: dict[str, Literal[1, -1]] = {
    "sharpe": 1,
    "sortino": 1,
    "total_return": 1,
    "excess_return": 1,
    "cagr": 1,
    "win_rate": 1,
    "profit_factor": 1,
    "max_drawdown": -1,
}
"""Objective name -> direction (1: higher is better, -1: lower is better)."""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(w|d|h|m|s)\s*$")
_UNIT_MS = {"w": 7 * 86_400_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1_000}


class WalkForwardError(BacktestError):
    """A walk-forward or sweep that cannot run as asked (bad grid, no whole window, bad objective)."""


# --------------------------------------------------------------------------- inputs


def parse_duration(text: str) -> int:
    """``14d``, ``12h``, ``1.5d``, ``2w``, ``90m``, ``30s`` -> milliseconds."""
    match = _DURATION.match(text)
    if not match:
        raise WalkForwardError(f"expected a duration like 14d, 12h or 90m, got {text!r}")
    ms = int(float(match.group(1)) * _UNIT_MS[match.group(2)])
    if ms <= 0:
        raise WalkForwardError(f"a duration must be positive, got {text!r}")
    return ms


@dataclass(frozen=True)
class Grid:
    """Parameter grid: keys (strategy param paths) and their candidate values, in the order given."""

    keys: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]

    def points(self) -> list[dict[str, Any]]:
        """Every combination, first key varying slowest."""
        return [dict(zip(self.keys, combo, strict=True)) for combo in itertools.product(*self.values)]

    def as_json_dict(self) -> dict[str, list[Any]]:
        return {k: list(v) for k, v in zip(self.keys, self.values, strict=True)}


def parse_grid(items: Sequence[str]) -> Grid:
    """``["bb_std=1.5,2,2.5", "rsi_buy=25,30"]`` -> Grid; values are read as ``--set`` values are."""
    from config.loader import parse_value

    keys: list[str] = []
    values: list[tuple[Any, ...]] = []
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or not raw.strip():
            raise WalkForwardError(f"expected key=v1,v2,... (e.g. bb_std=1.5,2,2.5), got {item!r}")
        if key in keys:
            raise WalkForwardError(f"grid key {key!r} given twice")
        parsed = tuple(parse_value(v.strip()) for v in raw.split(",") if v.strip())
        if len(set(map(repr, parsed))) != len(parsed):
            raise WalkForwardError(f"grid key {key!r} repeats a value: {raw}")
        keys.append(key)
        values.append(parsed)
    if not keys:
        raise WalkForwardError("give at least one --grid key=v1,v2,...")
    return Grid(tuple(keys), tuple(values))


def _set_path(data: dict[str, Any], path: list[str], value: Any, defaults: dict[str, Any]) -> None:
    node = data
    for i, seg in enumerate(path[:-1]):
        child = node.get(seg)
        if child is None:
            child = dict(defaults.get(seg, {})) if i == 0 else {}
            node[seg] = child
        if not isinstance(child, dict):
            raise WalkForwardError(f"grid key {'.'.join(path)!r}: {seg!r} is not a table")
        node = child
    node[path[-1]] = value


def apply_point(settings: Settings, strategy: str, point: dict[str, Any]) -> tuple[Settings, dict[str, Any]]:
    """Settings with one grid point applied to ``strategy``, and the point as validated values."""
    cfg = settings.strategy(strategy)
    data = cfg.model_dump()
    fields = set(type(cfg).model_fields)
    defaults = {"exits": settings.exits.model_dump()}  # a strategy without its own exits starts from [exits]
    for key, value in point.items():
        path = key.split(".")
        if path[0] not in fields or path[0] in ("name", "kind"):
            known = ", ".join(sorted(fields - {"name", "kind"}))
            raise WalkForwardError(f"grid key {key!r} is not a parameter of {cfg.kind}; known: {known}")
        _set_path(data, path, value, defaults)
    try:
        new_cfg = type(cfg).model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise WalkForwardError(f"grid point {point} is not a valid {cfg.kind}: {problems}") from None
    strategies = [new_cfg if s.name == strategy else s for s in settings.strategies]
    try:
        updated = revalidated(settings.model_copy(update={"strategies": strategies}))
    except ValidationError as exc:
        raise WalkForwardError(f"grid point {point}: {exc.errors(include_url=False)[0]['msg']}") from None
    return updated, {key: _get_path(new_cfg.model_dump(), key) for key in point}


def _get_path(data: dict[str, Any], key: str) -> Any:
    node: Any = data
    for seg in key.split("."):
        node = node[seg]
    return node


def score_of(stats: PerformanceStats, objective: str) -> float:
    """The objective as a number where higher is better; undefined values rank last."""
    direction = OBJECTIVES[objective]
    value = getattr(stats, objective)
    if value is None or not math.isfinite(float(value)):
        return -math.inf
    return direction * float(value)


@dataclass(frozen=True)
class Window:
    index: int
    train_start: int
    train_end: int
    test_start: int
    test_end: int

    def as_json_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "train": [iso_utc(self.train_start), iso_utc(self.train_end)],
            "test": [iso_utc(self.test_start), iso_utc(self.test_end)],
        }


def make_windows(start_ms: int, end_ms: int, train_ms: int, test_ms: int, anchored: bool) -> list[Window]:
    """Consecutive train/test windows over ``[start_ms, end_ms)``; only whole test windows."""
    windows: list[Window] = []
    k = 0
    while True:
        train_end = start_ms + train_ms + k * test_ms
        test_end = train_end + test_ms
        if test_end > end_ms:
            return windows
        train_start = start_ms if anchored else train_end - train_ms
        windows.append(Window(k, train_start, train_end, train_end, test_end))
        k += 1


# --------------------------------------------------------------------------- one slice, the task body


@dataclass
class SliceResult:
    """One backtest over a slice: its statistics, objective score, and (for tests) the curve and trips."""

    stats: PerformanceStats
    score: float
    ts_ms: IntArray
    equity: FloatArray
    exposure: FloatArray
    benchmark: FloatArray
    trips: list[RoundTrip]
    fees_paid: Decimal
    skipped_gates: dict[str, int]


def run_slice(
    settings: Settings,
    table: CandleTable | MarketCandles,
    start_ms: int,
    trade_from_ms: int,
    end_ms: int,
    objective: str,
) -> SliceResult:
    """Backtest ``[start_ms, end_ms)``, trading from ``trade_from_ms`` (earlier bars warm up only)."""
    result = run_candles(settings, table.between(start_ms, end_ms), trade_from_ms=trade_from_ms)
    return SliceResult(
        stats=result.stats,
        score=score_of(result.stats, objective),
        ts_ms=result.ts_ms,
        equity=result.equity,
        exposure=result.exposure,
        benchmark=result.benchmark,
        trips=result.trips,
        fees_paid=result.stats.fees_paid,
        skipped_gates=result.counters["skipped_gates"],
    )


# --------------------------------------------------------------------------- execution


class Executor(Protocol):
    mode: str
    workers: int

    def map(self, fn: Callable[..., T], calls: Sequence[tuple[Any, ...]], table: MarketCandles) -> list[T]:
        """``[fn(*call[:1], table, *call[1:]) ...]`` in order: the candles go second, shared."""
        ...

    def close(self) -> None: ...


class SerialExecutor:
    """In-process, one call after another: no Ray."""

    mode = "serial"
    workers = 1

    def map(self, fn: Callable[..., T], calls: Sequence[tuple[Any, ...]], table: MarketCandles) -> list[T]:
        return [fn(call[0], table, *call[1:]) for call in calls]

    def close(self) -> None:
        return None


class RayExecutor:
    """Ray tasks (``num_cpus=1``), at most ``workers`` in flight, results in submission order."""

    mode = "ray"

    def __init__(self, workers: int, address: str | None = None) -> None:
        import ray

        self.workers = workers
        self._started = False
        if not ray.is_initialized():
            if address:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(
                    address="local",
                    num_cpus=workers,
                    include_dashboard=False,
                    object_store_memory=100 * 2**20,
                    log_to_driver=False,
                )
            self._started = True

    def map(self, fn: Callable[..., T], calls: Sequence[tuple[Any, ...]], table: MarketCandles) -> list[T]:
        import ray

        remote = ray.remote(num_cpus=1, max_retries=0)(fn)
        table_ref = ray.put(table)
        refs: list[Any] = []
        pending: list[Any] = []
        for call in calls:
            if len(pending) >= self.workers:
                _done, pending = ray.wait(pending, num_returns=1)
            ref = remote.remote(call[0], table_ref, *call[1:])
            refs.append(ref)
            pending.append(ref)
        results: list[T] = ray.get(refs)
        return results

    def close(self) -> None:
        import ray

        if self._started and ray.is_initialized():
            ray.shutdown()


def executor_for(workers: int, address: str | None = None) -> Executor:
    if workers < 1:
        raise WalkForwardError(f"--workers must be at least 1, got {workers}")
    if workers == 1 and not address:
        return SerialExecutor()
    return RayExecutor(workers, address)


# --------------------------------------------------------------------------- walk-forward


@dataclass
class WindowResult:
    window: Window
    chosen: dict[str, Any]
    chosen_index: int
    train_scores: list[float]
    test: SliceResult

    def as_json_dict(self, objective: str) -> dict[str, Any]:
        s = self.test.stats
        return {
            **self.window.as_json_dict(),
            "chosen": self.chosen,
            "chosen_point": self.chosen_index,
            "train_objective": _finite_or_none(self.train_scores[self.chosen_index] * OBJECTIVES[objective]),
            "train_scores": [_finite_or_none(v * OBJECTIVES[objective]) for v in self.train_scores],
            "test": {
                "bars": s.bars,
                "trades": s.trades,
                "total_return": s.total_return,
                "buy_and_hold_return": s.buy_and_hold_return,
                "sharpe": s.sharpe,
                "sortino": s.sortino,
                "max_drawdown": s.max_drawdown,
                "win_rate": s.win_rate,
                "fees_paid": str(s.fees_paid),
                objective: getattr(s, objective),
            },
        }


def trades_by_market(trips: Sequence[RoundTrip]) -> dict[str, int]:
    """Closed trades per market (as the gates count markets: :func:`market_tally`), markets sorted.
    Walk-forward runs candle strategies only, whose markets are their own."""
    return {m: t.trades for m, t in market_tally(trips).items()}


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def stability(chosen: Sequence[dict[str, Any]], grid: Grid) -> dict[str, Any]:
    """How often each value was chosen, per key; shares of the modal value; their mean; point changes."""
    n = len(chosen)
    keys: dict[str, Any] = {}
    shares: list[float] = []
    for key, candidates in zip(grid.keys, grid.values, strict=True):
        counts: dict[str, int] = {}
        for value in candidates:
            counts[str(value)] = 0
        for point in chosen:
            label = str(point[key])
            counts[label] = counts.get(label, 0) + 1
        counts = {k: v for k, v in counts.items() if v or k in map(str, candidates)}
        modal = max(counts, key=lambda k: counts[k]) if n else None
        share = (counts[modal] / n) if n and modal is not None else 0.0
        shares.append(share)
        keys[key] = {"counts": counts, "modal": modal, "share": share}
    changes = sum(1 for a, b in itertools.pairwise(chosen) if a != b)
    return {"keys": keys, "score": float(np.mean(shares)) if shares else 0.0, "changes": changes}


def stitch(
    tests: Sequence[SliceResult], initial: Decimal
) -> tuple[IntArray, FloatArray, FloatArray, FloatArray]:
    """Chain the test windows' returns into one out-of-sample curve (see the module doc)."""
    capital = float(initial)
    factor = 1.0
    ts: list[IntArray] = []
    eq: list[FloatArray] = []
    ex: list[FloatArray] = []
    bench: list[FloatArray] = []
    for test in tests:
        ts.append(test.ts_ms)
        eq.append(test.equity * factor)
        ex.append(test.exposure)
        bench.append(test.benchmark)
        if test.equity.shape[0]:
            factor *= float(test.equity[-1]) / capital
    if not ts:
        empty = np.zeros(0)
        return np.zeros(0, dtype=np.int64), empty, empty, empty
    return np.concatenate(ts), np.concatenate(eq), np.concatenate(ex), np.concatenate(bench)


@dataclass
class WalkForwardResult:
    strategy: str
    objective: str
    anchored: bool
    train_ms: int
    test_ms: int
    grid: Grid
    windows: list[WindowResult]
    stability: dict[str, Any]
    oos: PerformanceStats
    oos_ts_ms: IntArray
    oos_equity: FloatArray
    trips: list[RoundTrip]
    notes: list[str]
    elapsed_s: float
    mode: str
    workers: int

    def as_json_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "objective": self.objective,
            "anchored": self.anchored,
            "train_ms": self.train_ms,
            "test_ms": self.test_ms,
            "grid": self.grid.as_json_dict(),
            "points": len(self.grid.points()),
            "windows": [w.as_json_dict(self.objective) for w in self.windows],
            "stability": self.stability,
            "oos": {
                **self.oos.as_json_dict(),
                "trades_by_market": trades_by_market(self.trips),
                "equity": [
                    [int(t), float(e)] for t, e in zip(*_thin(self.oos_ts_ms, self.oos_equity), strict=True)
                ],
            },
            "notes": self.notes,
            "elapsed_s": round(self.elapsed_s, 6),
            "mode": self.mode,
            "workers": self.workers,
        }

    def summary_lines(self) -> list[str]:
        lines = [
            f"Walk-forward {self.strategy}: {len(self.windows)} window(s), "
            f"{len(self.grid.points())} point(s), "
            f"objective {self.objective}, {'anchored' if self.anchored else 'rolling'}, "
            f"{self.mode} x{self.workers}, {self.elapsed_s:.1f}s"
        ]
        for w in self.windows:
            s = w.test.stats
            params = ", ".join(f"{k}={v}" for k, v in w.chosen.items())
            span = f"{iso_utc(w.window.test_start)[:16]}..{iso_utc(w.window.test_end)[:16]}"
            lines.append(
                f"  #{w.window.index} test {span}"
                f"  {params}  test return {s.total_return:+.2%} sharpe {s.sharpe:.2f} trades {s.trades}"
            )
        st = self.stability
        shares = ", ".join(f"{k} {v['share']:.0%} ({v['modal']})" for k, v in st["keys"].items())
        lines.append(f"  stability score {st['score']:.2f}: {shares}; point changes {st['changes']}")
        o = self.oos
        lines.append(
            f"  out of sample: return {o.total_return:+.2%}  buy&hold {o.buy_and_hold_return:+.2%}  "
            f"sharpe {o.sharpe:.2f}  max DD {o.max_drawdown:.2%}  trades {o.trades}"
        )
        return lines


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:10.4f}"


def _thin(ts: IntArray, eq: FloatArray, max_points: int = 2000) -> tuple[IntArray, FloatArray]:
    """At most ``max_points`` evenly spaced samples (always the last) for the JSON curve."""
    n = ts.shape[0]
    if n <= max_points:
        return ts, eq
    idx = np.unique(np.concatenate([np.linspace(0, n - 1, max_points).astype(np.int64), [n - 1]]))
    return ts[idx], eq[idx]


def _check_objective(objective: str) -> None:
    if objective not in OBJECTIVES:
        raise WalkForwardError(f"unknown objective {objective!r}; expected one of: {', '.join(OBJECTIVES)}")


def _prepared(
    settings: Settings, strategy: str, exits: ExitsMode | None, grid: Grid
) -> tuple[Settings, list[tuple[Settings, dict[str, Any]]], list[str]]:
    base, notes = prepare(settings, [strategy], exits)
    if base.strategies[0].kind == "polymarket_lag":
        raise WalkForwardError("walk-forward and sweeps run on candle strategies, not polymarket_lag")
    points = [apply_point(base, strategy, p) for p in grid.points()]
    return base, points, notes


def _data_span(candles: MarketCandles) -> tuple[int, int]:
    try:
        return candles.span()
    except BacktestError as exc:
        raise WalkForwardError(str(exc)) from None


def walk_forward(
    settings: Settings,
    table: CandleTable | MarketCandles,
    *,
    strategy: str,
    grid: Grid,
    train_ms: int,
    test_ms: int,
    anchored: bool = False,
    objective: str = "sharpe",
    exits: ExitsMode | None = None,
    executor: Executor | None = None,
) -> WalkForwardResult:
    """Optimise on each train window, trade the choice on the next test window, stitch (module doc).

    ``table``: one market's candles, or every market the strategy trades (:class:`MarketCandles`).
    """
    _check_objective(objective)
    started = time.perf_counter()
    base, points, notes = _prepared(settings, strategy, exits, grid)
    _run, candles, restricted = market_candles(base, table)
    notes += restricted
    start, end = _data_span(candles)
    windows = make_windows(start, end, train_ms, test_ms, anchored)
    if not windows:
        raise WalkForwardError(
            f"the data spans {iso_utc(start)} to {iso_utc(end)}: too short for one train ({train_ms} ms) "
            f"plus test ({test_ms} ms) window"
        )
    tail = end - windows[-1].test_end
    if tail > 0:
        notes.append(f"The last {tail / 3_600_000:.1f} h of data are shorter than a test window: left out.")
    run = executor or SerialExecutor()
    train_calls = [
        (cfg, w.train_start, w.train_start, w.train_end, objective) for w in windows for cfg, _p in points
    ]
    train = run.map(run_slice, train_calls, candles)
    chosen_idx: list[int] = []
    for k, _w in enumerate(windows):
        scores = [r.score for r in train[k * len(points) : (k + 1) * len(points)]]
        best = max(range(len(points)), key=lambda i: (scores[i], -i))
        chosen_idx.append(best)
    test_calls = [
        (points[i][0], w.train_start, w.test_start, w.test_end, objective)
        for w, i in zip(windows, chosen_idx, strict=True)
    ]
    tests = run.map(run_slice, test_calls, candles)
    results = [
        WindowResult(
            window=w,
            chosen=points[i][1],
            chosen_index=i,
            train_scores=[r.score for r in train[k * len(points) : (k + 1) * len(points)]],
            test=tests[k],
        )
        for k, (w, i) in enumerate(zip(windows, chosen_idx, strict=True))
    ]
    initial = base.portfolio.initial_capital
    ts, eq, ex, bench = stitch(tests, initial)
    trips = [t for r in tests for t in r.trips]
    fees = sum((r.fees_paid for r in tests), Decimal(0))
    bar_ms = candles.interval_ms
    oos = compute_stats(ts, eq, bar_ms, ex, bench, trips, initial, fees)
    skipped: dict[str, int] = {}
    for r in tests:
        for gate, count in r.skipped_gates.items():
            skipped[gate] = skipped.get(gate, 0) + count
    notes += [f"Gate '{g}' was SKIPPED (not passed) on {c} test entry signal(s)." for g, c in skipped.items()]
    return WalkForwardResult(
        strategy=strategy,
        objective=objective,
        anchored=anchored,
        train_ms=train_ms,
        test_ms=test_ms,
        grid=grid,
        windows=results,
        stability=stability([r.chosen for r in results], grid),
        oos=oos,
        oos_ts_ms=ts,
        oos_equity=eq,
        trips=trips,
        notes=notes,
        elapsed_s=time.perf_counter() - started,
        mode=run.mode,
        workers=run.workers,
    )


# --------------------------------------------------------------------------- sweep


@dataclass
class SweepResult:
    strategy: str
    objective: str
    grid: Grid
    rows: list[dict[str, Any]]
    best: dict[str, Any]
    notes: list[str]
    elapsed_s: float
    mode: str
    workers: int

    def as_json_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "objective": self.objective,
            "grid": self.grid.as_json_dict(),
            "results": self.rows,
            "best": self.best,
            "notes": self.notes,
            "elapsed_s": round(self.elapsed_s, 6),
            "mode": self.mode,
            "workers": self.workers,
        }

    def summary_lines(self) -> list[str]:
        lines = [
            f"Sweep {self.strategy}: {len(self.rows)} point(s), objective {self.objective}, "
            f"{self.mode} x{self.workers}, {self.elapsed_s:.1f}s"
        ]
        for row in self.rows:
            params = ", ".join(f"{k}={v}" for k, v in row["params"].items())
            lines.append(
                f"  {params:<40} {self.objective} {_fmt(row['objective'])}  "
                f"return {row['total_return']:+.2%}  "
                f"trades {row['trades']}  max DD {row['max_drawdown']:.2%}"
            )
        lines.append(f"  best: {self.best['params']}")
        return lines


def sweep(
    settings: Settings,
    table: CandleTable | MarketCandles,
    *,
    strategy: str,
    grid: Grid,
    objective: str = "sharpe",
    exits: ExitsMode | None = None,
    executor: Executor | None = None,
) -> SweepResult:
    """Every grid point over the whole data; rows in grid order, best by the objective (ties: earlier)."""
    _check_objective(objective)
    started = time.perf_counter()
    base, points, notes = _prepared(settings, strategy, exits, grid)
    _run, candles, restricted = market_candles(base, table)
    notes += restricted
    start, end = _data_span(candles)
    run = executor or SerialExecutor()
    results = run.map(run_slice, [(cfg, start, start, end, objective) for cfg, _p in points], candles)
    rows = []
    for i, ((_cfg, params), r) in enumerate(zip(points, results, strict=True)):
        s = r.stats
        rows.append(
            {
                "point": i,
                "params": params,
                "objective": _finite_or_none(r.score * OBJECTIVES[objective]),
                "total_return": s.total_return,
                "sharpe": s.sharpe,
                "sortino": s.sortino,
                "max_drawdown": s.max_drawdown,
                "trades": s.trades,
                "win_rate": s.win_rate,
                "fees_paid": str(s.fees_paid),
                "trades_by_market": trades_by_market(r.trips),
            }
        )
    best = max(range(len(rows)), key=lambda i: (results[i].score, -i))
    return SweepResult(
        strategy=strategy,
        objective=objective,
        grid=grid,
        rows=rows,
        best=rows[best],
        notes=notes,
        elapsed_s=time.perf_counter() - started,
        mode=run.mode,
        workers=run.workers,
    )


__all__ = [
    "OBJECTIVES",
    "Grid",
    "RayExecutor",
    "SerialExecutor",
    "SweepResult",
    "WalkForwardError",
    "WalkForwardResult",
    "Window",
    "apply_point",
    "executor_for",
    "make_windows",
    "parse_duration",
    "parse_grid",
    "run_slice",
    "stability",
    "stitch",
    "sweep",
    "walk_forward",
]
