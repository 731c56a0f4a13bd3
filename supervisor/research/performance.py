"""Performance statistics of a backtest or paper run: pure functions over arrays and round trips.

Conventions (the same for every run, so numbers from different runs compare):

* The equity curve is sampled once per bar, in quote currency, and is *anchored* at the
  initial capital just before the first bar: bar ``i``'s return is ``equity[i] / equity[i-1] - 1``
  with ``equity[-1] := initial_capital``. A run of ``n`` bars therefore has ``n`` returns, a
  single bar has one, and the compounded returns equal ``total_return`` exactly.
* Years have 365 days (crypto trades every day): ``periods_per_year = 365 * 86_400_000 / bar_ms``.
* ``sharpe = mean(r) / std(r, ddof=1) * sqrt(periods_per_year)``, risk-free rate 0.
* ``sortino = mean(r) / sqrt(mean(min(r, 0) ** 2)) * sqrt(periods_per_year)`` (target 0,
  downside deviation over *all* bars, the Sortino & Price definition).
* Sharpe, Sortino and volatility are 0 when there are too few returns or the (downside)
  deviation is zero up to float noise: the ratio is undefined there, and 0 keeps JSON finite.
* ``cagr = (final / initial) ** (1 / years) - 1`` with ``years = bars * bar_ms / 365 days``;
  -1 when the capital is gone; ``None`` when annualising would overflow a float (a short run
  with a large return, where a yearly rate means nothing).
* ``max_drawdown`` is the largest fall from a running peak of the anchored curve, as a positive
  fraction of that peak (0.25 means 25% below the peak).
* Trade statistics count closed round trips; a trip whose exit reason is ``unfilled`` bought
  nothing, so it is no trade: it is counted in ``unfilled_entries`` and under its own key in the
  per-exit-reason tables, and nowhere else.

JSON (``PerformanceStats.as_json_dict``): money is ``Decimal`` and serialised as a *string*
(exact, as in the ledger and the trade CSV; averages are rounded half-even to 1e-8); ratios
are finite floats; ``None`` (JSON null) marks a value that is undefined (``profit_factor``
with no losing trade, see ``cagr`` above).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, model_validator

from actors.domain.market_groups import gate_market
from actors.domain.model import DAY_MS, ZERO, ExitReason, RoundTrip, Side

YEAR_MS = 365 * DAY_MS
EXIT_REASONS: tuple[str, ...] = tuple(r.value for r in ExitReason)
CSV_COLUMNS = (
    "entry_time",
    "exit_time",
    "strategy",
    "market",
    "side",
    "qty",
    "entry_price",
    "exit_price",
    "exit_reason",
    "fees",
    "pnl",
    "position_id",
)
AVERAGE_QUANTUM = Decimal("1e-8")
_MAX_EXP = 700.0  # math.exp overflows a float just above 709
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

FloatArray = npt.NDArray[np.float64]


class PerformanceStats(BaseModel):
    """One run's statistics; every float is finite (checked), so the JSON never holds NaN or inf."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bars: int
    bar_ms: int
    start_ms: int | None
    end_ms: int | None
    initial_capital: Decimal
    final_equity: float
    total_return: float
    buy_and_hold_return: float
    excess_return: float
    cagr: float | None
    volatility: float
    sharpe: float
    sortino: float
    max_drawdown: float
    max_drawdown_duration_ms: int
    exposure: float
    trades: int
    unfilled_entries: int
    wins: int
    losses: int
    win_rate: float
    total_pnl: Decimal
    gross_profit: Decimal
    gross_loss: Decimal
    avg_trade_pnl: Decimal
    avg_win: Decimal
    avg_loss: Decimal
    avg_trade_return: float
    profit_factor: float | None
    best_trade: Decimal
    worst_trade: Decimal
    avg_holding_ms: float
    fees_paid: Decimal
    pnl_by_exit_reason: dict[str, Decimal]
    trades_by_exit_reason: dict[str, int]

    @model_validator(mode="after")
    def _finite(self) -> PerformanceStats:
        for name, value in self:
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{name} is not finite: {value}")
        missing = set(EXIT_REASONS) - set(self.pnl_by_exit_reason)
        if missing or set(EXIT_REASONS) - set(self.trades_by_exit_reason):
            raise ValueError(f"exit reasons missing from the tables: {sorted(missing)}")
        return self

    def as_json_dict(self) -> dict[str, Any]:
        """Plain JSON types: Decimals as exact strings, floats finite, undefined values as None."""
        return self.model_dump(mode="json")


