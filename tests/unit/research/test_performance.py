"""Performance statistics pinned on hand-computed series, the trade CSV, and the written report."""

from __future__ import annotations

import io
import json
import math
import statistics
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib import image as mpimg

from actors.domain.model import DAY_MS, MINUTE_MS, ExitReason, RoundTrip, Side
from supervisor.research.performance import (
    EXIT_REASONS,
    PerformanceStats,
    compute_stats,
    drawdown_series,
    iso_utc,
    longest_underwater_steps,
    parse_iso_utc,
    per_strategy_stats,
    read_round_trips_csv,
    round_trips_csv,
    strategy_return_correlation,
)
from supervisor.research.report import ProgressBar, downsample, write_report

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
ISSUE_EXIT_REASONS = ("target_one", "target_two", "stop", "time_exit", "trailing", "signal", "settlement")


def trip(
    pnl: str,
    reason: ExitReason = ExitReason.SIGNAL,
    strategy: str = "s1",
    entry_ms: int = T0,
    hold_ms: int = DAY_MS,
    fees: str = "0.1",
    qty: str = "1",
    entry_price: str = "100",
) -> RoundTrip:
    return RoundTrip(
        position_id=f"p-{strategy}-{entry_ms}-{pnl}-{reason.value}",
        strategy=strategy,
        market="binance:BTC/USDT",
        qty=Decimal(qty),
        entry_time_ms=entry_ms,
        exit_time_ms=entry_ms + hold_ms,
        entry_price=Decimal(entry_price),
        exit_price=Decimal(entry_price) + Decimal(pnl),
        exit_reason=reason,
        fees=Decimal(fees),
        pnl=Decimal(pnl),
    )


def stats_of(
    equity: list[float] | np.ndarray,
    trips: list[RoundTrip] | None = None,
    bar_ms: int = DAY_MS,
    capital: str = "100",
    exposure: list[float] | np.ndarray | None = None,
    close: list[float] | np.ndarray | None = None,
) -> PerformanceStats:
    eq = np.asarray(equity, dtype=np.float64)
    ts = T0 + np.arange(eq.shape[0], dtype=np.int64) * bar_ms
    return compute_stats(
        ts,
        eq,
        bar_ms,
        np.zeros(eq.shape[0]) if exposure is None else exposure,
        np.full(eq.shape[0], 10.0) if close is None else close,
        trips or [],
        Decimal(capital),
        sum((t.fees for t in trips or []), Decimal(0)),
    )


def strict_json(stats: PerformanceStats) -> str:
    """JSON text that fails on NaN/inf, as a strict consumer would."""
    return json.dumps(stats.as_json_dict(), allow_nan=False)


def equity_from_returns(returns: list[float], capital: float = 100.0) -> np.ndarray:
    return capital * np.cumprod(1.0 + np.asarray(returns))


# --------------------------------------------------------------------------- curve statistics


def test_known_curve_total_return_and_drawdown_match_hand_values() -> None:
    stats = stats_of([100, 120, 90, 110, 130])
    assert stats.total_return == pytest.approx(0.30)
    assert stats.final_equity == 130
    assert stats.max_drawdown == pytest.approx(0.25)  # peak 120 -> trough 90
    assert stats.max_drawdown_duration_ms == 2 * DAY_MS  # 90 and 110 are under the 120 peak
    assert stats.bars == 5
    assert stats.start_ms == T0
    assert stats.end_ms == T0 + 4 * DAY_MS


def test_drawdown_from_initial_capital_counts_first_bar_loss() -> None:
    stats = stats_of([80, 90], capital="100")
    assert stats.max_drawdown == pytest.approx(0.20)


def test_sharpe_and_sortino_match_definitions() -> None:
    returns = [0.01, -0.01, 0.02, 0.0]
    stats = stats_of(equity_from_returns(returns))
    expected = statistics.mean(returns) / statistics.stdev(returns) * math.sqrt(365)
    assert stats.sharpe == pytest.approx(expected, rel=1e-9)
    # downside deviation sqrt(mean([0, 1e-4, 0, 0])) = 0.005 equals the mean return
    assert stats.sortino == pytest.approx(math.sqrt(365), rel=1e-9)
    assert stats.volatility == pytest.approx(statistics.stdev(returns) * math.sqrt(365), rel=1e-9)


