"""A run's report: ``report.md`` with the statistics and three PNG charts, plus a progress bar.

Charts use matplotlib's object API on an Agg canvas (no pyplot, no global figure registry, no
display), so reports can be written from worker threads. Long series are reduced to at most
~5,000 points by min/max decimation, which keeps every spike and trough visible.
"""

from __future__ import annotations

import math
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from types import TracebackType
from typing import IO

import matplotlib.dates as mdates
import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from actors.domain.market_groups import gate_market
from actors.domain.model import DAY_MS, HOUR_MS, MINUTE_MS, ZERO, ExitReason, RoundTrip
from supervisor.research.performance import (
    EXIT_REASONS,
    PerformanceStats,
    TradeTally,
    anchored_curve,
    drawdown_series,
    iso_utc,
    tally_by,
)

MAX_LINE_POINTS = 5_000
FIG_SIZE_IN = (12.0, 5.0)
FIG_DPI = 100
ENTRY_COLOR = "#2ca02c"
EXIT_COLORS: dict[str, str] = {
    ExitReason.STOP.value: "#d62728",
    ExitReason.TARGET_ONE.value: "#1f77b4",
    ExitReason.TARGET_TWO.value: "#9467bd",
    ExitReason.TIME_EXIT.value: "#ff7f0e",
    ExitReason.TRAILING.value: "#8c564b",
    ExitReason.SIGNAL.value: "#e377c2",
    ExitReason.SETTLEMENT.value: "#17becf",
    ExitReason.MANUAL.value: "#7f7f7f",
    ExitReason.UNFILLED.value: "#bcbd22",
}


# --------------------------------------------------------------------------- formatting


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.2f}%"


def _ratio(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def _money(x: Decimal | float) -> str:
    """Two decimals for ordinary amounts, four for sub-unit ones (fees on small trades)."""
    if x == 0:
        return "0.00"
    return f"{x:,.2f}" if abs(float(x)) >= 1 else f"{x:.4f}"


def _duration(ms: float) -> str:
    """Human duration, two units at most and no zero tail: 2d 03h, 4h, 5m, 12m 30s."""
    ms = max(0.0, ms)
    units = ((DAY_MS, "d"), (HOUR_MS, "h"), (MINUTE_MS, "m"), (1000, "s"))
    for (size, name), (sub, sub_name) in zip(units, (*units[1:], (1, "ms")), strict=True):
        if ms >= size or size == 1000:
            whole, rest = int(ms // size), int(ms % size // sub)
            if sub_name == "ms":
                return f"{whole}s"
            return f"{whole}{name} {rest:02d}{sub_name}" if rest else f"{whole}{name}"
    return "0s"


def _date(ms: int | None) -> str:
    """Readable UTC time: 2024-01-02 03:04 UTC (seconds shown only when not zero)."""
    if ms is None:
        return "n/a"
    text = iso_utc(ms).replace("T", " ").removesuffix("Z")
    return f"{text.removesuffix(':00.000')} UTC"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> list[str]:
    """A Markdown table; ``align`` is one of l/r per column (default: first left, rest right)."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


# --------------------------------------------------------------------------- charts


def downsample(
    x: npt.ArrayLike, y: npt.ArrayLike, max_points: int = MAX_LINE_POINTS
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """At most ~``max_points`` points of (x, y), keeping each bucket's min and max of y."""
    xs = np.asarray(x, dtype=np.int64).reshape(-1)
    ys = np.asarray(y, dtype=np.float64).reshape(-1)
    n = int(ys.shape[0])
    if n <= max_points:
        return xs, ys
    buckets = max(1, (max_points - 2) // 2)
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    keep = [0, n - 1]
    for lo, hi in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True):
        if hi <= lo:
            continue
        chunk = ys[lo:hi]
        keep.append(lo + int(np.nanargmin(chunk)) if not np.all(np.isnan(chunk)) else lo)
        keep.append(lo + int(np.nanargmax(chunk)) if not np.all(np.isnan(chunk)) else hi - 1)
    idx = np.unique(np.asarray(keep, dtype=np.int64))
    return xs[idx], ys[idx]


def _dates(ms: npt.ArrayLike) -> npt.NDArray[np.datetime64]:
    return np.asarray(ms, dtype=np.int64).astype("datetime64[ms]")


def _new_figure() -> tuple[Figure, Axes]:
    fig = Figure(figsize=FIG_SIZE_IN, dpi=FIG_DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    return fig, ax


def _time_axis(ax: Axes, ts_ms: npt.NDArray[np.int64], pad_ms: int) -> None:
    """UTC date ticks; a zero-length span (a single bar) is widened by ``pad_ms`` each side."""
    if ts_ms.shape[0] and int(ts_ms.max()) == int(ts_ms.min()):
        ax.set_xlim(_dates([int(ts_ms[0]) - pad_ms])[0], _dates([int(ts_ms[0]) + pad_ms])[0])
    locator = mdates.AutoDateLocator(tz=UTC, minticks=4, maxticks=10)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(  # type: ignore[no-untyped-call]
        locator, tz=UTC, offset_formats=["", "%Y", "%Y", "%Y-%m-%d", "%Y-%m-%d", "%Y-%m-%d %H:%M"]
    )
    ax.xaxis.set_major_formatter(formatter)
    ax.set_xlabel("Time (UTC)")
    ax.grid(True, alpha=0.3)


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=FIG_DPI, format="png")
    return path


def _no_data(ax: Axes) -> None:
    ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="grey")


def _value_axis(ax: Axes) -> None:
    """Y tick labels with thousands separators and just enough decimals for the tick spacing
    (2 for 0.40/0.45, 0 for 9,500/10,000), so neighbouring ticks never read the same."""
    ticks = [float(t) for t in ax.get_yticks() if math.isfinite(t)]
    step = min((b - a for a, b in pairwise(ticks) if b > a), default=1.0)
    decimals = next(
        (d for d in range(9) if all(abs(round(t, d) - t) <= step * 1e-3 for t in ticks)),
        8,
    )
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:,.{decimals}f}"))


