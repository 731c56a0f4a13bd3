"""Each strategy core declares its warm-up (``warmup_bars``): after exactly that many bars every
indicator it trades on is defined, one bar fewer and one is not (a model: it has been fitted)."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import pytest

from actors.core.strategies.book import StrategyBook
from actors.core.strategies.mean_reversion import MeanReversion
from actors.core.strategies.ml_momentum import FIRST_FEATURE_BAR, MlMomentum
from actors.core.strategies.momentum_breakout import MomentumBreakout
from actors.core.strategies.polymarket_lag import PolymarketLag
from actors.data.candles import load_table
from actors.data.replay import candle_events
from actors.domain.model import Candle
from config.models import (
    BUNDLED_CANDLES,
    MeanReversionConfig,
    MlMomentumConfig,
    MomentumBreakoutConfig,
    PolymarketLagConfig,
    RegimeParams,
)
from tests.paths import REPO_ROOT

BTC, ETH = "binance:BTC/USDT", "binance:ETH/USDT"
MIN = 60_000


@functools.cache
def _candles(market: str) -> list[Candle]:
    return list(candle_events(load_table(REPO_ROOT / Path(BUNDLED_CANDLES[market])), market))


def bars(n: int, market: str = BTC, start: int = 0) -> list[Candle]:
    return _candles(market)[start : start + n]


def test_mean_reversion_needs_its_longest_window() -> None:
    plain = MeanReversion(MeanReversionConfig(name="mr", market=BTC, bb_period=30, rsi_period=14))
    assert plain.warmup_bars(MIN) == 30
    filtered = MeanReversionConfig(
        name="mr", market=BTC, regime_filter=True, regime=RegimeParams(period=50, smoothing=20)
    )
    assert MeanReversion(filtered).warmup_bars(MIN) == 69
    rsi_longest = MeanReversionConfig(name="mr", market=BTC, bb_period=10, rsi_period=20)
    assert MeanReversion(rsi_longest).warmup_bars(MIN) == 21
    for config in (plain.config, filtered, rsi_longest):
        n = MeanReversion(config).warmup_bars(MIN)
        short, warm = MeanReversion(config), MeanReversion(config)
        for c in bars(n - 1):
            short.on_candle(c)
        for c in bars(n):
            warm.on_candle(c)
        detector = warm.regime
        assert not math.isnan(warm._bb.lower)
        assert not math.isnan(warm._rsi.value)
        assert detector is None or detector.ready
        gaps = [math.isnan(short._bb.lower), math.isnan(short._rsi.value)]
        assert any(gaps) or (short.regime is not None and not short.regime.ready)


def test_momentum_breakout_counts_its_bars_in_the_feed_candles() -> None:
    config = MomentumBreakoutConfig(name="mb", market=BTC, bar_ms=300_000, lookback=20)
    core = MomentumBreakout(config)
    assert core.warmup_bars(MIN) == 100
    assert core.warmup_bars(300_000) == 20
    for start in (0, 3):  # from a bar's first minute, or mid-bar: 100 candles close 20 bars
        short, warm = MomentumBreakout(config), MomentumBreakout(config)
        for c in bars(100, start=start):
            warm.on_candle(c)
        assert not math.isnan(warm.zscore)
        for c in bars(99, start=start):
            short.on_candle(c)
        assert math.isnan(short.zscore) == (start == 0)


def test_ml_momentum_learns_its_training_window() -> None:
    config = MlMomentumConfig(
        name="ml", market=BTC, min_train_rows=50, max_train_rows=120, retrain_every=30, n_estimators=5
    )
    core = MlMomentum(config)
    assert core.warmup_bars(MIN) == FIRST_FEATURE_BAR + 120 + 5
    assert MlMomentum(MlMomentumConfig(name="ml", market=BTC)).warmup_bars(MIN) == 20_031
    for c in bars(core.warmup_bars(MIN)):
        core.on_candle(c)
    assert core.training_window is not None  # a model before the first live bar
    assert core.capacity >= core.warmup_bars(MIN)  # all of it stays in its history


def test_ml_momentum_warmup_covers_the_swap_delay_of_its_first_model() -> None:
    sizes = {"min_train_rows": 100, "max_train_rows": 120, "retrain_every": 30, "model_swap_delay_bars": 40}
    core = MlMomentum(MlMomentumConfig(name="ml", market=BTC, n_estimators=5, **sizes))
    assert core.warmup_bars(MIN) == FIRST_FEATURE_BAR + 100 + 40 + 5  # beyond the training window
    history = bars(core.warmup_bars(MIN))
    for c in history[:-1]:
        core.on_candle(c)
    assert core.training_window is None  # one bar short: the first fit is still pending
    core.on_candle(history[-1])
    assert core.training_window is not None


def test_polymarket_lag_learns_its_reference_window() -> None:
    config = PolymarketLagConfig(
        name="pl",
        market="polymarket:btc-updown-5m",
        reference_market=BTC,
        vol_window_s=900,
        momentum_lookback=10,
    )
    core = PolymarketLag(config)
    assert core.warmup_bars(MIN) == 16  # 900 s of 1m closes and the one before them
    assert core.warmup_bars(1000) == 901
    assert PolymarketLag(config.model_copy(update={"momentum_lookback": 40})).warmup_bars(MIN) == 40
    history = bars(16)
    for c in history:
        core.on_candle(c)
    assert not math.isnan(core.zscore)
    assert core._ref_ts[0] <= history[-1].close_ms - 900_000  # the vol window is covered


@pytest.mark.parametrize(
    ("market", "expected"),
    [(BTC, 100), (ETH, 100), ("binance:SOL/USDT", 0)],
)
def test_a_book_declares_the_most_its_cores_on_a_market_need(market: str, expected: int) -> None:
    book = StrategyBook(MeanReversionConfig(name="mr", markets=(BTC, ETH), bb_period=100))
    assert book.warmup_bars(MIN, market) == expected
    assert book.warmup_bars(MIN) == 100
    lag = StrategyBook(
        PolymarketLagConfig(name="pl", market="polymarket:btc-updown-5m", reference_market=BTC)
    )
    assert lag.warmup_bars(MIN, BTC) == 20  # the reference a Binance feed warms up (momentum_lookback)