def test_sharpe_annualisation_uses_bar_size() -> None:
    returns = [0.01, -0.01, 0.02, 0.0]
    daily = stats_of(equity_from_returns(returns), bar_ms=DAY_MS)
    hourly = stats_of(equity_from_returns(returns), bar_ms=DAY_MS // 24)
    assert hourly.sharpe == pytest.approx(daily.sharpe * math.sqrt(24), rel=1e-9)


def test_constant_returns_sharpe_is_zero() -> None:
    stats = stats_of(equity_from_returns([0.001] * 50))
    assert stats.sharpe == 0.0
    assert stats.sortino == 0.0
    assert stats.volatility == 0.0
    assert stats.total_return > 0


def test_flat_equity_no_trades_json_has_no_nan() -> None:
    stats = stats_of([100.0] * 10)
    text = strict_json(stats)
    assert stats.sharpe == 0.0
    assert stats.sortino == 0.0
    assert stats.max_drawdown == 0.0
    assert stats.trades == 0
    assert stats.win_rate == 0.0
    assert stats.profit_factor is None
    assert json.loads(text)["profit_factor"] is None


def test_single_bar_stats_are_finite() -> None:
    stats = stats_of([110.0])
    strict_json(stats)
    assert stats.bars == 1
    assert stats.total_return == pytest.approx(0.10)
    assert stats.sharpe == 0.0


def test_empty_run_stats_are_finite() -> None:
    stats = stats_of([], close=[], exposure=[])
    strict_json(stats)
    assert stats.bars == 0
    assert stats.start_ms is None
    assert stats.total_return == 0.0


def test_ruined_equity_stays_finite() -> None:
    stats = stats_of([50.0, 0.0, 0.0, 10.0])
    strict_json(stats)
    assert stats.max_drawdown == pytest.approx(1.0)
    assert stats_of([50.0, 0.0]).cagr == -1.0


def test_doubling_over_a_year_cagr_is_one() -> None:
    equity = np.linspace(101.0, 200.0, 365)
    stats = stats_of(equity)
    assert stats.cagr == pytest.approx(1.0)


def test_huge_short_run_cagr_is_none() -> None:
    stats = stats_of([150.0, 200.0], bar_ms=MINUTE_MS)
    assert stats.cagr is None
    assert json.loads(strict_json(stats))["cagr"] is None


def test_buy_and_hold_and_exposure_match_hand_values() -> None:
    stats = stats_of(
        [100, 101, 102, 103], close=[50, 55, 40, 60], exposure=np.array([1, 0, 1, 1], dtype=bool)
    )
    assert stats.buy_and_hold_return == pytest.approx(0.2)
    assert stats.exposure == pytest.approx(0.75)
    assert stats.excess_return == pytest.approx(0.03 - 0.2)


def test_mismatched_lengths_raise() -> None:
    with pytest.raises(ValueError, match="benchmark_close"):
        stats_of([100, 101], close=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="bar_ms"):
        stats_of([100, 101], bar_ms=0)


# --------------------------------------------------------------------------- trade statistics


def test_trades_win_rate_and_profit_factor_match_hand_values() -> None:
    trips = [trip("10"), trip("-5"), trip("20"), trip("-5"), trip("0")]
    stats = stats_of([100, 120], trips)
    assert stats.trades == 5
    assert (stats.wins, stats.losses) == (2, 2)
    assert stats.win_rate == pytest.approx(0.4)
    assert stats.gross_profit == Decimal(30)
    assert stats.gross_loss == Decimal(10)
    assert stats.profit_factor == pytest.approx(3.0)
    assert stats.total_pnl == Decimal(20)
    assert stats.avg_trade_pnl == Decimal(4)
    assert stats.avg_win == Decimal(15)
    assert stats.avg_loss == Decimal(-5)
    assert (stats.best_trade, stats.worst_trade) == (Decimal(20), Decimal(-5))
    assert stats.avg_holding_ms == DAY_MS
    assert stats.fees_paid == Decimal("0.5")
    assert stats.avg_trade_return == pytest.approx(0.04)


def test_only_losses_profit_factor_is_zero() -> None:
    stats = stats_of([100, 90], [trip("-5"), trip("-5")])
    assert stats.profit_factor == 0.0
    assert stats.win_rate == 0.0


def test_pnl_by_exit_reason_has_every_key_and_sums_to_trip_pnl() -> None:
    trips = [
        trip("1.25", ExitReason.TARGET_ONE),
        trip("2.50", ExitReason.TARGET_TWO),
        trip("-3.10", ExitReason.STOP),
        trip("-0.40", ExitReason.STOP),
        trip("0.05", ExitReason.TIME_EXIT),
    ]
    stats = stats_of([100, 100.3], trips)
    for key in ISSUE_EXIT_REASONS:
        assert key in stats.pnl_by_exit_reason
        assert key in stats.trades_by_exit_reason
    assert set(stats.pnl_by_exit_reason) == set(EXIT_REASONS)
    assert sum(stats.pnl_by_exit_reason.values(), Decimal(0)) == sum((t.pnl for t in trips), Decimal(0))
    assert stats.pnl_by_exit_reason["stop"] == Decimal("-3.50")
    assert stats.trades_by_exit_reason["stop"] == 2
    assert stats.pnl_by_exit_reason["settlement"] == 0
    assert stats.trades_by_exit_reason["trailing"] == 0
    assert json.loads(strict_json(stats))["pnl_by_exit_reason"]["stop"] == "-3.50"


def test_unfilled_entry_is_not_a_trade() -> None:
    trips = [trip("4"), trip("0", ExitReason.UNFILLED, fees="0")]
    stats = stats_of([100, 104], trips)
    assert stats.trades == 1
    assert stats.unfilled_entries == 1
    assert stats.win_rate == 1.0
    assert stats.trades_by_exit_reason["unfilled"] == 1


def test_json_money_is_exact_strings() -> None:
    stats = stats_of([100, 100.1], [trip("0.1", fees="0.00012345")])
    data = json.loads(strict_json(stats))
    assert data["total_pnl"] == "0.1"
    assert data["fees_paid"] == "0.00012345"
    assert data["initial_capital"] == "100"
    assert isinstance(data["sharpe"], float)


# --------------------------------------------------------------------------- several strategies


def test_per_strategy_stats_splits_trips_and_fees() -> None:
    ts = T0 + np.arange(3, dtype=np.int64) * DAY_MS
    trips = [trip("5", strategy="a"), trip("-2", strategy="b", fees="0.3"), trip("1", strategy="c")]
    result = per_strategy_stats(
        ts,
        DAY_MS,
        {"a": [50, 52, 55], "b": [50, 49, 48]},
        {"a": Decimal(50), "b": Decimal(50)},
        [10, 11, 12],
        trips,
    )
    assert set(result) == {"a", "b"}
    assert result["a"].trades == 1
    assert result["a"].total_return == pytest.approx(0.1)
    assert result["b"].total_pnl == Decimal(-2)
    assert result["b"].fees_paid == Decimal("0.3")


def test_correlation_matrix_symmetric_with_unit_diagonal() -> None:
    base = np.array([0.01, -0.02, 0.03, 0.0, -0.01])
    series = {"a": base, "twice": 2 * base, "inverse": -base, "flat": np.zeros(5)}
    matrix = strategy_return_correlation(series, kind="returns")
    names = list(series)
    for x in names:
        assert matrix[x][x] == 1.0
        for y in names:
            assert matrix[x][y] == matrix[y][x]
            assert -1.0 <= matrix[x][y] <= 1.0
    assert matrix["a"]["twice"] == pytest.approx(1.0)
    assert matrix["a"]["inverse"] == pytest.approx(-1.0)
    assert matrix["a"]["flat"] == 0.0
    assert matrix["flat"]["inverse"] == 0.0


def test_correlation_of_equity_and_pnl_series_uses_increments() -> None:
    equity = {"a": [100.0, 110.0, 99.0, 120.0], "b": [50.0, 55.0, 49.5, 60.0]}
    assert strategy_return_correlation(equity)["a"]["b"] == pytest.approx(1.0)
    pnl = {"a": [0.0, 1.0, 3.0, 2.0], "b": [0.0, -1.0, -3.0, -2.0]}
    assert strategy_return_correlation(pnl, kind="pnl")["a"]["b"] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="lengths differ"):
        strategy_return_correlation({"a": [1.0, 2.0], "b": [1.0, 2.0, 3.0]})