def _marker(points: int) -> str:
    """Show the samples themselves when there are too few to make a visible line."""
    return "o" if points < 50 else ""


def plot_equity(
    path: Path,
    stats: PerformanceStats,
    ts_ms: npt.ArrayLike,
    equity: npt.ArrayLike,
    benchmark_close: npt.ArrayLike,
    title: str,
) -> Path:
    """Equity against buy-and-hold of the benchmark scaled to the same initial capital."""
    fig, ax = _new_figure()
    ts = np.asarray(ts_ms, dtype=np.int64).reshape(-1)
    eq = np.asarray(equity, dtype=np.float64).reshape(-1)
    bench = np.asarray(benchmark_close, dtype=np.float64).reshape(-1)
    capital = float(stats.initial_capital)
    if eq.shape[0]:
        x, y = downsample(ts, eq)
        ax.plot(
            _dates(x),
            y,
            color="#1f77b4",
            linewidth=1.4,
            marker=_marker(len(x)),
            markersize=3,
            label=f"Strategy ({_pct(stats.total_return)})",
        )
        if bench.shape[0] == eq.shape[0] and bench[0] > 0:
            x, y = downsample(ts, capital * bench / bench[0])
            ax.plot(
                _dates(x),
                y,
                color="#7f7f7f",
                linewidth=1.0,
                alpha=0.8,
                marker=_marker(len(x)),
                markersize=3,
                label=f"Buy and hold ({_pct(stats.buy_and_hold_return)})",
            )
        ax.axhline(capital, color="black", linestyle=":", linewidth=0.8, label="Initial capital")
        ax.legend(loc="best")
        _time_axis(ax, ts, stats.bar_ms)
        _value_axis(ax)
    else:
        _no_data(ax)
    ax.set_ylabel("Equity (quote currency)")
    ax.set_title(f"{title}: equity vs buy and hold")
    return _save(fig, path)