# --------------------------------------------------------------------------- curve statistics


def periods_per_year(bar_ms: int) -> float:
    """Bars in a 365-day year: the annualisation factor's square is this."""
    if bar_ms <= 0:
        raise ValueError(f"bar_ms must be positive, got {bar_ms}")
    return YEAR_MS / bar_ms


def anchored_curve(equity: npt.ArrayLike, initial_capital: Decimal | float) -> FloatArray:
    """The equity curve with the initial capital prepended: the state before the first bar."""
    eq = np.asarray(equity, dtype=np.float64).reshape(-1)
    return np.concatenate([np.array([float(initial_capital)]), eq])


def simple_returns(curve: npt.ArrayLike) -> FloatArray:
    """Per-step simple returns; a step from a non-positive value (ruin) counts as 0, never NaN."""
    values = np.nan_to_num(np.asarray(curve, dtype=np.float64).reshape(-1), nan=0.0, posinf=0.0, neginf=0.0)
    if values.shape[0] < 2:
        return np.zeros(0, dtype=np.float64)
    prev, nxt = values[:-1], values[1:]
    safe = np.where(prev > 0, prev, 1.0)
    out = np.where(prev > 0, nxt / safe - 1.0, 0.0)
    return np.asarray(out, dtype=np.float64)


def _noise_floor(returns: FloatArray) -> float:
    """Deviation below which a series is treated as constant (float noise of compounding)."""
    mean_abs = float(np.mean(np.abs(returns))) if returns.shape[0] else 0.0
    return 1e-9 * max(mean_abs, 1e-6)


def sharpe_ratio(returns: npt.ArrayLike, bar_ms: int) -> float:
    """Annualised Sharpe of per-bar returns, risk-free 0; 0 when undefined (see module doc)."""
    r = np.asarray(returns, dtype=np.float64).reshape(-1)
    if r.shape[0] < 2:
        return 0.0
    sd = float(np.std(r, ddof=1))
    if not math.isfinite(sd) or sd <= _noise_floor(r):
        return 0.0
    return _finite(float(np.mean(r)) / sd * math.sqrt(periods_per_year(bar_ms)))


def sortino_ratio(returns: npt.ArrayLike, bar_ms: int) -> float:
    """Annualised Sortino (target 0, downside deviation over all bars); 0 when undefined."""
    r = np.asarray(returns, dtype=np.float64).reshape(-1)
    if r.shape[0] < 2:
        return 0.0
    downside = float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2)))
    if not math.isfinite(downside) or downside <= _noise_floor(r):
        return 0.0
    return _finite(float(np.mean(r)) / downside * math.sqrt(periods_per_year(bar_ms)))


def annual_volatility(returns: npt.ArrayLike, bar_ms: int) -> float:
    """Sample standard deviation of per-bar returns scaled by sqrt(periods per year)."""
    r = np.asarray(returns, dtype=np.float64).reshape(-1)
    if r.shape[0] < 2:
        return 0.0
    sd = float(np.std(r, ddof=1))
    if not math.isfinite(sd) or sd <= _noise_floor(r):
        return 0.0
    return _finite(sd * math.sqrt(periods_per_year(bar_ms)))


