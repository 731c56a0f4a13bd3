"""Walk-forward and sweeps: windows, grid, stability, stitching, no look-ahead, serial = Ray."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pytest
import ray

from actors.data.candles import CandleTable
from config.loader import load_settings
from config.models import MeanReversionConfig, Settings
from supervisor.research.backtest_setup import load_candles, select_strategies
from supervisor.research.performance import compute_stats
from supervisor.research.walkforward import (
    Grid,
    RayExecutor,
    SerialExecutor,
    SliceResult,
    WalkForwardError,
    Window,
    apply_point,
    make_windows,
    parse_duration,
    parse_grid,
    run_slice,
    stability,
    stitch,
    sweep,
    walk_forward,
)
from tests.paths import BTC_1M

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_local")]

DATA = BTC_1M
DAY = 86_400_000
GRID = ["bb_std=2,2.5", "rsi_buy=25,30"]


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(env={})


@pytest.fixture(scope="module")
def table() -> CandleTable:
    """Five days of the bundled 1m data: three 2-day/1-day windows."""
    full = load_candles(DATA)
    start = int(full.timestamp[0])
    return full.between(start, start + 5 * DAY)


def _comparable(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ("elapsed_s", "mode", "workers")}


# --------------------------------------------------------------------------- inputs


def test_parse_duration_reads_units_and_rejects_nonsense() -> None:
    assert parse_duration("14d") == 14 * DAY
    assert parse_duration("1.5h") == 5_400_000
    assert parse_duration("2w") == 14 * DAY
    assert parse_duration("90m") == 5_400_000
    for bad in ("14", "d", "0d", "-1d", "3y"):
        with pytest.raises(WalkForwardError, match="duration"):
            parse_duration(bad)


def test_parse_grid_reads_values_like_set_and_rejects_bad_items() -> None:
    grid = parse_grid(["bb_std=1.5,2,2.5", "rsi_buy=25,30", "regime_filter=true,false"])
    assert grid.keys == ("bb_std", "rsi_buy", "regime_filter")
    assert grid.values == ((1.5, 2, 2.5), (25, 30), (True, False))
    assert len(grid.points()) == 12
    assert grid.points()[0] == {"bb_std": 1.5, "rsi_buy": 25, "regime_filter": True}
    assert grid.points()[-1] == {"bb_std": 2.5, "rsi_buy": 30, "regime_filter": False}
    for bad in (["bb_std"], ["=1,2"], ["bb_std="], ["bb_std=1,1"], ["bb_std=1", "bb_std=2"], []):
        with pytest.raises(WalkForwardError):
            parse_grid(bad)


def test_apply_point_validates_through_the_strategy_model(settings: Settings) -> None:
    base, _ = select_strategies(settings, ["mean_reversion"])
    updated, shown = apply_point(base, "mean_reversion", {"bb_std": 2, "regime.period": 30})
    cfg = updated.strategy("mean_reversion")
    assert isinstance(cfg, MeanReversionConfig)
    assert cfg.bb_std == 2.0
    assert cfg.regime.period == 30
    assert shown == {"bb_std": 2.0, "regime.period": 30}
    own, _ = apply_point(base, "mean_reversion", {"exits.stop_pct": 0.01})
    exits = own.strategy("mean_reversion").exits
    assert exits is not None
    assert exits.stop_pct == 0.01
    assert exits.target_two_pct == base.exits.target_two_pct  # the rest from [exits]
    with pytest.raises(WalkForwardError, match=r"not a parameter of mean_reversion; known: .*bb_std"):
        apply_point(base, "mean_reversion", {"bb_sd": 2})
    with pytest.raises(WalkForwardError, match="rsi_buy"):
        apply_point(base, "mean_reversion", {"rsi_buy": 80})
    with pytest.raises(WalkForwardError, match="allocation"):
        apply_point(base, "mean_reversion", {"allocation": 0.95})


def test_rolling_windows_slide_by_the_test_length_and_anchored_grow() -> None:
    rolling = make_windows(0, 10 * DAY, 4 * DAY, 2 * DAY, anchored=False)
    assert [(w.train_start, w.train_end, w.test_start, w.test_end) for w in rolling] == [
        (0, 4 * DAY, 4 * DAY, 6 * DAY),
        (2 * DAY, 6 * DAY, 6 * DAY, 8 * DAY),
        (4 * DAY, 8 * DAY, 8 * DAY, 10 * DAY),
    ]
    anchored = make_windows(0, 11 * DAY, 4 * DAY, 2 * DAY, anchored=True)
    assert [(w.train_start, w.train_end, w.test_end) for w in anchored] == [
        (0, 4 * DAY, 6 * DAY),
        (0, 6 * DAY, 8 * DAY),
        (0, 8 * DAY, 10 * DAY),
    ]
    assert make_windows(0, 5 * DAY, 4 * DAY, 2 * DAY, anchored=False) == []


def test_stability_counts_choices_and_scores_the_modal_share() -> None:
    grid = Grid(("bb_std", "rsi_buy"), ((2.0, 2.5), (25, 30)))
    chosen = [
        {"bb_std": 2.5, "rsi_buy": 25},
        {"bb_std": 2.5, "rsi_buy": 30},
        {"bb_std": 2.5, "rsi_buy": 30},
        {"bb_std": 2.0, "rsi_buy": 30},
    ]
    found = stability(chosen, grid)
    assert found["keys"]["bb_std"] == {"counts": {"2.0": 1, "2.5": 3}, "modal": "2.5", "share": 0.75}
    assert found["keys"]["rsi_buy"]["counts"] == {"25": 1, "30": 3}
    assert found["score"] == pytest.approx(0.75)
    assert found["changes"] == 2


def _slice(ts: list[int], equity: list[float]) -> SliceResult:
    eq = np.asarray(equity)
    ts_arr = np.asarray(ts, dtype=np.int64)
    stats = compute_stats(ts_arr, eq, 60_000, np.zeros(len(ts)), eq, [], Decimal(10_000), Decimal(0))
    return SliceResult(stats, 0.0, ts_arr, eq, np.zeros(len(ts)), eq, [], Decimal(0), {})


def test_stitch_chains_each_windows_growth() -> None:
    first = _slice([60_000, 120_000], [10_100.0, 10_200.0])
    second = _slice([180_000, 240_000], [9_900.0, 10_050.0])
    ts, eq, _ex, _bench = stitch([first, second], Decimal(10_000))
    assert ts.tolist() == [60_000, 120_000, 180_000, 240_000]
    np.testing.assert_allclose(eq, [10_100.0, 10_200.0, 10_098.0, 10_251.0])


# --------------------------------------------------------------------------- runs


@pytest.fixture(scope="module")
def serial_walk(settings: Settings, table: CandleTable) -> Any:
    return walk_forward(
        settings,
        table,
        strategy="mean_reversion",
        grid=parse_grid(GRID),
        train_ms=2 * DAY,
        test_ms=DAY,
        exits="managed",
        executor=SerialExecutor(),
    )


def test_walk_forward_picks_the_best_train_point_and_trades_only_in_test_windows(serial_walk: Any) -> None:
    assert len(serial_walk.windows) == 3
    assert serial_walk.mode == "serial"
    for w in serial_walk.windows:
        scores = w.train_scores
        assert len(scores) == 4
        assert w.chosen_index == int(np.argmax(scores))
        point = serial_walk.grid.points()[w.chosen_index]
        assert w.chosen == {k: float(v) for k, v in point.items()}
        for trip in w.test.trips:
            assert w.window.test_start <= trip.entry_time_ms < w.window.test_end
        assert int(w.test.ts_ms[0]) == w.window.test_start + 60_000
        assert int(w.test.ts_ms[-1]) == w.window.test_end
    growth = np.prod([w.test.equity[-1] / 10_000.0 for w in serial_walk.windows])
    assert serial_walk.oos_equity[-1] == pytest.approx(10_000.0 * growth)
    assert serial_walk.oos.trades == sum(w.test.stats.trades for w in serial_walk.windows) > 0
    assert serial_walk.oos.bars == 3 * 1440
    doc = serial_walk.as_json_dict()
    assert doc["stability"]["score"] == serial_walk.stability["score"]
    assert len(doc["windows"]) == 3


def test_walk_forward_choice_ignores_test_window_data(
    settings: Settings, table: CandleTable, serial_walk: Any
) -> None:
    """No look-ahead: scrambling a window's test bars cannot change what its train run chose."""
    w = serial_walk.windows[0].window
    keep = table.timestamp < w.test_start
    scale = np.where(keep, 1.0, 1.0 + 0.01 * np.sin(np.arange(len(table))))
    cols = {
        k: (v * scale if k in ("open", "high", "low", "close") else v) for k, v in table.columns().items()
    }
    scrambled = CandleTable.from_columns(cols)
    again = walk_forward(
        settings,
        scrambled,
        strategy="mean_reversion",
        grid=parse_grid(GRID),
        train_ms=2 * DAY,
        test_ms=DAY,
        exits="managed",
    )
    assert again.windows[0].train_scores == serial_walk.windows[0].train_scores
    assert again.windows[0].chosen == serial_walk.windows[0].chosen