def plot_drawdown(
    path: Path, stats: PerformanceStats, ts_ms: npt.ArrayLike, equity: npt.ArrayLike, title: str
) -> Path:
    """Underwater curve: percent below the running peak of the equity (anchored at capital)."""
    fig, ax = _new_figure()
    ts = np.asarray(ts_ms, dtype=np.int64).reshape(-1)
    eq = np.asarray(equity, dtype=np.float64).reshape(-1)
    if eq.shape[0]:
        dd = -100.0 * drawdown_series(anchored_curve(eq, stats.initial_capital))[1:]
        x, y = downsample(ts, dd)
        dates = _dates(x)
        ax.fill_between(dates, y, 0.0, color="#d62728", alpha=0.35, linewidth=0)
        ax.plot(
            dates, y, color="#d62728", linewidth=0.9, marker=_marker(len(x)), markersize=3, label="Drawdown"
        )
        worst = int(np.argmin(dd))
        ax.scatter(
            _dates(ts[worst : worst + 1]),
            [dd[worst]],
            color="black",
            marker="o",
            s=25,
            zorder=3,
            label=f"Max drawdown {_pct(stats.max_drawdown)}",
        )
        ax.set_ylim(min(float(dd.min()) * 1.1, -1.0), 0.5)
        ax.legend(loc="lower left")
        _time_axis(ax, ts, stats.bar_ms)
    else:
        _no_data(ax)
    ax.set_ylabel("Drawdown from peak (%)")
    ax.set_title(f"{title}: drawdown (underwater curve)")
    return _save(fig, path)


def plot_trades(
    path: Path,
    price_ts_ms: npt.ArrayLike,
    price_close: npt.ArrayLike,
    trips: Sequence[RoundTrip],
    title: str,
    pad_ms: int = HOUR_MS,
) -> Path:
    """Price with entries (^ green) and exits (v, coloured by exit reason); ``pad_ms`` widens
    a zero-length time axis."""
    fig, ax = _new_figure()
    _draw_trades(ax, price_ts_ms, price_close, trips, pad_ms)
    ax.set_title(f"{title}: trades on price")
    return _save(fig, path)


def plot_market_trades(
    path: Path,
    prices: Mapping[str, tuple[npt.ArrayLike, npt.ArrayLike]],
    trips: Sequence[RoundTrip],
    title: str,
    pad_ms: int = HOUR_MS,
) -> Path:
    """One panel per market (``prices``: market -> close times, closes), each with its own trades."""
    width, height = FIG_SIZE_IN
    fig = Figure(figsize=(width, max(height, 3.2 * len(prices))), dpi=FIG_DPI)
    FigureCanvasAgg(fig)
    for k, (market, (ts, close)) in enumerate(prices.items()):
        ax = fig.add_subplot(len(prices), 1, k + 1)
        _draw_trades(ax, ts, close, [t for t in trips if t.market == market], pad_ms)
        ax.set_title(f"{title}: trades on {market}" if k == 0 else market)
    return _save(fig, path)