def drawdown_series(curve: npt.ArrayLike) -> FloatArray:
    """Fraction below the running peak at each point (0 at a new high, 0.25 = 25% under water)."""
    values = np.asarray(curve, dtype=np.float64).reshape(-1)
    if values.shape[0] == 0:
        return np.zeros(0, dtype=np.float64)
    peak = np.maximum.accumulate(values)
    safe = np.where(peak > 0, peak, 1.0)
    dd = np.where(peak > 0, 1.0 - values / safe, 0.0)
    return np.asarray(np.clip(np.nan_to_num(dd, nan=0.0), 0.0, None), dtype=np.float64)


def max_drawdown(curve: npt.ArrayLike) -> float:
    """Largest fall from a running peak, as a positive fraction of the peak."""
    dd = drawdown_series(curve)
    return float(dd.max()) if dd.shape[0] else 0.0


def longest_underwater_steps(curve: npt.ArrayLike) -> int:
    """Most consecutive steps spent below a previous peak (drawdown duration, in bars)."""
    under = drawdown_series(curve) > 0
    if not under.any():
        return 0
    # runs of True: the distance between the steps that are not under water around them
    edges = np.flatnonzero(np.concatenate(([True], ~under, [True])))
    return int(np.diff(edges).max()) - 1


def cagr(initial_capital: float, final_equity: float, bars: int, bar_ms: int) -> float | None:
    """Compound annual growth rate; None when annualising would overflow (see module doc)."""
    if bars <= 0 or initial_capital <= 0:
        return 0.0
    if final_equity <= 0:
        return -1.0
    years = bars * bar_ms / YEAR_MS
    exponent = math.log(final_equity / initial_capital) / years
    if exponent > _MAX_EXP:
        return None
    return _finite(math.expm1(exponent))


def buy_and_hold_return(close: npt.ArrayLike) -> float:
    """Return of holding the benchmark from the first close to the last; 0 when undefined."""
    c = np.asarray(close, dtype=np.float64).reshape(-1)
    if c.shape[0] == 0 or not c[0] > 0 or not math.isfinite(float(c[-1])):
        return 0.0
    return _finite(float(c[-1]) / float(c[0]) - 1.0)


def _average(total: Decimal, count: int) -> Decimal:
    """Mean money amount rounded to AVERAGE_QUANTUM (a quotient has no exact decimal anyway)."""
    return (total / count).quantize(AVERAGE_QUANTUM, ROUND_HALF_EVEN) if count else ZERO


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


# --------------------------------------------------------------------------- trade statistics


def _by_reason(trips: Iterable[RoundTrip]) -> tuple[dict[str, Decimal], dict[str, int]]:
    pnl: dict[str, Decimal] = dict.fromkeys(EXIT_REASONS, ZERO)
    count: dict[str, int] = dict.fromkeys(EXIT_REASONS, 0)
    for trip in trips:
        key = trip.exit_reason.value
        pnl[key] += trip.pnl
        count[key] += 1
    return pnl, count