def test_correlation_with_one_point_is_identity() -> None:
    matrix = strategy_return_correlation({"a": [100.0], "b": [100.0]})
    assert matrix == {"a": {"a": 1.0, "b": 0.0}, "b": {"a": 0.0, "b": 1.0}}


# --------------------------------------------------------------------------- trade log


def test_iso_utc_formats_and_parses_milliseconds_exactly() -> None:
    assert iso_utc(T0 + 1_234) == "2024-01-01T00:00:01.234Z"
    assert parse_iso_utc("2024-01-01T00:00:01.234Z") == T0 + 1_234
    assert parse_iso_utc("2024-01-01T00:00:00") == T0


def test_round_trips_csv_round_trip_is_exact(tmp_path: Path) -> None:
    trips = [
        trip("0.00012345", ExitReason.TARGET_ONE, fees="0.000001", qty="0.00100000"),
        trip("-1234.5678", ExitReason.STOP, entry_ms=T0 + 999, hold_ms=61_001),
        RoundTrip(
            position_id="big",
            strategy="s2",
            market="polymarket:123",
            side=Side.BUY,
            qty=Decimal("1E+3"),
            entry_time_ms=T0,
            exit_time_ms=T0 + 1,
            entry_price=Decimal("0.51"),
            exit_price=Decimal("1"),
            exit_reason=ExitReason.SETTLEMENT,
            fees=Decimal(0),
            pnl=Decimal("490.00"),
        ),
    ]
    path = round_trips_csv(trips, tmp_path / "out" / "trades.csv")
    lines = path.read_text().splitlines()
    assert lines[0].split(",")[:11] == [
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
    ]
    assert lines[3].split(",")[5] == "1000"  # fixed-point, no exponent
    back = read_round_trips_csv(path)
    assert back == trips
    assert [str(t.pnl) for t in back] == [str(t.pnl) for t in trips]