def _draw_trades(
    ax: Axes,
    price_ts_ms: npt.ArrayLike,
    price_close: npt.ArrayLike,
    trips: Sequence[RoundTrip],
    pad_ms: int,
) -> None:
    ts = np.asarray(price_ts_ms, dtype=np.int64).reshape(-1)
    close = np.asarray(price_close, dtype=np.float64).reshape(-1)
    traded = [t for t in trips if t.exit_reason is not ExitReason.UNFILLED]
    if close.shape[0] or traded:
        if close.shape[0]:
            x, y = downsample(ts, close)
            ax.plot(
                _dates(x),
                y,
                color="#555555",
                linewidth=0.9,
                marker=_marker(len(x)),
                markersize=3,
                label="Close",
            )
        size = 40 if len(traded) <= 200 else 14
        if traded:
            ax.scatter(
                _dates([t.entry_time_ms for t in traded]),
                [float(t.entry_price) for t in traded],
                marker="^",
                color=ENTRY_COLOR,
                edgecolors="black",
                linewidths=0.4,
                s=size,
                zorder=3,
                label=f"Entry ({len(traded)})",
            )
        by_reason: dict[str, list[RoundTrip]] = defaultdict(list)
        for t in traded:
            by_reason[t.exit_reason.value].append(t)
        for reason in EXIT_REASONS:
            group = by_reason.get(reason)
            if not group:
                continue
            ax.scatter(
                _dates([t.exit_time_ms for t in group]),
                [float(t.exit_price) for t in group],
                marker="v",
                color=EXIT_COLORS.get(reason, "#d62728"),
                edgecolors="black",
                linewidths=0.4,
                s=size,
                zorder=4,
                label=f"Exit: {reason} ({len(group)})",
            )
        ax.legend(loc="best", fontsize="small", ncol=2)
        times = np.concatenate([ts, [t.entry_time_ms for t in traded], [t.exit_time_ms for t in traded]])
        _time_axis(ax, times.astype(np.int64), pad_ms)
        _value_axis(ax)
    else:
        _no_data(ax)
    ax.set_ylabel("Price (quote currency)")


# --------------------------------------------------------------------------- markdown


def _summary_rows(stats: PerformanceStats) -> list[list[str]]:
    return [
        ["Period", f"{_date(stats.start_ms)} → {_date(stats.end_ms)}"],
        ["Bars", f"{stats.bars:,} of {_duration(stats.bar_ms)}"],
        ["Initial capital", _money(stats.initial_capital)],
        ["Final equity", _money(stats.final_equity)],
        ["Total return", _pct(stats.total_return)],
        ["Buy and hold return", _pct(stats.buy_and_hold_return)],
        ["Excess return (vs buy and hold)", _pct(stats.excess_return)],
        ["CAGR", _pct(stats.cagr)],
        ["Annualised volatility", _pct(stats.volatility)],
        ["Sharpe (annualised, rf 0)", _ratio(stats.sharpe)],
        ["Sortino (annualised, target 0)", _ratio(stats.sortino)],
        ["Max drawdown", _pct(stats.max_drawdown)],
        ["Longest drawdown", _duration(stats.max_drawdown_duration_ms)],
        ["Exposure (mean fraction invested)", _pct(stats.exposure)],
        ["Trades", f"{stats.trades:,}"],
        ["Win rate", _pct(stats.win_rate)],
        ["Profit factor", _ratio(stats.profit_factor)],
        ["Total trade P&L (after fees)", _money(stats.total_pnl)],
        ["Fees paid", _money(stats.fees_paid)],
    ]


def _exit_reason_rows(stats: PerformanceStats) -> list[list[str]]:
    rows = []
    for reason in EXIT_REASONS:
        count = stats.trades_by_exit_reason.get(reason, 0)
        pnl = stats.pnl_by_exit_reason.get(reason, ZERO)
        avg = pnl / count if count else ZERO
        rows.append([reason, f"{count:,}", _money(pnl), _money(avg)])
    return rows


def _group_rows(trips: Sequence[RoundTrip], key: Callable[[RoundTrip], str]) -> list[list[str]]:
    return [
        [name, f"{t.trades:,}", _pct(t.win_rate), _money(t.pnl), _money(t.fees)]
        for name, t in tally_by(trips, key).items()
    ]


def correlation_table(matrix: Mapping[str, Mapping[str, float]]) -> list[str]:
    """A correlation matrix as a Markdown table (rows and columns in the matrix's order)."""
    names = list(matrix)
    rows = [[a, *(f"{matrix[a][b]:.2f}" for b in names)] for a in names]
    return _table(["", *names], rows)