def compute_stats(
    ts_ms: npt.ArrayLike,
    equity: npt.ArrayLike,
    bar_ms: int,
    exposure: npt.ArrayLike,
    benchmark_close: npt.ArrayLike,
    trips: Sequence[RoundTrip],
    initial_capital: Decimal,
    fees_paid: Decimal,
) -> PerformanceStats:
    """Every statistic of one run; arrays are per bar and of equal length (exposure and benchmark
    may also be empty, meaning unknown: 0 exposure, 0 buy-and-hold)."""
    ts = np.asarray(ts_ms, dtype=np.int64).reshape(-1)
    eq = np.asarray(equity, dtype=np.float64).reshape(-1)
    expo = np.asarray(exposure, dtype=np.float64).reshape(-1)
    bench = np.asarray(benchmark_close, dtype=np.float64).reshape(-1)
    n = int(eq.shape[0])
    periods_per_year(bar_ms)  # validates bar_ms
    if ts.shape[0] != n:
        raise ValueError(f"ts_ms has {ts.shape[0]} values, equity {n}")
    for name, arr in (("exposure", expo), ("benchmark_close", bench)):
        if arr.shape[0] not in (0, n):
            raise ValueError(f"{name} has {arr.shape[0]} values, equity {n}")

    initial = float(initial_capital)
    final = float(eq[-1]) if n else initial
    final = final if math.isfinite(final) else 0.0
    curve = anchored_curve(eq, initial_capital)
    returns = simple_returns(curve) if n else np.zeros(0, dtype=np.float64)
    total_return = _finite(final / initial - 1.0) if initial > 0 else 0.0
    bh = buy_and_hold_return(bench)

    traded = [t for t in trips if t.exit_reason is not ExitReason.UNFILLED]
    pnl_by_reason, count_by_reason = _by_reason(trips)
    pnls = [t.pnl for t in traded]
    winners = [p for p in pnls if p > 0]
    losers = [p for p in pnls if p < 0]
    gross_profit = sum(winners, ZERO)
    gross_loss = -sum(losers, ZERO)
    total_pnl = sum(pnls, ZERO)
    trade_returns = [float(t.pnl / (t.entry_price * t.qty)) for t in traded if t.entry_price * t.qty > 0]
    # undefined (None) without a losing trade: gross_profit / 0
    profit_factor = _finite(float(gross_profit / gross_loss)) if gross_loss > 0 else None

    return PerformanceStats(
        bars=n,
        bar_ms=bar_ms,
        start_ms=int(ts[0]) if n else None,
        end_ms=int(ts[-1]) if n else None,
        initial_capital=initial_capital,
        final_equity=final,
        total_return=total_return,
        buy_and_hold_return=bh,
        excess_return=_finite(total_return - bh),
        cagr=cagr(initial, final, n, bar_ms),
        volatility=annual_volatility(returns, bar_ms),
        sharpe=sharpe_ratio(returns, bar_ms),
        sortino=sortino_ratio(returns, bar_ms),
        max_drawdown=max_drawdown(curve),
        max_drawdown_duration_ms=longest_underwater_steps(curve) * bar_ms,
        exposure=_finite(float(np.mean(np.nan_to_num(expo)))) if expo.shape[0] else 0.0,
        trades=len(traded),
        unfilled_entries=len(trips) - len(traded),
        wins=len(winners),
        losses=len(losers),
        win_rate=len(winners) / len(traded) if traded else 0.0,
        total_pnl=total_pnl,
        gross_profit=gross_profit,
        gross_loss=gross_loss,
        avg_trade_pnl=_average(total_pnl, len(traded)),
        avg_win=_average(gross_profit, len(winners)),
        avg_loss=_average(-gross_loss, len(losers)),
        avg_trade_return=_finite(float(np.mean(trade_returns))) if trade_returns else 0.0,
        profit_factor=profit_factor,
        best_trade=max(pnls) if pnls else ZERO,
        worst_trade=min(pnls) if pnls else ZERO,
        avg_holding_ms=float(np.mean([t.holding_ms for t in traded])) if traded else 0.0,
        fees_paid=fees_paid,
        pnl_by_exit_reason=pnl_by_reason,
        trades_by_exit_reason=count_by_reason,
    )


# --------------------------------------------------------------------------- several strategies


def per_strategy_stats(
    ts_ms: npt.ArrayLike,
    bar_ms: int,
    equity_by_strategy: Mapping[str, npt.ArrayLike],
    initial_capital: Mapping[str, Decimal] | Decimal,
    benchmark_close: npt.ArrayLike,
    trips: Sequence[RoundTrip],
    exposure_by_strategy: Mapping[str, npt.ArrayLike] | None = None,
    fees_by_strategy: Mapping[str, Decimal] | None = None,
) -> dict[str, PerformanceStats]:
    """``compute_stats`` for each strategy's own sleeve of capital.

    Trips are assigned by ``RoundTrip.strategy``; trips of a strategy without an equity curve are
    ignored. A missing exposure series means 0; missing fees default to the sum of the
    strategy's trip fees (entry and exit fees are folded into each trip).
    """
    out: dict[str, PerformanceStats] = {}
    for name, eq in equity_by_strategy.items():
        own = [t for t in trips if t.strategy == name]
        capital = initial_capital[name] if isinstance(initial_capital, Mapping) else initial_capital
        exposure = (exposure_by_strategy or {}).get(name, np.zeros(0))
        if fees_by_strategy is not None and name in fees_by_strategy:
            fees = fees_by_strategy[name]
        else:
            fees = sum((t.fees for t in own), ZERO)
        out[name] = compute_stats(ts_ms, eq, bar_ms, exposure, benchmark_close, own, capital, fees)
    return out