def test_test_window_trades_from_its_first_bar_with_the_initial_capital(
    settings: Settings, table: CandleTable
) -> None:
    """The warm-up (train bars) feeds the strategy only: the book starts flat at the test's start."""
    base, _ = select_strategies(settings, ["mean_reversion"])
    start = int(table.timestamp[0])
    window = Window(0, start, start + 2 * DAY, start + 2 * DAY, start + 3 * DAY)
    warm = run_slice(base, table, window.train_start, window.test_start, window.test_end, "sharpe")
    assert warm.stats.bars == 1440
    assert int(warm.ts_ms[0]) == window.test_start + 60_000
    assert warm.equity[0] == pytest.approx(10_000.0, rel=1e-3)
    assert all(window.test_start <= t.entry_time_ms < window.test_end for t in warm.trips)
    assert warm.trips


def test_walk_forward_on_ray_equals_serial(settings: Settings, table: CandleTable, serial_walk: Any) -> None:
    executor = RayExecutor(workers=2)
    parallel = walk_forward(
        settings,
        table,
        strategy="mean_reversion",
        grid=parse_grid(GRID),
        train_ms=2 * DAY,
        test_ms=DAY,
        exits="managed",
        executor=executor,
    )
    executor.close()
    assert ray.is_initialized()  # the module's Ray instance is not ours to stop
    assert parallel.mode == "ray"
    assert _comparable(parallel.as_json_dict()) == _comparable(serial_walk.as_json_dict())
    assert [t for w in parallel.windows for t in w.test.trips] == serial_walk.trips


