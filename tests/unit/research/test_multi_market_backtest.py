"""Backtests over several markets: each market trades as it does alone, data per market, the breakdown."""

from __future__ import annotations

import itertools
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from actors.domain.model import RoundTrip
from config.loader import load_settings
from config.models import BUNDLED_CANDLES, Settings
from supervisor.research.backtest import BacktestResult, run_candles
from supervisor.research.backtest_setup import (
    BacktestError,
    MarketCandles,
    apply_exit_mode,
    candle_files,
    load_market_candles,
    parse_data_spec,
    revalidated,
    select_strategies,
)
from tests.paths import REPO_ROOT

MARKETS = tuple(BUNDLED_CANDLES)
"""The four bundled 1m markets (BTC, ETH, SOL, XRP), 2024-10-01 .. 2024-11-04, same timestamps."""
NOTIONAL = Decimal(50)
"""Every entry is sized down to this: far below 2% x strength (>= 0.5) of the equity, so a size never
depends on what the other markets did to the equity (the one way sizing could couple markets)."""


def loose(settings: Settings, markets: tuple[str, ...] = MARKETS, **portfolio: object) -> Settings:
    """mean_reversion on ``markets`` with portfolio limits no cross-market gate reaches."""
    limits: dict[str, object] = {
        "max_order_notional": NOTIONAL,
        "max_concurrent_positions": 10,
        "max_per_correlation_group": 10,
        **portfolio,
    }
    strategies = [
        s.model_copy(update={"market": markets[0], "markets": markets}) if s.name == "mean_reversion" else s
        for s in settings.strategies
    ]
    return revalidated(
        settings.model_copy(
            update={"strategies": strategies, "portfolio": settings.portfolio.model_copy(update=limits)}
        )
    )


def mean_reversion(settings: Settings, exits: str) -> Settings:
    run, _notes = select_strategies(settings, ["mean_reversion"])
    return apply_exit_mode(run, "signal" if exits == "signal" else "managed")


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(env={})


@pytest.fixture(scope="module")
def candles() -> MarketCandles:
    return load_market_candles({m: REPO_ROOT / path for m, path in BUNDLED_CANDLES.items()})


_RUNS: dict[str, BacktestResult] = {}
DAYS = {"signal": 36, "managed": 14}
"""Days of data per exit mode: all of it with signal exits, two weeks with the (slower) managed exits."""


def data_for(candles: MarketCandles, exits: str) -> MarketCandles:
    return candles.between(None, int(candles.tables[MARKETS[0]].timestamp[0]) + DAYS[exits] * 86_400_000)


def four_markets(settings: Settings, candles: MarketCandles, exits: str) -> BacktestResult:
    """mean_reversion over the four markets (one run per exit mode, shared by the tests)."""
    if exits not in _RUNS:
        _RUNS[exits] = run_candles(mean_reversion(loose(settings), exits), data_for(candles, exits))
    return _RUNS[exits]


def trade(t: RoundTrip) -> tuple[object, ...]:
    return (t.position_id, t.entry_time_ms, t.exit_time_ms, t.qty, t.entry_price, t.exit_price, t.exit_reason)


# --------------------------------------------------------------------------- the done-when


@pytest.mark.parametrize("exits", ["signal", "managed"])
def test_four_market_backtest_trades_each_market_exactly_as_its_single_market_backtest(
    settings: Settings, candles: MarketCandles, exits: str
) -> None:
    multi = four_markets(settings, candles, exits)
    data = data_for(candles, exits)
    bars = len(data.tables[MARKETS[0]])
    assert multi.engine == "driver"
    assert multi.stats.bars == bars  # the common clock: the four markets share their timestamps
    assert multi.data["bars"] == 4 * bars
    assert bars == (50_000 if exits == "signal" else 14 * 1440)
    # the premise: every size is the cap's (sized at the signal's close; the fill adds slippage)
    assert all(t.entry_price * t.qty <= NOTIONAL * Decimal("1.01") for t in multi.trips)
    doc = multi.as_json_dict()
    rejections = 0
    for market in MARKETS:
        alone = run_candles(
            mean_reversion(loose(settings, (market,)), exits),
            MarketCandles.of({market: data.tables[market]}),
        )
        assert alone.engine == "fast"  # so the driver's merged run is checked against the fast path too
        mine = [t for t in multi.trips if t.market == market]
        assert len(alone.trips) > 40
        assert [trade(t) for t in mine] == [trade(t) for t in alone.trips]
        assert mine == alone.trips  # fees and P&L too, to the last digit
        assert doc["trades_by_market"][market] == alone.stats.trades
        assert Decimal(doc["pnl_by_market"][market]) == alone.stats.total_pnl
        assert doc["per_market"][market]["buy_and_hold_return"] == alone.stats.buy_and_hold_return
        rejections += sum(alone.counters["rejections"].values())
    assert sum(multi.counters["rejections"].values()) == rejections
    assert Decimal(multi.reconciliation["difference"]) == 0