def strategy_return_correlation(
    series: Mapping[str, npt.ArrayLike],
    kind: Literal["equity", "pnl", "returns"] = "equity",
) -> dict[str, dict[str, float]]:
    """Pearson correlation matrix of the strategies' per-bar returns.

    ``kind`` says what the series are: ``equity`` (per-bar simple returns are taken),
    ``pnl`` (cumulative P&L; per-bar increments are taken, right for sleeves of unequal size
    or P&L without a capital base) or ``returns`` (used as given). The matrix is symmetric with
    a unit diagonal; a strategy whose returns have zero variance (it never traded) has 0
    off-diagonal, as has every pair when there are fewer than two returns.
    """
    names = list(series)
    rows: list[FloatArray] = []
    for name in names:
        values = np.nan_to_num(np.asarray(series[name], dtype=np.float64).reshape(-1))
        if kind == "equity":
            rows.append(simple_returns(values))
        elif kind == "pnl":
            rows.append(np.diff(values) if values.shape[0] > 1 else np.zeros(0, dtype=np.float64))
        else:
            rows.append(values)
    lengths = {r.shape[0] for r in rows}
    if len(lengths) > 1:
        sizes = {name: r.shape[0] for name, r in zip(names, rows, strict=True)}
        raise ValueError(f"series lengths differ: {sizes}")
    centred = [r - r.mean() if r.shape[0] else r for r in rows]
    norms = [float(np.sqrt(np.dot(c, c))) for c in centred]
    varies = [
        r.shape[0] > 1 and norm / math.sqrt(r.shape[0]) > _noise_floor(r)
        for r, norm in zip(rows, norms, strict=True)
    ]
    matrix: dict[str, dict[str, float]] = {a: dict.fromkeys(names, 0.0) for a in names}
    for i, a in enumerate(names):
        matrix[a][a] = 1.0
        for j in range(i + 1, len(names)):
            b = names[j]
            value = 0.0
            if varies[i] and varies[j]:
                value = float(np.dot(centred[i], centred[j])) / (norms[i] * norms[j])
                value = min(1.0, max(-1.0, _finite(value)))
            matrix[a][b] = matrix[b][a] = value
    return matrix


# --------------------------------------------------------------------------- several markets


class TradeTally(NamedTuple):
    """Closed trades of one group (a market, a strategy): count, winners, P&L and fees."""

    trades: int
    wins: int
    pnl: Decimal
    fees: Decimal

    @property
    def win_rate(self) -> float:
        return self.wins / self.trades if self.trades else 0.0

    def as_json_dict(self) -> dict[str, Any]:
        return {
            "trades": self.trades,
            "wins": self.wins,
            "win_rate": self.win_rate,
            "pnl": str(self.pnl),
            "fees": str(self.fees),
        }


