"""Momentum breakout, mean reversion and the regime detector: rules, resampling, checkpoints."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable
from fractions import Fraction

import numpy as np
import pytest
import talib

from actors.core.strategies import build_strategy
from actors.core.strategies.mean_reversion import MeanReversion
from actors.core.strategies.momentum_breakout import MomentumBreakout
from actors.core.strategies.regime import RegimeDetector
from actors.data.candles_csv import load_candles_csv, load_ohlcv_arrays
from actors.domain.model import Candle, Side, Signal
from config.models import MeanReversionConfig, MomentumBreakoutConfig, RegimeParams
from tests.paths import BTC_1M

DATA = BTC_1M
MARKET = "binance:BTC/USDT"
OTHER = "binance:ETH/USDT"
T0 = 1_699_999_800_000  # a multiple of 5 minutes
MIN = 60_000
BAR = 300_000


def candle(ts: int, close: float, market: str = MARKET, interval: int = MIN) -> Candle:
    return Candle(
        market=market,
        ts_ms=ts,
        interval_ms=interval,
        open=close,
        high=close,
        low=close,
        close=close,
        volume=1.0,
    )


def five_minute_candles(closes: Iterable[float], start: int = T0) -> list[Candle]:
    return [candle(start + i * BAR, c, interval=BAR) for i, c in enumerate(closes)]


def one_minute_candles(closes: Iterable[float], start: int = T0) -> list[Candle]:
    """Five 1-minute candles per bar; the first four wander (even spike), the fifth closes the bar."""
    out = []
    for i, c in enumerate(closes):
        bar = start + i * BAR
        for m, wobble in enumerate((1.07, 0.93, 1.5, 0.99)):
            out.append(candle(bar + m * MIN, c * wobble))
        out.append(candle(bar + 4 * MIN, c))
    return out


def run(strategy: MomentumBreakout | MeanReversion, candles: Iterable[Candle]) -> list[Signal]:
    signals: list[Signal] = []
    for c in candles:
        signals.extend(strategy.on_candle(c))
    return signals


def exact_z(window: list[float]) -> float:
    """z of the last value against the population mean/std of the window (exact arithmetic)."""
    exact = [Fraction(v) for v in window]
    mean = sum(exact) / len(exact)
    var = sum((v - mean) ** 2 for v in exact) / len(exact)
    return float(exact[-1] - mean) / math.sqrt(float(var))


def breakout(**overrides: object) -> MomentumBreakout:
    return MomentumBreakout(MomentumBreakoutConfig(name="mb", market=MARKET, **overrides))


QUIET = [100.0 + (i % 2) for i in range(19)]  # 19 bars alternating 100/101


# --------------------------------------------------------------------------- momentum breakout: rules


def test_registry_builds_classic_strategies_by_kind() -> None:
    assert type(build_strategy(MomentumBreakoutConfig(name="a", market=MARKET))) is MomentumBreakout
    assert type(build_strategy(MeanReversionConfig(name="b", market=MARKET))) is MeanReversion
    assert MomentumBreakout.kind == "momentum_breakout"
    assert MeanReversion.kind == "mean_reversion"


def test_spike_after_quiet_bars_fires_buy_with_exact_strength() -> None:
    spike = 102.2
    z = exact_z([*QUIET, spike])
    assert 2.0 < z < 3.0  # precondition: between entry and full strength
    signals = run(breakout(), five_minute_candles([*QUIET, spike]))
    assert len(signals) == 1
    sig = signals[0]
    assert sig.side is Side.BUY
    assert sig.strategy == "mb"
    assert sig.market == MARKET
    assert sig.price == spike
    assert sig.ts_ms == T0 + 20 * BAR  # the 20th bar's close time
    assert sig.strength == pytest.approx(z / 3.0, rel=1e-12)


def test_huge_spike_strength_saturates_at_one() -> None:
    spike = 140.0
    assert exact_z([*QUIET, spike]) > 3.0
    signals = run(breakout(), five_minute_candles([*QUIET, spike]))
    assert [s.strength for s in signals] == [1.0]


def test_z_just_below_entry_emits_nothing_and_just_above_fires() -> None:
    closes = [*QUIET, 102.2]
    z = exact_z(closes)
    assert run(breakout(z_entry=z * (1 + 1e-9)), five_minute_candles(closes)) == []
    assert len(run(breakout(z_entry=z * (1 - 1e-9)), five_minute_candles(closes))) == 1


def test_flat_bars_emit_nothing() -> None:
    strategy = breakout()
    assert run(strategy, five_minute_candles([100.0] * 60)) == []
    assert strategy.zscore == 0.0


def test_oscillating_bars_emit_nothing() -> None:
    strategy = breakout()
    assert run(strategy, five_minute_candles([100.0 + (i % 2) for i in range(200)])) == []
    assert abs(strategy.zscore) == pytest.approx(1.0, rel=1e-9)


def test_spike_before_lookback_filled_emits_nothing() -> None:
    closes = [100.0 + (i % 2) for i in range(10)] + [140.0]
    assert run(breakout(), five_minute_candles(closes)) == []


def test_downward_spike_emits_nothing() -> None:
    closes = [*QUIET, 60.0]
    assert exact_z(closes) < -2.0
    assert run(breakout(), five_minute_candles(closes)) == []


def test_custom_lookback_uses_that_many_bars() -> None:
    closes = [100.0 + (i % 2) for i in range(9)] + [102.0]
    z = exact_z(closes)  # a 10-bar window
    assert z > 2.0
    signals = run(breakout(lookback=10), five_minute_candles(closes))
    assert [s.strength for s in signals] == [pytest.approx(min(1.0, z / 3.0), rel=1e-12)]


# --------------------------------------------------------------------------- momentum breakout: resampling


BAR_CLOSES = [*QUIET, 102.2, 101.0, 100.0, 101.0, 100.5, 140.0, *QUIET, 103.0, 100.0]


def test_one_minute_candles_resample_to_same_signals_as_five_minute_candles() -> None:
    from_bars = run(breakout(), five_minute_candles(BAR_CLOSES))
    from_minutes = run(breakout(), one_minute_candles(BAR_CLOSES))
    assert len(from_bars) >= 3
    assert from_minutes == from_bars


def test_signal_only_on_candle_closing_at_bar_boundary() -> None:
    strategy = breakout()
    for c in one_minute_candles(BAR_CLOSES):
        signals = strategy.on_candle(c)
        if signals:
            assert c.close_ms % BAR == 0
            assert signals[0].ts_ms == c.close_ms


def test_intrabar_spike_reverting_before_bar_close_emits_nothing() -> None:
    # one_minute_candles puts a 1.5x spike in minute 3 of every bar; bar closes stay quiet
    assert run(breakout(), one_minute_candles([100.0 + (i % 2) for i in range(40)])) == []


def test_bar_ms_of_fifteen_minutes_resamples_fifteen_candles() -> None:
    closes = [*QUIET, 102.2]
    start = T0 - T0 % 900_000  # bars are aligned to the epoch
    candles = []
    for i, c in enumerate(closes):
        for m in range(15):
            candles.append(candle(start + i * 900_000 + m * MIN, c if m == 14 else 500.0))
    signals = run(breakout(bar_ms=900_000), candles)
    assert [s.ts_ms for s in signals] == [start + 20 * 900_000]
    assert signals[0].strength == pytest.approx(exact_z(closes) / 3.0, rel=1e-12)


def test_other_market_candles_are_ignored() -> None:
    clean = run(breakout(), one_minute_candles(BAR_CLOSES))
    mixed: list[Candle] = []
    for c in one_minute_candles(BAR_CLOSES):
        mixed.append(candle(c.ts_ms, 9_999.0, market=OTHER))
        mixed.append(c)
        mixed.append(candle(c.ts_ms, 1.0, market=OTHER))
    assert run(breakout(), mixed) == clean


def test_duplicate_and_stale_candles_are_ignored() -> None:
    candles = one_minute_candles(BAR_CLOSES)
    clean = run(breakout(), candles)
    noisy: list[Candle] = []
    for i, c in enumerate(candles):
        noisy.append(c)
        noisy.append(c.model_copy(update={"close": 1_000.0}))  # same bar again, wild close
        if i >= 3:
            noisy.append(candles[i - 3].model_copy(update={"close": 5_000.0}))  # stale
    assert run(breakout(), noisy) == clean


def test_missing_closing_minute_banks_bar_without_signal() -> None:
    closes = [*QUIET, 140.0, 100.0]
    candles = one_minute_candles(closes)
    spike_close_minute = 20 * 5 - 1  # last minute of bar 20 (the spike bar)
    gapped = candles[:spike_close_minute] + candles[spike_close_minute + 1 :]
    strategy = breakout()
    assert run(strategy, gapped) == []
    # the spike bar entered the window with its last seen close (minute 4: 140 * 0.99)
    window = [*QUIET[1:], 140.0 * 0.99, 100.0]
    assert strategy.zscore == pytest.approx(exact_z(window), rel=1e-12)


def test_candle_straddling_bar_boundary_raises_value_error() -> None:
    strategy = breakout()
    strategy.on_candle(candle(T0, 100.0, interval=180_000))
    with pytest.raises(ValueError, match="straddles"):
        strategy.on_candle(candle(T0 + 180_000, 100.0, interval=180_000))


def test_real_data_signals_match_talib_reference() -> None:
    arrays = load_ohlcv_arrays(DATA)
    ends = (arrays["timestamp"] + MIN) % BAR == 0
    closes5 = arrays["close"][ends]
    bar_close_ms = arrays["timestamp"][ends] + MIN
    z = (closes5 - talib.SMA(closes5, 20)) / talib.STDDEV(closes5, 20, 1)
    fire = np.nan_to_num(z, nan=-np.inf) > 2.0
    assert np.all(np.abs(z[fire] - 2.0) > 1e-6)  # no borderline case that rounding could flip
    signals = run(breakout(), load_candles_csv(DATA))
    assert len(signals) == int(fire.sum()) > 50
    assert [s.ts_ms for s in signals] == bar_close_ms[fire].tolist()
    assert [s.price for s in signals] == closes5[fire].tolist()
    np.testing.assert_allclose(
        [s.strength for s in signals], np.minimum(1.0, z[fire] / 3.0), rtol=1e-9, atol=1e-9
    )


# --------------------------------------------------------------------------- momentum breakout: state


@pytest.fixture(scope="module")
def real_candles() -> list[Candle]:
    return load_candles_csv(DATA)


@pytest.mark.parametrize("split", [7, 60, 15_002, 15_004, 22_222])
def test_breakout_state_roundtrip_mid_stream_gives_identical_signals(
    real_candles: list[Candle], split: int
) -> None:
    original = breakout()
    run(original, real_candles[:split])
    state = json.loads(json.dumps(original.state(), allow_nan=False))
    restored = breakout()
    restored.restore(state)
    rest = real_candles[split:]
    expected = run(original, rest)
    assert len(expected) > 10
    assert run(restored, rest) == expected
    assert restored.state() == original.state()


def test_breakout_restore_replayed_candles_gives_no_duplicate_signals(real_candles: list[Candle]) -> None:
    original = breakout()
    run(original, real_candles[:20_000])
    restored = breakout()
    restored.restore(original.state())
    # at-least-once delivery: the last hour is delivered again after the restart
    assert run(restored, real_candles[19_940:20_000]) == []
    assert run(restored, real_candles[20_000:]) == run(original, real_candles[20_000:])


def test_breakout_restore_with_other_lookback_raises_value_error() -> None:
    state = breakout().state()
    with pytest.raises(ValueError, match="lookback"):
        breakout(lookback=30).restore(state)
    with pytest.raises(ValueError, match="mean_reversion"):
        breakout().restore(MeanReversion(MeanReversionConfig(name="x", market=MARKET)).state())


# --------------------------------------------------------------------------- mean reversion


def reverter(**overrides: object) -> MeanReversion:
    return MeanReversion(MeanReversionConfig(name="mr", market=MARKET, **overrides))


def reference(closes: list[float], bb_std: float = 2.0) -> tuple[np.ndarray, ...]:
    xs = np.array(closes)
    upper, middle, lower = talib.BBANDS(xs, 20, bb_std, bb_std)  # matype defaults to 0: SMA
    return xs, upper, middle, lower, talib.RSI(xs, 14)


RANGE = [100.0 + 0.1 * (1 if i % 2 else -1) for i in range(100)]  # a quiet range


def test_sharp_drop_below_band_when_oversold_emits_buy() -> None:
    closes = [*RANGE, 95.0]
    xs, upper, middle, lower, rsi = reference(closes)
    assert xs[-1] < lower[-1]
    assert rsi[-1] < 30
    signals = run(reverter(), five_minute_candles(closes))
    assert len(signals) == 1
    sig = signals[0]
    assert (sig.side, sig.price, sig.ts_ms, sig.strategy) == (Side.BUY, 95.0, T0 + 101 * BAR, "mr")
    std = (upper[-1] - middle[-1]) / 2.0
    assert sig.strength == pytest.approx(min(1.0, (middle[-1] - 95.0) / std / 4.0), rel=1e-9)
    assert 0.5 < sig.strength <= 1.0


def test_sharp_rise_above_band_when_overbought_emits_sell() -> None:
    closes = [*RANGE, 105.0]
    xs, upper, middle, _, rsi = reference(closes)
    assert xs[-1] > upper[-1]
    assert rsi[-1] > 70
    signals = run(reverter(), five_minute_candles(closes))
    assert [(s.side, s.price) for s in signals] == [(Side.SELL, 105.0)]
    std = (upper[-1] - middle[-1]) / 2.0
    assert signals[0].strength == pytest.approx(min(1.0, (105.0 - middle[-1]) / std / 4.0), rel=1e-9)


def test_drop_below_band_without_oversold_rsi_emits_no_buy() -> None:
    closes = [100.0 + i for i in range(40)] + [139.0 - 26.0]  # steady rise, then one drop
    xs, _, _, lower, rsi = reference(closes)
    assert xs[-1] < lower[-1]
    assert rsi[-1] >= 30
    assert [s for s in run(reverter(), five_minute_candles(closes)) if s.side is Side.BUY] == []


def test_oversold_rsi_inside_band_emits_no_buy() -> None:
    closes = [200.0 - i for i in range(60)]  # steady decline: RSI 0, z = -1.65
    xs, _, _, lower, rsi = reference(closes)
    assert rsi[-1] < 30
    assert np.all(xs[19:] > lower[19:])
    assert run(reverter(), five_minute_candles(closes)) == []


def test_rise_above_band_without_overbought_rsi_emits_no_sell() -> None:
    closes = [200.0 - i for i in range(40)] + [161.0 + 26.0]
    xs, upper, _, _, rsi = reference(closes)
    assert xs[-1] > upper[-1]
    assert rsi[-1] <= 70
    assert run(reverter(), five_minute_candles(closes)) == []


def test_mean_reversion_ignores_other_markets_and_duplicates() -> None:
    closes = [*RANGE, 95.0, 100.0, 105.0]
    clean = run(reverter(), five_minute_candles(closes))
    assert len(clean) >= 1
    noisy: list[Candle] = []
    for c in five_minute_candles(closes):
        noisy += [c, candle(c.ts_ms, 1.0, market=OTHER), c.model_copy(update={"close": 1.0})]
    assert run(reverter(), noisy) == clean


def test_mean_reversion_real_data_signals_match_talib_reference(real_candles: list[Candle]) -> None:
    xs = np.array([c.close for c in real_candles])
    upper, middle, lower = talib.BBANDS(xs, 20, 2.0, 2.0)  # matype defaults to 0: SMA
    rsi = talib.RSI(xs, 14)
    with np.errstate(invalid="ignore"):
        buy = (xs < lower) & (rsi < 30)
        sell = (xs > upper) & (rsi > 70)
    signals = run(reverter(), real_candles)
    expected_ts = (np.array([c.ts_ms for c in real_candles]) + MIN)[buy | sell].tolist()
    assert buy.sum() > 10
    assert sell.sum() > 10
    assert [s.ts_ms for s in signals] == expected_ts
    assert [s.side for s in signals] == [Side.BUY if b else Side.SELL for b in buy[buy | sell]]
    std = (upper - middle) / 2.0
    want = np.minimum(1.0, np.abs(xs - middle) / std / 4.0)[buy | sell]
    np.testing.assert_allclose([s.strength for s in signals], want, rtol=1e-9)


# --------------------------------------------------------------------------- mean reversion: regime filter

REGIME = RegimeParams(period=20, smoothing=20, threshold=1.5)
DOWNTREND = [300.0 - 2.0 * i for i in range(80)] + [300.0 - 2.0 * 80 - 30.0]  # steady fall, then a plunge
UPTREND = [100.0 + 2.0 * i for i in range(80)] + [100.0 + 2.0 * 80 + 30.0]


def regime_after(closes: list[float]) -> RegimeDetector:
    detector = RegimeDetector.from_params(REGIME)
    for c in closes:
        detector.update(c)
    return detector


def test_regime_filter_off_buys_plunge_in_downtrend() -> None:
    xs, _, _, lower, rsi = reference(DOWNTREND)
    assert xs[-1] < lower[-1]
    assert rsi[-1] < 30
    signals = run(reverter(regime=REGIME), five_minute_candles(DOWNTREND))
    assert [(s.side, s.ts_ms) for s in signals] == [(Side.BUY, T0 + len(DOWNTREND) * BAR)]


def test_regime_filter_on_suppresses_buy_in_downtrend() -> None:
    assert regime_after(DOWNTREND).trending
    assert run(reverter(regime_filter=True, regime=REGIME), five_minute_candles(DOWNTREND)) == []


def test_regime_filter_on_still_emits_sell_in_uptrend() -> None:
    xs, upper, _, _, rsi = reference(UPTREND)
    assert xs[-1] > upper[-1]
    assert rsi[-1] > 70
    assert regime_after(UPTREND).trending
    signals = run(reverter(regime_filter=True, regime=REGIME), five_minute_candles(UPTREND))
    assert [s.side for s in signals] == [Side.SELL]


def test_regime_filter_on_buys_plunge_in_range() -> None:
    closes = [*RANGE, 95.0]
    detector = regime_after(closes)
    assert detector.ready
    assert not detector.trending
    signals = run(reverter(regime_filter=True, regime=REGIME), five_minute_candles(closes))
    assert [s.side for s in signals] == [Side.BUY]


def test_regime_filter_on_before_regime_warm_emits_no_buy() -> None:
    closes = [*RANGE[:25], 95.0]  # regime needs 20 + 20 - 1 bars
    assert not regime_after(closes).ready
    assert [s.side for s in run(reverter(regime=REGIME), five_minute_candles(closes))] == [Side.BUY]
    assert run(reverter(regime_filter=True, regime=REGIME), five_minute_candles(closes)) == []


@pytest.mark.parametrize("regime_filter", [False, True])
@pytest.mark.parametrize("split", [5, 30, 12_345, 25_000])
def test_mean_reversion_state_roundtrip_mid_stream_gives_identical_signals(
    real_candles: list[Candle], regime_filter: bool, split: int
) -> None:
    original = reverter(regime_filter=regime_filter)
    run(original, real_candles[:split])
    state = json.loads(json.dumps(original.state(), allow_nan=False))
    restored = reverter(regime_filter=regime_filter)
    restored.restore(state)
    rest = real_candles[split:]
    expected = run(original, rest)
    assert len(expected) > 5
    assert run(restored, rest) == expected
    assert restored.state() == original.state()


def test_mean_reversion_restore_with_other_settings_raises_value_error() -> None:
    state = reverter().state()
    with pytest.raises(ValueError, match="settings"):
        reverter(bb_period=30).restore(state)
    with pytest.raises(ValueError, match="settings"):
        reverter(regime_filter=True).restore(state)


# --------------------------------------------------------------------------- regime detector


def test_regime_detector_matches_talib_reference_on_real_data() -> None:
    xs = load_ohlcv_arrays(DATA)["close"]
    raw = np.abs(xs - talib.SMA(xs, 50)) / talib.STDDEV(xs, 50, 1)
    want = talib.SMA(raw, 20)
    detector = RegimeDetector()  # period 50, smoothing 20, threshold 0.5
    got, trending = [], []
    for x in xs.tolist():
        got.append(detector.update(x))
        trending.append(detector.trending)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    clear = np.abs(np.nan_to_num(want, nan=0.0) - 0.5) > 1e-6
    assert np.array_equal(np.array(trending)[clear], (np.nan_to_num(want, nan=0.0) > 0.5)[clear])
    assert 0 < sum(trending) < len(trending)


def test_regime_linear_trend_is_trending_and_range_is_not() -> None:
    trend = regime_after([float(i) for i in range(100)])
    assert trend.trending
    assert trend.value == pytest.approx(math.sqrt(3 * 19 / 21), rel=1e-9)  # |z| of a line, n = 20
    flat_range = regime_after(RANGE)
    assert not flat_range.trending
    assert flat_range.value == pytest.approx(1.0, rel=1e-9)


def test_regime_not_ready_is_not_trending() -> None:
    detector = RegimeDetector(period=5, smoothing=3, threshold=0.1)
    for i in range(6):
        assert math.isnan(detector.update(float(i * i)))
        assert not detector.ready
        assert not detector.trending
    assert detector.update(49.0) > 0.1
    assert detector.ready
    assert detector.trending


def test_regime_state_roundtrip_gives_identical_values() -> None:
    xs = [100.0 + 10.0 * math.sin(i / 7.0) + 0.1 * i for i in range(400)]
    original = RegimeDetector(period=30, smoothing=10, threshold=0.8)
    for x in xs[:123]:
        original.update(x)
    restored = RegimeDetector.restore(json.loads(json.dumps(original.state(), allow_nan=False)))
    assert [restored.update(x) for x in xs[123:]] == [original.update(x) for x in xs[123:]]
    assert (restored.period, restored.smoothing, restored.threshold) == (30, 10, 0.8)


def test_statistics_reference_agrees_with_exact_z() -> None:
    # guards the helper the breakout tests lean on
    window = [*QUIET, 102.2]
    mean, std = statistics.fmean(window), statistics.pstdev(window)
    assert exact_z(window) == pytest.approx((102.2 - mean) / std, rel=1e-12)