def test_sweep_on_ray_equals_serial_and_ranks_by_objective(settings: Settings, table: CandleTable) -> None:
    grid = parse_grid(["bb_std=1.5,2,2.5"])
    serial = sweep(settings, table, strategy="mean_reversion", grid=grid, executor=SerialExecutor())
    parallel = sweep(settings, table, strategy="mean_reversion", grid=grid, executor=RayExecutor(workers=2))
    assert _comparable(parallel.as_json_dict()) == _comparable(serial.as_json_dict())
    objectives = [r["objective"] for r in serial.rows]
    assert serial.best["objective"] == max(objectives)
    assert [r["params"]["bb_std"] for r in serial.rows] == [1.5, 2.0, 2.5]


def test_walk_forward_rejects_too_short_data_and_unknown_objective(
    settings: Settings, table: CandleTable
) -> None:
    with pytest.raises(WalkForwardError, match="too short"):
        walk_forward(
            settings,
            table,
            strategy="mean_reversion",
            grid=parse_grid(GRID),
            train_ms=4 * DAY,
            test_ms=2 * DAY,
        )
    with pytest.raises(WalkForwardError, match="unknown objective"):
        walk_forward(
            settings,
            table,
            strategy="mean_reversion",
            grid=parse_grid(GRID),
            train_ms=DAY,
            test_ms=DAY,
            objective="luck",
        )
    with pytest.raises(WalkForwardError, match="polymarket_lag"):
        sweep(settings, table, strategy="polymarket_lag", grid=parse_grid(["edge=0.05,0.1"]))