def test_four_market_benchmark_is_the_equal_weight_buy_and_hold_of_the_markets(
    settings: Settings, candles: MarketCandles
) -> None:
    multi = four_markets(settings, candles, "signal")
    doc = multi.as_json_dict()
    each = [doc["per_market"][m]["buy_and_hold_return"] for m in MARKETS]
    assert len(set(each)) == 4
    assert multi.stats.buy_and_hold_return == pytest.approx(float(np.mean(each)), abs=1e-12)
    assert multi.benchmark[0] == pytest.approx(1.0)
    assert sum(doc["trades_by_market"].values()) == doc["trades"]
    assert sum(Decimal(v) for v in doc["pnl_by_market"].values()) == multi.stats.total_pnl
    corr = doc["market_correlation"]
    assert list(corr) == list(MARKETS)
    assert 0.5 < corr["binance:BTC/USDT"]["binance:ETH/USDT"] < 1.0  # crypto moves together
    pairs = doc["pair_correlation"]
    assert list(pairs) == [f"mean_reversion@{m}" for m in MARKETS]
    assert all(pairs[a][b] == pairs[b][a] for a in pairs for b in pairs)


def test_four_market_report_has_a_market_table_both_correlations_and_a_panel_per_market(
    settings: Settings, candles: MarketCandles, tmp_path: Path
) -> None:
    multi = four_markets(settings, candles, "signal")
    written = multi.write_report(tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert "## Markets in the portfolio" in text
    for market in MARKETS:
        assert f"| {market} | 50,000 | {multi.as_json_dict()['trades_by_market'][market]:,} |" in text
    assert "## Correlation of market returns" in text
    assert "## Correlation of strategy/market P&L" in text
    assert "| mean_reversion@binance:XRP/USDT |" in text
    assert (tmp_path / "trades.png") in written
    assert "binance:SOL/USDT" in "\n".join(multi.summary_lines())


# --------------------------------------------------------------------------- gates that do interact


def test_one_position_limit_across_markets_never_holds_two_and_trades_less_than_the_markets_alone(
    settings: Settings, candles: MarketCandles
) -> None:
    two = ("binance:BTC/USDT", "binance:ETH/USDT")
    start = int(candles.tables[two[0]].timestamp[0])
    week = MarketCandles.of({m: candles.tables[m] for m in two}).between(start, start + 7 * 86_400_000)
    run = mean_reversion(loose(settings, two, max_concurrent_positions=1), "signal")
    both = run_candles(run, week)
    alone = sum(len(run_candles(mean_reversion(loose(settings, (m,)), "signal"), week).trips) for m in two)
    spans = sorted((t.entry_time_ms, t.exit_time_ms) for t in both.trips)
    assert all(b[0] >= a[1] for a, b in itertools.pairwise(spans))
    assert {t.market for t in both.trips} == set(two)
    assert len(both.trips) < alone
    assert both.counters["rejections"].get("mean_reversion:max_concurrent", 0) > 0


# --------------------------------------------------------------------------- choosing data


def test_data_spec_is_market_equals_file_or_a_plain_file() -> None:
    assert parse_data_spec("binance:ETH/USDT=eth.csv.gz") == ("binance:ETH/USDT", Path("eth.csv.gz"))
    assert parse_data_spec("data/eth.csv") == (None, Path("data/eth.csv"))
    assert parse_data_spec("odd=name.csv") == (None, Path("odd=name.csv"))


def test_candle_files_default_to_replay_candles_and_data_names_the_run_markets(settings: Settings) -> None:
    four = mean_reversion(loose(settings), "signal")
    run = candle_files(four)
    assert run.files == {m: settings.replay.candles[m] for m in MARKETS}
    assert run.settings is four
    assert not run.notes
    plain = candle_files(four, Path("btc.csv"))
    assert plain.files == {"binance:BTC/USDT": Path("btc.csv")}
    named = candle_files(four, [("binance:XRP/USDT", Path("xrp.csv")), ("binance:ETH/USDT", Path("eth.csv"))])
    assert named.files == {"binance:ETH/USDT": Path("eth.csv"), "binance:XRP/USDT": Path("xrp.csv")}
    assert named.settings.strategy("mean_reversion").markets == ("binance:ETH/USDT", "binance:XRP/USDT")
    assert any("not every market" in n for n in named.notes)
    with pytest.raises(BacktestError, match="no strategy of the run trades binance:DOGE/USDT"):
        candle_files(four, [("binance:DOGE/USDT", Path("doge.csv"))])
    with pytest.raises(BacktestError, match="twice"):
        candle_files(four, [(None, Path("a.csv")), ("binance:BTC/USDT", Path("b.csv"))])


def test_fast_engine_with_several_markets_is_an_error(settings: Settings, candles: MarketCandles) -> None:
    day = candles.between(None, int(candles.tables[MARKETS[0]].timestamp[0]) + 86_400_000)
    with pytest.raises(BacktestError, match="fast path steps one bar series"):
        run_candles(mean_reversion(loose(settings), "signal"), day, engine="fast")