def markets_markdown(
    tallies: Mapping[str, TradeTally],
    buy_and_hold: Mapping[str, float],
    bars: Mapping[str, int],
    market_correlation: Mapping[str, Mapping[str, float]],
    pair_correlation: Mapping[str, Mapping[str, float]],
) -> list[str]:
    """A several-market run: a row per market, its returns' correlations and the strategy/market
    pairs' daily P&L correlations."""
    rows = [
        [
            market,
            f"{bars.get(market, 0):,}",
            f"{t.trades:,}",
            _pct(t.win_rate),
            _money(t.pnl),
            _money(t.fees),
            _pct(buy_and_hold.get(market)),
        ]
        for market, t in tallies.items()
    ]
    lines = ["## Markets in the portfolio", ""]
    lines += _table(["Market", "Bars", "Trades", "Win rate", "P&L", "Fees", "Buy and hold"], rows)
    lines += [
        "",
        "## Correlation of market returns",
        "",
        "Pearson correlation of the markets' per-bar close-to-close returns on the run's common clock.",
        "",
        *correlation_table(market_correlation),
        "",
        "## Correlation of strategy/market P&L",
        "",
        "Pearson correlation of each strategy's realised P&L per UTC day on each market it trades "
        "(a trip counts on its exit day; 0 where a pair never traded).",
        "",
        *correlation_table(pair_correlation),
    ]
    return lines


def _trade_rows(trips: Sequence[RoundTrip]) -> list[list[str]]:
    return [
        [
            _date(t.entry_time_ms),
            _date(t.exit_time_ms),
            t.strategy,
            t.market,
            format(t.qty, "f"),
            format(t.entry_price, "f"),
            format(t.exit_price, "f"),
            t.exit_reason.value,
            _money(t.pnl),
        ]
        for t in trips
    ]


def render_markdown(
    stats: PerformanceStats,
    trips: Sequence[RoundTrip],
    title: str,
    notes: Sequence[str],
    charts: Sequence[tuple[str, str]],
    conditions: Mapping[str, str] | None = None,
) -> str:
    """The report's text; ``charts`` are (caption, relative file name) pairs; ``conditions`` group a
    Polymarket window's tokens into one market in the by-market table."""
    traded = [t for t in trips if t.exit_reason is not ExitReason.UNFILLED]
    lines = [f"# {title}", "", "## Summary", ""]
    lines += _table(["Metric", "Value"], _summary_rows(stats))
    lines += [
        "",
        "Returns are per bar on the equity curve anchored at the initial capital; Sharpe and Sortino "
        "are annualised with sqrt(bars per 365-day year), risk-free rate 0. Drawdown is the fall "
        "from the running peak. Money is in the quote currency.",
        "",
        "## P&L by exit reason",
        "",
    ]
    lines += _table(["Exit reason", "Trades", "P&L", "Avg P&L"], _exit_reason_rows(stats))
    lines += ["", "## Trades", ""]
    if not traded:
        lines += ["No trades were closed in this run."]
    else:
        lines += _table(
            ["Trades", "Wins", "Losses", "Avg trade", "Avg win", "Avg loss", "Best", "Worst", "Avg holding"],
            [
                [
                    f"{stats.trades:,}",
                    f"{stats.wins:,}",
                    f"{stats.losses:,}",
                    _money(stats.avg_trade_pnl),
                    _money(stats.avg_win),
                    _money(stats.avg_loss),
                    _money(stats.best_trade),
                    _money(stats.worst_trade),
                    _duration(stats.avg_holding_ms),
                ]
            ],
            align="r" * 9,
        )
        lines += ["", f"Average return per trade on its cost: {_pct(stats.avg_trade_return)}."]
        if stats.unfilled_entries:
            lines += [f"Entries that never filled (not counted as trades): {stats.unfilled_entries:,}."]
        header = ["", "Trades", "Win rate", "P&L", "Fees"]
        lines += ["", "### By strategy", ""]
        lines += _table(["Strategy", *header[1:]], _group_rows(traded, lambda t: t.strategy))
        lines += ["", "### By market", ""]
        found = conditions or {}
        lines += _table(["Market", *header[1:]], _group_rows(traded, lambda t: gate_market(t.market, found)))
        ranked = sorted(traded, key=lambda t: t.pnl)
        trade_header = ["Entry", "Exit", "Strategy", "Market", "Qty", "Entry px", "Exit px", "Reason", "P&L"]
        lines += ["", "### Best trades", ""]
        lines += _table(trade_header, _trade_rows(ranked[::-1][:5]), align="llllrrrlr")
        lines += ["", "### Worst trades", ""]
        lines += _table(trade_header, _trade_rows(ranked[:5]), align="llllrrrlr")
    lines += ["", "## Charts", ""]
    for caption, name in charts:
        lines += [f"### {caption}", "", f"![{caption}]({name})", ""]
    lines += ["## Notes", ""]
    lines += [f"- {note}" for note in notes] if notes else ["- (none)"]
    return "\n".join(lines) + "\n"


