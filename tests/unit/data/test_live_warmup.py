"""The live feed's warm-up plan: how many bars of history a Binance market's feed reads first, and
when (a fresh start, an outage longer than the feed buffer holds) it reads them at all."""

from __future__ import annotations

from actors.data.live import INTERVAL_MS, bars_to_learn, warmup_bars
from config.loader import load_settings
from config.models import (
    MeanReversionConfig,
    MlMomentumConfig,
    MomentumBreakoutConfig,
    PolymarketLagConfig,
    Settings,
)

BTC, ETH, SOL = "binance:BTC/USDT", "binance:ETH/USDT", "binance:SOL/USDT"
NOW = 1_730_000_000_000 - 1_730_000_000_000 % INTERVAL_MS  # the newest closed bar's close


def settings_with(*strategies: object) -> Settings:
    return load_settings(None, env={}).model_copy(update={"strategies": list(strategies)})


def test_a_market_warms_up_for_the_hungriest_strategy_watching_it() -> None:
    settings = settings_with(
        MeanReversionConfig(name="mr", markets=(BTC, ETH), bb_period=50),
        MomentumBreakoutConfig(name="mb", market=ETH, lookback=30),  # 30 bars of 5 min
        MlMomentumConfig(name="ml", market=SOL, max_train_rows=1_000, enabled=False),
        PolymarketLagConfig(name="pl", market="polymarket:btc-updown-5m", reference_market=SOL),
    )
    assert warmup_bars(settings, BTC) == 50
    assert warmup_bars(settings, ETH) == 150
    assert warmup_bars(settings, SOL) == 20  # the lag's reference window; ml_momentum is disabled
    assert warmup_bars(settings, "binance:XRP/USDT") == 0  # nobody watches it


def test_a_fresh_start_learns_the_declared_bars() -> None:
    assert bars_to_learn(None, NOW, INTERVAL_MS, warmup=120, buffer=10_000) == 120
    assert bars_to_learn(None, NOW, INTERVAL_MS, warmup=0, buffer=10_000) == 0


def test_a_short_outage_back_fills_live_bars_instead() -> None:
    for missed in (0, 1, 500, 10_000):
        assert bars_to_learn(NOW - missed * INTERVAL_MS, NOW, INTERVAL_MS, warmup=120, buffer=10_000) == 0


def test_an_outage_longer_than_the_buffer_learns_again() -> None:
    since = NOW - 10_001 * INTERVAL_MS
    assert bars_to_learn(since, NOW, INTERVAL_MS, warmup=120, buffer=10_000) == 120
    assert bars_to_learn(since, NOW, INTERVAL_MS, warmup=0, buffer=10_000) == 0