def tally_by(
    trips: Iterable[RoundTrip], key: Callable[[RoundTrip], str], keys: Iterable[str] = ()
) -> dict[str, TradeTally]:
    """Closed trades grouped by ``key`` (unfilled entries are no trades): ``keys`` first, in their
    order and listed even when idle, then any other group in sorted order."""
    groups: dict[str, list[RoundTrip]] = {k: [] for k in keys}
    extra: dict[str, list[RoundTrip]] = {}
    for t in trips:
        if t.exit_reason is ExitReason.UNFILLED:
            continue
        name = key(t)
        (groups if name in groups else extra).setdefault(name, []).append(t)
    groups.update(sorted(extra.items()))
    return {
        name: TradeTally(
            trades=len(group),
            wins=sum(1 for t in group if t.pnl > 0),
            pnl=sum((t.pnl for t in group), ZERO),
            fees=sum((t.fees for t in group), ZERO),
        )
        for name, group in groups.items()
    }


def market_tally(
    trips: Iterable[RoundTrip], conditions: Mapping[str, str] | None = None, keys: Iterable[str] = ()
) -> dict[str, TradeTally]:
    """Closed trades per market as the gates count markets (a Polymarket window's Up and Down are one:
    ``conditions`` from :func:`actors.domain.market_groups.conditions_of`), as :func:`tally_by`."""
    found = conditions or {}
    return tally_by(trips, lambda t: gate_market(t.market, found), keys)


def daily_pnl(
    trips: Iterable[RoundTrip],
    key: Callable[[RoundTrip], str],
    names: Sequence[str],
    start_ms: int,
    end_ms: int,
) -> dict[str, FloatArray]:
    """Realised P&L of each group per UTC day from ``start_ms``'s day to ``end_ms``'s (a trip counts
    on its exit day); groups outside ``names`` and trips outside the days are left out."""
    first = start_ms // DAY_MS
    days = max(1, end_ms // DAY_MS - first + 1)
    out = {name: np.zeros(days, dtype=np.float64) for name in names}
    for t in trips:
        series = out.get(key(t))
        day = t.exit_time_ms // DAY_MS - first
        if series is not None and 0 <= day < days:
            series[day] += float(t.pnl)
    return out


# --------------------------------------------------------------------------- trade log


def iso_utc(ms: int) -> str:
    """ISO 8601 UTC with milliseconds, e.g. 2024-01-02T03:04:05.678Z (integer-exact)."""
    stamp = _EPOCH + timedelta(milliseconds=int(ms))
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso_utc(text: str) -> int:
    """Milliseconds since the epoch of an ISO 8601 time; a time without zone is taken as UTC."""
    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    delta = stamp - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _plain(value: Decimal) -> str:
    """Fixed-point text of a Decimal (no exponent, so spreadsheets read it), still exact."""
    return format(value, "f")


def round_trips_csv(trips: Iterable[RoundTrip], path: Path) -> Path:
    """Write the trade log: one row per round trip, times in ISO UTC, money as exact decimals."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for t in trips:
            writer.writerow(
                [
                    iso_utc(t.entry_time_ms),
                    iso_utc(t.exit_time_ms),
                    t.strategy,
                    t.market,
                    t.side.value,
                    _plain(t.qty),
                    _plain(t.entry_price),
                    _plain(t.exit_price),
                    t.exit_reason.value,
                    _plain(t.fees),
                    _plain(t.pnl),
                    t.position_id,
                ]
            )
    return path


def read_round_trips_csv(path: Path) -> list[RoundTrip]:
    """Read back a trade log written by ``round_trips_csv`` (exact: Decimals from their text)."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        return [
            RoundTrip(
                position_id=row.get("position_id") or f"row-{i}",
                strategy=row["strategy"],
                market=row["market"],
                side=Side(row["side"]),
                qty=Decimal(row["qty"]),
                entry_time_ms=parse_iso_utc(row["entry_time"]),
                exit_time_ms=parse_iso_utc(row["exit_time"]),
                entry_price=Decimal(row["entry_price"]),
                exit_price=Decimal(row["exit_price"]),
                exit_reason=ExitReason(row["exit_reason"]),
                fees=Decimal(row["fees"]),
                pnl=Decimal(row["pnl"]),
            )
            for i, row in enumerate(reader)
        ]


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (0..1), linear interpolation between closest ranks (numpy's default); None if empty."""
    if not values:
        return None
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)