@settings(max_examples=40, deadline=None)
@given(
    pnl=st.decimals(min_value=-(10**9), max_value=10**9, places=8, allow_nan=False, allow_infinity=False),
    entry_ms=st.integers(min_value=0, max_value=4_102_444_800_000),
    hold_ms=st.integers(min_value=0, max_value=10 * 365 * DAY_MS),
)
def test_round_trips_csv_any_values_round_trip_exactly(pnl: Decimal, entry_ms: int, hold_ms: int) -> None:
    original = trip(str(pnl), entry_ms=entry_ms, hold_ms=hold_ms)
    with tempfile.TemporaryDirectory() as tmp:
        path = round_trips_csv([original], Path(tmp) / "t.csv")
        assert read_round_trips_csv(path) == [original]


# --------------------------------------------------------------------------- report


class SampleRun(NamedTuple):
    stats: PerformanceStats
    ts: np.ndarray
    equity: np.ndarray
    close: np.ndarray
    trips: list[RoundTrip]


def sample_run(n: int = 600) -> SampleRun:
    rng = np.random.default_rng(3)
    bar = 5 * MINUTE_MS
    ts = T0 + np.arange(n, dtype=np.int64) * bar
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.003, n)))
    equity = 10_000 * np.exp(np.cumsum(rng.normal(0.0001, 0.001, n)))
    trips = [
        trip("12.5", ExitReason.TARGET_ONE, entry_ms=int(ts[10]), hold_ms=20 * bar, entry_price="30000"),
        trip("-8", ExitReason.STOP, entry_ms=int(ts[100]), hold_ms=30 * bar, entry_price="30100"),
        trip("3", ExitReason.TIME_EXIT, entry_ms=int(ts[300]), hold_ms=50 * bar, entry_price="29900"),
    ]
    stats = compute_stats(ts, equity, bar, np.full(n, 0.5), close, trips, Decimal(10_000), Decimal("1.5"))
    return SampleRun(stats, ts, equity, close, trips)


