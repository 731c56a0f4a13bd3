"""Backtest runner: the guide's rule on real data, fast path = driver, run rules, survivorship."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
import talib

from actors.core.indicators import RSI
from actors.data.candles import CandleTable, read_csv
from actors.domain.model import ExitReason, RoundTrip, Side, ceil_to, floor_to, to_decimal
from config.loader import load_settings
from config.models import ExitConfig, Settings, StrategyConfig
from supervisor.research.backtest import (
    BacktestResult,
    run_backtest,
    run_candles,
    run_polymarket,
    strategy_pnl_curves,
)
from supervisor.research.backtest_setup import (
    BacktestError,
    apply_exit_mode,
    exit_modes,
    load_candles,
    select_strategies,
)
from supervisor.research.fast_backtest import Bars, rsi_series, signal_pass
from tests.paths import REPO_ROOT

ROOT = REPO_ROOT
DATA = ROOT / "ops/data/binance/BTCUSDT-1m-2024-03-01_2024-03-22.csv"
MARKETS = ROOT / "ops/data/polymarket/BTC-5m-markets-2026-07-24.jsonl.gz"
TICKS = ROOT / "ops/data/polymarket/BTCUSD-chainlink-2026-07-24.csv.gz"
MARKET = "binance:BTC/USDT"
TICK = Decimal("0.01")


def on_market(cfg: StrategyConfig, market: str = MARKET) -> StrategyConfig:
    """The strategy on ``market`` alone, whichever markets the default config gives it."""
    return cfg.model_copy(update={"market": market, "markets": (market,)})


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(env={})


@pytest.fixture(scope="module")
def table() -> CandleTable:
    return load_candles(DATA)


@pytest.fixture(scope="module")
def guide_run(settings: Settings) -> BacktestResult:
    """mean_reversion, --exits signal, default settings, event-by-event driver (the paper path's core)."""
    return run_backtest(settings, strategies=["mean_reversion"], exits="signal", engine="driver", data=DATA)


# --------------------------------------------------------------------------- the guide's rule


def guide_round_trips(table: CandleTable) -> tuple[list[tuple[int, int]], int | None]:
    """Independent TA-Lib computation of the algo-trading guide's rule, long only.

    Buy at the next bar's open after a buy signal while flat; sell at the next bar's open after a sell
    signal. Returns (entry open time, exit open time) per round trip and the entry of a trade still open.
    """
    close = table.close
    upper, _middle, lower = talib.BBANDS(close, 20, 2.0, 2.0)  # matype defaults to 0: SMA
    rsi = talib.RSI(close, timeperiod=14)
    with np.errstate(invalid="ignore"):
        buy = (close < lower) & (rsi < 30.0)
        sell = (close > upper) & (rsi > 70.0)
    ts = table.timestamp
    trips: list[tuple[int, int]] = []
    entry_bar: int | None = None
    flat_from = 0  # first bar whose buy signal may open a trade
    for i in range(len(ts) - 1):
        if entry_bar is None and i >= flat_from and buy[i]:
            entry_bar = i + 1
        elif entry_bar is not None and i >= entry_bar and sell[i]:
            trips.append((int(ts[entry_bar]), int(ts[i + 1])))
            entry_bar, flat_from = None, i + 1
    return trips, None if entry_bar is None else int(ts[entry_bar])


def test_guide_rule_mean_reversion_signal_exits_trades_on_bar_after_each_signal(
    guide_run: BacktestResult, table: CandleTable
) -> None:
    expected, still_open = guide_round_trips(table)
    got = [(t.entry_time_ms, t.exit_time_ms) for t in guide_run.trips]
    assert len(expected) > 50
    assert got == expected
    assert all(t.exit_reason is ExitReason.SIGNAL for t in guide_run.trips)
    assert guide_run.open_positions == (1 if still_open is not None else 0)


def test_guide_rule_fills_are_the_next_open_with_slippage(
    guide_run: BacktestResult, table: CandleTable
) -> None:
    opens = dict(zip(table.timestamp.tolist(), table.open.tolist(), strict=True))
    slip = Decimal("0.001")
    for trip in guide_run.trips:
        entry_open = to_decimal(opens[trip.entry_time_ms])
        exit_open = to_decimal(opens[trip.exit_time_ms])
        assert trip.entry_price == ceil_to(entry_open * (1 + slip), TICK)
        assert trip.exit_price == floor_to(exit_open * (1 - slip), TICK)
        taker = Decimal("0.002")
        fees = (trip.entry_price * trip.qty * taker).quantize(Decimal("1e-8"), "ROUND_DOWN") + (
            trip.exit_price * trip.qty * taker
        ).quantize(Decimal("1e-8"), "ROUND_DOWN")
        assert trip.fees == fees
        assert trip.pnl == (trip.exit_price - trip.entry_price) * trip.qty - fees


def test_candle_backtest_reports_liquidity_gate_as_skipped_on_every_entry_signal(
    guide_run: BacktestResult,
) -> None:
    buys = guide_run.counters["signals"]["mean_reversion:buy"]
    assert guide_run.counters["skipped_gates"] == {"liquidity": buys}
    doc = guide_run.as_json_dict()
    assert doc["skipped_gates"] == {"liquidity": buys}
    assert any("SKIPPED" in note and "liquidity" in note for note in doc["notes"])


def test_backtest_json_has_every_headline_field_and_reconciles(guide_run: BacktestResult) -> None:
    doc = json.loads(json.dumps(guide_run.as_json_dict(), allow_nan=False))
    for key in (
        "bars",
        "trades",
        "total_return",
        "buy_and_hold_return",
        "max_drawdown",
        "win_rate",
        "sharpe",
        "sortino",
        "cagr",
        "exposure",
        "fees_paid",
        "pnl_by_exit_reason",
        "elapsed_s",
        "skipped_gates",
        "rejections",
        "reconciliation_difference",
    ):
        assert key in doc, key
    reasons = {"target_one", "target_two", "stop", "time_exit", "trailing", "signal", "settlement"}
    assert reasons <= set(doc["pnl_by_exit_reason"])
    assert Decimal(doc["reconciliation_difference"]) == 0
    assert doc["bars"] == 30_900
    assert doc["trades"] == len(guide_run.trips)
    assert Decimal(doc["pnl_by_exit_reason"]["signal"]) == sum((t.pnl for t in guide_run.trips), Decimal(0))
    final = Decimal(doc["reconciliation"]["lhs"])
    assert doc["total_return"] == pytest.approx(float(final / Decimal(10_000) - 1), abs=1e-12)


# --------------------------------------------------------------------------- fast path = driver


@pytest.mark.parametrize("strategy", ["mean_reversion", "momentum_breakout"])
@pytest.mark.parametrize("exits", ["signal", "managed"])
def test_fast_path_and_driver_produce_identical_trades_and_curves(
    settings: Settings, table: CandleTable, strategy: str, exits: str
) -> None:
    run, _ = select_strategies(settings, [strategy])
    run = apply_exit_mode(run, "signal" if exits == "signal" else "managed")
    driver = run_candles(run, table, engine="driver")
    fast = run_candles(run, table, engine="fast")
    assert fast.engine == "fast"
    assert fast.signal_methods == {strategy: "vectorised"}
    assert fast.trips == driver.trips
    np.testing.assert_array_equal(fast.equity, driver.equity)
    np.testing.assert_array_equal(fast.exposure, driver.exposure)
    assert fast.counters == driver.counters
    assert fast.reconciliation == driver.reconciliation
    assert fast.stats == driver.stats
    if strategy == "mean_reversion" or exits == "managed":
        assert len(fast.trips) > 10  # a parity of nothing would prove nothing


def test_ml_momentum_swap_delay_gives_identical_trades_in_fast_path_and_driver(
    settings: Settings, table: CandleTable
) -> None:
    """The fast path runs ml_momentum's real core: the delayed swap holds there as in the driver."""
    small = {"n_estimators": 10, "min_train_rows": 300, "max_train_rows": 2000, "retrain_every": 720}
    runs = {}
    for delay in (60, 0):
        base, _ = select_strategies(settings, ["ml_momentum"])
        ml = on_market(base.strategies[0]).model_copy(update=small | {"model_swap_delay_bars": delay})
        runs[delay] = base.model_copy(update={"strategies": [ml]})
    table = table.between(None, int(table.timestamp[0]) + 8 * 86_400_000)
    driver = run_candles(runs[60], table, engine="driver")
    fast = run_candles(runs[60], table, engine="fast")
    assert fast.signal_methods["ml_momentum"].startswith("core")
    assert fast.trips == driver.trips
    np.testing.assert_array_equal(fast.equity, driver.equity)
    assert fast.counters == driver.counters
    assert len(fast.trips) > 10
    assert run_candles(runs[0], table, engine="fast").trips != fast.trips  # the delay is honoured


def test_fast_path_with_warmup_matches_driver_and_trades_only_after_warmup(
    settings: Settings, table: CandleTable
) -> None:
    run, _ = select_strategies(settings, ["mean_reversion"])
    start = int(table.timestamp[0]) + 3 * 86_400_000
    part = table.between(None, start + 4 * 86_400_000)
    fast = run_candles(run, part, trade_from_ms=start, engine="fast")
    driver = run_candles(run, part, trade_from_ms=start, engine="driver")
    assert fast.trips == driver.trips
    np.testing.assert_array_equal(fast.equity, driver.equity)
    assert fast.trips
    assert min(t.entry_time_ms for t in fast.trips) >= start
    assert int(fast.ts_ms[0]) == start + 60_000  # the first traded bar's close
    assert fast.data["warmup_bars"] == 3 * 1440


def test_warmup_run_ignores_bars_after_its_end_and_before_its_start(
    settings: Settings, table: CandleTable
) -> None:
    """No look-ahead: what lies outside [warm-up start, end) cannot change a run."""
    run, _ = select_strategies(settings, ["mean_reversion"])
    a = int(table.timestamp[0]) + 86_400_000
    b, c = a + 2 * 86_400_000, a + 5 * 86_400_000
    base = run_candles(run, table.between(a, c), trade_from_ms=b)
    cols = table.columns()
    scale = np.where((table.timestamp >= c) | (table.timestamp < a), 1.5, 1.0)
    altered = CandleTable.from_columns(
        {k: v * scale if k in ("open", "high", "low", "close") else v for k, v in cols.items()}
    )
    other = run_candles(run, altered.between(a, c), trade_from_ms=b)
    assert other.trips == base.trips
    np.testing.assert_array_equal(other.equity, base.equity)


def test_rsi_series_is_bit_identical_to_streaming_rsi(table: CandleTable) -> None:
    closes = table.close.tolist()
    core = RSI(14)
    reference = np.array([core.update(x) for x in closes])
    np.testing.assert_array_equal(rsi_series(closes, 14), reference)


@pytest.mark.parametrize("strategy", ["mean_reversion", "momentum_breakout"])
def test_vectorised_signals_equal_the_core_signals(
    settings: Settings, table: CandleTable, strategy: str
) -> None:
    bars = Bars.from_table(table, MARKET)
    cfg = on_market(settings.strategy(strategy))
    fast = signal_pass([cfg], bars)
    core = signal_pass([cfg], bars, vectorise=False)
    assert fast.methods == {strategy: "vectorised"}
    assert core.methods[strategy].startswith("core")
    assert sorted(fast.by_bar) == sorted(core.by_bar)
    assert fast.count > 100
    for i, signals in core.by_bar.items():
        (a,), (b,) = fast.by_bar[i], signals
        assert (a.side, a.ts_ms, a.price) == (b.side, b.ts_ms, b.price)
        assert (a.strategy, a.market) == (b.strategy, b.market)
        assert a.strength == pytest.approx(b.strength, rel=1e-12)


def test_regime_filtered_mean_reversion_uses_the_exact_core_pass(
    settings: Settings, table: CandleTable
) -> None:
    cfg = settings.strategy("mean_reversion").model_copy(update={"regime_filter": True})
    bars = Bars.from_table(table.slice(0, 5000), MARKET)
    found = signal_pass([cfg], bars)
    assert found.methods["mean_reversion"].startswith("core (regime filter")


def _series_touching_lower_band() -> np.ndarray:
    """A falling series whose last close sits on its own lower Bollinger band (to float precision)."""
    prices = [100.0 - 0.5 * i + (0.3 if i % 3 == 0 else 0.0) for i in range(40)]
    head = np.array(prices[-19:])

    def gap(x: float) -> float:
        window = np.append(head, x)
        return float(x - (window.mean() - 2.0 * window.std()))

    lo, hi = head[-1] - 20.0, head[-1]
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if gap(mid) < 0:
            lo = mid
        else:
            hi = mid
    return np.array([*prices, hi])


def test_signal_pass_sends_a_strategy_with_an_ambiguous_bar_to_the_exact_core(settings: Settings) -> None:
    closes = _series_touching_lower_band()
    n = closes.shape[0]
    ts = 1_709_251_200_000 + 60_000 * np.arange(n, dtype=np.int64)
    table = CandleTable.from_columns(
        {
            "timestamp": ts,
            "open": closes,
            "high": closes + 0.1,
            "low": closes - 0.1,
            "close": closes,
            "volume": np.ones(n),
        }
    )
    bars = Bars.from_table(table, MARKET)
    rsi = rsi_series(closes.tolist(), 14)
    assert rsi[-1] < 30.0  # the buy side is live: only the band decides
    found = signal_pass([settings.strategy("mean_reversion")], bars)
    assert found.methods["mean_reversion"] == "core (1 ambiguous bar(s))"
    exact = signal_pass([settings.strategy("mean_reversion")], bars, vectorise=False)
    assert found.by_bar.keys() == exact.by_bar.keys()


# --------------------------------------------------------------------------- settings for a run


def test_single_named_strategy_gets_all_investable_capital(settings: Settings) -> None:
    run, notes = select_strategies(settings, ["mean_reversion"])
    assert [s.name for s in run.strategies] == ["mean_reversion"]
    assert run.strategies[0].allocation == pytest.approx(1.0 - settings.portfolio.cash_reserve)
    assert any("Single-strategy run" in n for n in notes)


def test_portfolio_run_keeps_config_allocations_and_leaves_out_polymarket(settings: Settings) -> None:
    run, notes = select_strategies(settings)
    assert [s.name for s in run.strategies] == ["mean_reversion", "ml_momentum", "momentum_breakout"]
    assert [s.allocation for s in run.strategies] == [0.4, 0.3, 0.1]
    assert any("polymarket_lag" in n for n in notes)


def test_selecting_unknown_or_mixed_strategies_is_an_error(settings: Settings) -> None:
    with pytest.raises(BacktestError, match=r"unknown strategy 'nope'.*mean_reversion"):
        select_strategies(settings, ["nope"])
    with pytest.raises(BacktestError, match="separately"):
        select_strategies(settings, ["mean_reversion", "polymarket_lag"])


def test_disabled_strategy_named_explicitly_is_enabled(settings: Settings) -> None:
    off = settings.model_copy(
        update={
            "strategies": [
                s.model_copy(update={"enabled": s.name != "momentum_breakout"}) for s in settings.strategies
            ]
        }
    )
    run, _ = select_strategies(off, ["momentum_breakout"])
    assert run.strategies[0].enabled


def test_exit_mode_sets_managed_on_top_level_and_strategy_exits(settings: Settings) -> None:
    own = ExitConfig(managed=True, stop_pct=0.05)
    strategies = [
        s.model_copy(update={"exits": own}) if s.name == "mean_reversion" else s for s in settings.strategies
    ]
    base = settings.model_copy(update={"strategies": strategies})
    signal = apply_exit_mode(base, "signal")
    assert not signal.exits.managed
    assert set(exit_modes(signal).values()) == {False}
    mr = signal.strategy("mean_reversion")
    assert mr.exits is not None
    assert mr.exits.stop_pct == 0.05
    managed = apply_exit_mode(base, "managed")
    assert set(exit_modes(managed).values()) == {True}
    assert apply_exit_mode(base, None) is base
    assert exit_modes(base)["polymarket_lag"] is False  # as configured: hold to settlement


def test_load_candles_cleans_csv_duplicates_and_zero_volume(tmp_path: Path) -> None:
    raw = read_csv(DATA).slice(0, 100)
    path = tmp_path / "dirty.csv"
    rows = ["timestamp,open,high,low,close,volume"]
    for i in [*range(100), 10]:
        volume = 0.0 if i == 20 else raw.volume[i]
        rows.append(f"{raw.timestamp[i]},{raw.open[i]},{raw.high[i]},{raw.low[i]},{raw.close[i]},{volume}")
    path.write_text("\n".join(rows) + "\n")
    loaded = load_candles(path)
    assert len(loaded) == 99
    assert loaded.provenance["cleaning"]["duplicates_removed"] == 1
    assert loaded.provenance["cleaning"]["zero_volume_dropped"] == 1
    with pytest.raises(BacktestError, match="no such data file"):
        load_candles(tmp_path / "missing.csv")


# --------------------------------------------------------------------------- several strategies


def _trip(strategy: str, exit_ms: int, pnl: str) -> RoundTrip:
    return RoundTrip(
        position_id=f"{strategy}-{exit_ms}",
        strategy=strategy,
        market=MARKET,
        side=Side.BUY,
        qty=Decimal(1),
        entry_time_ms=exit_ms - 1,
        exit_time_ms=exit_ms,
        entry_price=Decimal(1),
        exit_price=Decimal(1),
        exit_reason=ExitReason.SIGNAL,
        fees=Decimal(0),
        pnl=Decimal(pnl),
    )


def test_strategy_pnl_curves_count_each_trip_at_its_exit_time() -> None:
    grid = np.array([10, 20, 30, 40], dtype=np.int64)
    trips = [_trip("a", 20, "5"), _trip("b", 25, "-2"), _trip("a", 40, "1.5"), _trip("a", 45, "100")]
    curves = strategy_pnl_curves(grid, trips, ["a", "b", "c"])
    np.testing.assert_array_equal(curves["a"], [0.0, 5.0, 5.0, 6.5])
    np.testing.assert_array_equal(curves["b"], [0.0, 0.0, -2.0, -2.0])
    np.testing.assert_array_equal(curves["c"], [0.0, 0.0, 0.0, 0.0])


def test_portfolio_backtest_breaks_down_per_strategy_with_correlations(
    settings: Settings, tmp_path: Path
) -> None:
    pair = [on_market(s) for s in settings.strategies if s.name in ("mean_reversion", "momentum_breakout")]
    two = settings.model_copy(update={"strategies": pair})
    result = run_backtest(two, exits="managed", data=DATA)
    assert set(result.per_strategy) == {"mean_reversion", "momentum_breakout"}
    for name, stats in result.per_strategy.items():
        own = [t for t in result.trips if t.strategy == name]
        assert stats.trades == len(own) > 0
        assert stats.total_pnl == sum((t.pnl for t in own), Decimal(0))
        assert result.strategy_pnl[name][-1] == pytest.approx(float(stats.total_pnl))
    corr = result.correlation
    assert corr["mean_reversion"]["mean_reversion"] == 1.0
    assert corr["mean_reversion"]["momentum_breakout"] == corr["momentum_breakout"]["mean_reversion"]
    assert -1.0 <= corr["mean_reversion"]["momentum_breakout"] < 1.0
    written = result.write_report(tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert "## Correlation of strategy returns" in text
    assert "strategies.png" in text
    assert (tmp_path / "strategies.png") in written


# --------------------------------------------------------------------------- Polymarket, survivorship


def polymarket_slice(tmp_path: Path, count: int = 24) -> tuple[Path, Path]:
    """The first ``count`` markets of the bundled day and the Chainlink ticks up to their end."""
    with gzip.open(MARKETS, "rt") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    rows.sort(key=lambda r: r["start_sec"])
    chosen = rows[:count]
    end_ms = max(r["end_sec"] for r in chosen) * 1000 + 1_000
    markets = tmp_path / "markets.jsonl.gz"
    with gzip.open(markets, "wt") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in chosen)
    ticks = tmp_path / "ticks.csv.gz"
    with gzip.open(TICKS, "rt") as src, gzip.open(ticks, "wt") as dst:
        dst.write(src.readline())
        for line in src:
            if int(line.split(",", 1)[0]) <= end_ms:
                dst.write(line)
    return markets, ticks


def test_polymarket_markets_ending_mid_run_keep_their_trades_and_losses(
    settings: Settings, tmp_path: Path
) -> None:
    markets, ticks = polymarket_slice(tmp_path)
    replay = settings.replay.model_copy(update={"polymarket_markets": markets, "chainlink_ticks": ticks})
    run, _ = select_strategies(settings.model_copy(update={"replay": replay}), ["polymarket_lag"])
    result = run_polymarket(run)
    end = int(result.ts_ms[-1])
    assert result.trips
    losers = [t for t in result.trips if t.exit_price == 0]
    assert losers, "some tokens resolved to 0 in this slice"
    assert all(t.exit_reason is ExitReason.SETTLEMENT for t in result.trips)
    assert any(t.exit_time_ms < end - 3_600_000 for t in losers)  # ended well before the run did
    assert all(t.pnl < 0 for t in losers)
    assert result.stats.losses >= len(losers)
    assert result.stats.total_pnl == sum((t.pnl for t in result.trips), Decimal(0))
    assert result.open_positions == 0
    assert result.equity[-1] == pytest.approx(float(run.portfolio.initial_capital + result.stats.total_pnl))
    assert result.reconciliation["difference"] == 0
    assert any("MODELLED" in n for n in result.notes)
    assert any("REAL" in n for n in result.notes)


def test_polymarket_backtest_refuses_data_file_and_fast_engine(settings: Settings) -> None:
    with pytest.raises(BacktestError, match="--set"):
        run_backtest(settings, strategies=["polymarket_lag"], data=DATA)
    with pytest.raises(BacktestError, match="driver"):
        run_backtest(settings, strategies=["polymarket_lag"], engine="fast")