def write_report(
    out_dir: Path,
    stats: PerformanceStats,
    ts_ms: npt.ArrayLike,
    equity: npt.ArrayLike,
    benchmark_close: npt.ArrayLike,
    trips: Sequence[RoundTrip],
    price_ts_ms: npt.ArrayLike,
    price_close: npt.ArrayLike,
    title: str,
    notes: list[str],
    *,
    prices: Mapping[str, tuple[npt.ArrayLike, npt.ArrayLike]] | None = None,
    conditions: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write report.md, equity.png, drawdown.png and trades.png into ``out_dir``; return their paths.

    With ``prices`` of several markets (market -> close times, closes), trades.png has one panel per
    market, each with that market's trades.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    charts = [
        ("Equity vs buy and hold", "equity.png"),
        ("Drawdown", "drawdown.png"),
        ("Trades on price", "trades.png"),
    ]
    trades = out_dir / "trades.png"
    written = [
        plot_equity(out_dir / "equity.png", stats, ts_ms, equity, benchmark_close, title),
        plot_drawdown(out_dir / "drawdown.png", stats, ts_ms, equity, title),
        plot_market_trades(trades, prices, trips, title, stats.bar_ms)
        if prices is not None and len(prices) > 1
        else plot_trades(trades, price_ts_ms, price_close, trips, title, stats.bar_ms),
    ]
    report = out_dir / "report.md"
    report.write_text(render_markdown(stats, trips, title, notes, charts, conditions), encoding="utf-8")
    return [report, *written]


# --------------------------------------------------------------------------- progress


class ProgressBar:
    """A one-line progress bar on stderr for long runs; silent when stderr is not a terminal.

    Redraws only when the shown per-mille changes and at least ``min_interval_s`` passed (a
    display-only throttle, ~10 redraws a second), and always at completion.
    """

    def __init__(
        self,
        label: str = "",
        stream: IO[str] | None = None,
        enabled: bool | None = None,
        width: int = 30,
        min_interval_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream: IO[str] = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.label = label
        self.width = width
        self.min_interval_s = min_interval_s
        self.clock = clock
        self.started = clock()
        self.redraws = 0
        self._last_permille = -1
        self._last_draw = -float("inf")
        self._drawn = False

    def update(self, done: int, total: int) -> None:
        """Report progress; cheap to call every bar."""
        if not self.enabled:
            return
        permille = 1000 if total <= 0 else min(1000, max(0, done * 1000 // total))
        if permille == self._last_permille:
            return
        now = self.clock()
        if permille < 1000 and now - self._last_draw < self.min_interval_s:
            return
        self._last_permille = permille
        self._last_draw = now
        self._draw(done, total, permille, now)

    def _draw(self, done: int, total: int, permille: int, now: float) -> None:
        filled = self.width * permille // 1000
        elapsed = now - self.started
        eta = elapsed * (1000 - permille) / permille if permille else 0.0
        bar = "#" * filled + "-" * (self.width - filled)
        prefix = f"{self.label} " if self.label else ""
        self.stream.write(
            f"\r{prefix}[{bar}] {permille / 10:5.1f}% {done:,}/{total:,} "
            f"elapsed {_clock(elapsed)} eta {_clock(eta)}"
        )
        self.stream.flush()
        self.redraws += 1
        self._drawn = True

    def close(self) -> None:
        """End the line so later output starts clean."""
        if self.enabled and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