def assert_png(path: Path, width: int = 1200, height: int = 500) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000
    pixels = mpimg.imread(path)
    assert pixels.shape[:2] == (height, width)
    assert float(np.std(pixels[..., :3])) > 0.01  # not a blank canvas


def test_write_report_writes_markdown_and_pngs(tmp_path: Path) -> None:
    run = sample_run()
    paths = write_report(
        tmp_path / "report",
        run.stats,
        run.ts,
        run.equity,
        run.close,
        run.trips,
        run.ts,
        run.close,
        "Test run",
        ["Fills modelled at bar close."],
    )
    names = {p.name for p in paths}
    assert names == {"report.md", "equity.png", "drawdown.png", "trades.png"}
    for path in paths:
        assert path.parent == tmp_path / "report"
        assert path.exists()
    for name in ("equity.png", "drawdown.png", "trades.png"):
        assert_png(tmp_path / "report" / name)
    text = (tmp_path / "report" / "report.md").read_text()
    assert text.startswith("# Test run")
    for needle in ("## Summary", "Sharpe", "Max drawdown", "| stop | 1 | -8.00 |", "](equity.png)"):
        assert needle in text
    assert "](drawdown.png)" in text
    assert "](trades.png)" in text
    assert "- Fills modelled at bar close." in text
    assert "| settlement | 0 |" in text


def test_write_report_without_trades_or_bars_still_writes(tmp_path: Path) -> None:
    stats = stats_of([], close=[], exposure=[])
    empty = np.zeros(0)
    paths = write_report(tmp_path, stats, empty, empty, empty, [], empty, empty, "Empty", [])
    assert len(paths) == 4
    for path in paths[1:]:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "No trades" in (tmp_path / "report.md").read_text()


def test_downsample_keeps_extremes_under_limit() -> None:
    n = 200_000
    x = np.arange(n, dtype=np.int64)
    y = np.sin(np.arange(n) / 500.0)
    y[123_457] = 9.0
    y[7] = -9.0
    dx, dy = downsample(x, y, max_points=5_000)
    assert len(dx) <= 5_000
    assert dy.max() == 9.0
    assert dy.min() == -9.0
    assert (dx[0], dx[-1]) == (0, n - 1)
    assert np.all(np.diff(dx) > 0)


# --------------------------------------------------------------------------- progress bar


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_bar_not_a_terminal_prints_nothing() -> None:
    stream = io.StringIO()
    bar = ProgressBar("run", stream=stream)
    for i in range(100):
        bar.update(i + 1, 100)
    bar.close()
    assert stream.getvalue() == ""


def test_progress_bar_throttles_redraws_and_finishes() -> None:
    stream = io.StringIO()
    clock = FakeClock()
    bar = ProgressBar("run", stream=stream, enabled=True, clock=clock)
    for i in range(10_000):
        clock.now = i * 0.001  # 10 s in total at 1 ms per step
        bar.update(i + 1, 10_000)
    bar.close()
    out = stream.getvalue()
    assert 90 <= bar.redraws <= 102  # about 10 a second, plus the final one
    assert "100.0%" in out
    assert "10,000/10,000" in out
    assert out.endswith("\n")


@pytest.mark.parametrize(
    ("curve", "expected"),
    [
        ([], 0),
        ([100.0], 0),
        ([100.0, 101.0, 102.0], 0),
        ([100.0, 99.0], 1),
        ([100.0, 99.0, 98.0, 100.0, 97.0], 2),
        ([100.0, 90.0, 95.0, 99.0, 101.0, 100.0, 100.5], 3),
        ([100.0, 90.0, 91.0, 92.0, 93.0], 4),
    ],
)
def test_longest_underwater_steps_counts_the_longest_run_below_a_peak(
    curve: list[float], expected: int
) -> None:
    assert longest_underwater_steps(curve) == expected


def test_longest_underwater_steps_equals_a_step_by_step_count_on_random_walks() -> None:
    rng = np.random.default_rng(7)
    for n in (2, 3, 10, 500):
        for _ in range(50):
            curve = 100.0 + np.cumsum(rng.normal(size=n))
            run = best = 0
            for flag in (drawdown_series(curve) > 0).tolist():
                run = run + 1 if flag else 0
                best = max(best, run)
            assert longest_underwater_steps(curve) == best
