"""Streaming indicators against TA-Lib on the bundled real BTCUSDT 1-minute data.

Every comparison runs over the whole file (30,900 bars) and checks the warm-up ``nan``
positions too. TA-Lib is the reference to 1e-9 relative; where TA-Lib itself is not that
accurate (its STDDEV squares prices, so a period-2 window at BTC prices is off by ~3e-8),
an exact two-pass reference is used as well, with a tighter tolerance.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from actors.core.indicators import ROC, RSI, SMA, Bollinger, RollingMean, RollingStd, ZScore
from actors.data.candles_csv import load_candles_csv, load_ohlcv_arrays
from tests.paths import BTC_1M

DATA = BTC_1M
RTOL = 1e-9


@pytest.fixture(scope="module")
def ohlcv() -> dict[str, np.ndarray]:
    return load_ohlcv_arrays(DATA)


@pytest.fixture(scope="module")
def close(ohlcv: dict[str, np.ndarray]) -> np.ndarray:
    return ohlcv["close"]


def stream(indicator: Any, xs: np.ndarray) -> np.ndarray:
    update = indicator.update
    return np.array([update(x) for x in xs.tolist()])


def exact_std(xs: np.ndarray, period: int) -> np.ndarray:
    """Two-pass population std per window, on values shifted by the window's last one."""
    windows = sliding_window_view(xs, period)
    shifted = windows - windows[:, -1:]
    dev = shifted - shifted.mean(axis=1, keepdims=True)
    out = np.sqrt((dev * dev).mean(axis=1))
    return np.concatenate([np.full(period - 1, np.nan), out])


def exact_z(xs: np.ndarray, period: int) -> np.ndarray:
    windows = sliding_window_view(xs, period)
    shifted = windows - windows[:, -1:]
    mean = shifted.mean(axis=1)
    std = np.sqrt(((shifted - mean[:, None]) ** 2).mean(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(std > 0, (shifted[:, -1] - mean) / std, 0.0)
    return np.concatenate([np.full(period - 1, np.nan), z])


# --------------------------------------------------------------------------- the data itself


def test_bundled_csv_loads_all_rows_in_order() -> None:
    arrays = load_ohlcv_arrays(DATA)
    assert len(arrays["close"]) == 30_900
    assert arrays["timestamp"].dtype == np.int64
    assert arrays["timestamp"][0] == 1_709_251_200_000
    assert set(np.diff(arrays["timestamp"]).tolist()) == {60_000}
    candles = load_candles_csv(DATA)
    assert len(candles) == 30_900
    first = candles[0]
    assert (first.market, first.ts_ms, first.interval_ms) == ("binance:BTC/USDT", 1_709_251_200_000, 60_000)
    assert (first.open, first.high, first.low, first.close, first.volume) == (
        61130.99,
        61197.66,
        61126.0,
        61196.0,
        121.02208,
    )
    assert candles[-1].close == arrays["close"][-1]


# --------------------------------------------------------------------------- agreement with TA-Lib


@pytest.mark.parametrize("period", [2, 5, 20, 50])
def test_sma_whole_file_matches_talib(close: np.ndarray, period: int) -> None:
    np.testing.assert_allclose(stream(SMA(period), close), talib.SMA(close, period), rtol=RTOL, atol=0)


@pytest.mark.parametrize("period", [5, 20])
def test_rolling_mean_of_volume_matches_talib_sma(ohlcv: dict[str, np.ndarray], period: int) -> None:
    volume = ohlcv["volume"]
    np.testing.assert_allclose(
        stream(RollingMean(period), volume), talib.SMA(volume, period), rtol=RTOL, atol=0
    )


@pytest.mark.parametrize("period", [5, 20, 50])
def test_rolling_std_whole_file_matches_talib(close: np.ndarray, period: int) -> None:
    np.testing.assert_allclose(
        stream(RollingStd(period), close), talib.STDDEV(close, period, 1), rtol=RTOL, atol=0
    )


@pytest.mark.parametrize("period", [2, 5, 20, 50])
def test_rolling_std_whole_file_matches_exact_two_pass(close: np.ndarray, period: int) -> None:
    ours = stream(RollingStd(period), close)
    ref = exact_std(close, period)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=0)
    assert np.array_equal(ours == 0, ref == 0)  # flat windows are exactly 0, never rounding noise


@pytest.mark.parametrize("period", [20, 50])
def test_zscore_whole_file_matches_talib_composition(close: np.ndarray, period: int) -> None:
    # (close - SMA) cancels; TA-Lib's SMA rounding alone moves z by ~1e-11 absolute, so an
    # absolute 1e-9 floor on this dimensionless value, 1e-9 relative above 1.
    ref = (close - talib.SMA(close, period)) / talib.STDDEV(close, period, 1)
    np.testing.assert_allclose(stream(ZScore(period), close), ref, rtol=RTOL, atol=1e-9)


@pytest.mark.parametrize("period", [2, 5, 20])
def test_zscore_whole_file_matches_exact_two_pass(close: np.ndarray, period: int) -> None:
    np.testing.assert_allclose(stream(ZScore(period), close), exact_z(close, period), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("period", "up", "down"), [(20, 2.0, 2.0), (20, 2.0, 1.5), (5, 2.5, 2.5), (50, 1.0, 3.0)]
)
def test_bollinger_whole_file_matches_talib_bbands(
    close: np.ndarray, period: int, up: float, down: float
) -> None:
    bb = Bollinger(period, up, down)
    rows = []
    for x in close.tolist():
        mid = bb.update(x)
        rows.append((bb.upper, mid, bb.lower, bb.middle))
    ours = np.array(rows)
    upper, middle, lower = talib.BBANDS(close, period, up, down)  # matype defaults to 0: SMA
    np.testing.assert_allclose(ours[:, 0], upper, rtol=RTOL, atol=0)
    np.testing.assert_allclose(ours[:, 1], middle, rtol=RTOL, atol=0)
    np.testing.assert_allclose(ours[:, 2], lower, rtol=RTOL, atol=0)
    np.testing.assert_array_equal(ours[:, 3], ours[:, 1])


@pytest.mark.parametrize("period", [2, 14, 50])
def test_rsi_whole_file_matches_talib(close: np.ndarray, period: int) -> None:
    np.testing.assert_allclose(stream(RSI(period), close), talib.RSI(close, period), rtol=RTOL, atol=0)


@pytest.mark.parametrize("period", [1, 10, 60])
def test_roc_whole_file_matches_talib(close: np.ndarray, period: int) -> None:
    np.testing.assert_allclose(stream(ROC(period), close), talib.ROC(close, period), rtol=RTOL, atol=0)


def test_rsi_on_flat_series_is_zero_like_talib() -> None:
    xs = np.full(40, 100.0)
    ours = stream(RSI(14), xs)
    np.testing.assert_array_equal(ours, talib.RSI(xs, 14))
    assert ours[-1] == 0.0


def test_roc_from_zero_reference_is_zero_like_talib() -> None:
    xs = np.array([0.0, 1.0, 2.0, 3.0])
    ours = stream(ROC(1), xs)
    np.testing.assert_array_equal(ours, talib.ROC(xs, 1))
    assert ours[1] == 0.0


prices = st.lists(st.integers(-300, 300), min_size=1, max_size=150).map(
    lambda steps: np.round(60_000.0 + np.cumsum(steps) / 100.0, 2)
)


@settings(max_examples=150, deadline=None)
@given(xs=prices, period=st.integers(2, 30))
def test_random_walk_std_and_rsi_match_references(xs: np.ndarray, period: int) -> None:
    if len(xs) >= period:
        np.testing.assert_allclose(stream(RollingStd(period), xs), exact_std(xs, period), rtol=1e-11, atol=0)
    np.testing.assert_allclose(stream(RSI(period), xs), talib.RSI(xs, period), rtol=RTOL, atol=0)
    np.testing.assert_allclose(stream(SMA(period), xs), talib.SMA(xs, period), rtol=RTOL, atol=0)


@settings(max_examples=150, deadline=None)
@given(
    xs=st.lists(
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
        min_size=2,
        max_size=80,
    ),
    period=st.integers(2, 20),
)
def test_arbitrary_floats_std_matches_exact_reference(xs: list[float], period: int) -> None:
    from fractions import Fraction

    ind = RollingStd(period)
    for i, x in enumerate(xs):
        got = ind.update(x)
        if i + 1 < period:
            assert math.isnan(got)
            continue
        window = [Fraction(v) for v in xs[i + 1 - period : i + 1]]
        mean = sum(window) / period
        want = math.sqrt(float(sum((v - mean) ** 2 for v in window) / period))
        assert got == pytest.approx(want, rel=1e-11, abs=0)


# --------------------------------------------------------------------------- warm-up and edge cases


@pytest.mark.parametrize(
    ("factory", "first_value_at"),
    [
        (lambda: SMA(20), 19),
        (lambda: RollingStd(20), 19),
        (lambda: ZScore(20), 19),
        (lambda: Bollinger(20), 19),
        (lambda: RSI(14), 14),
        (lambda: ROC(10), 10),
    ],
)
def test_ready_flips_exactly_with_first_value(
    close: np.ndarray, factory: Callable[[], Any], first_value_at: int
) -> None:
    ind = factory()
    for i, x in enumerate(close[:40].tolist()):
        assert ind.ready == (i > first_value_at)
        out = ind.update(x)
        assert math.isnan(out) == (i < first_value_at)
        assert ind.ready == (i >= first_value_at)
        if ind.ready:
            assert ind.value == out


def test_flat_window_std_is_exactly_zero_and_zscore_zero() -> None:
    std, z = RollingStd(5), ZScore(5)
    xs = [61_000.0 + i * 13.37 for i in range(30)] + [61_234.56] * 10
    for x in xs:
        s, zz = std.update(x), z.update(x)
    assert s == 0.0
    assert zz == 0.0


def test_std_after_huge_move_then_quiet_window_stays_accurate() -> None:
    # the sliding update's rounding after a 1e6 swing would swamp a 1e-3 spread without the exact re-compute
    xs = [1e6, -1e6, 1e6, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007]
    ind = RollingStd(5)
    out = [ind.update(x) for x in xs]
    assert out[-1] == pytest.approx(float(np.std(xs[-5:])), rel=1e-12)


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_invalid_period_raises_value_error(bad: Any) -> None:
    with pytest.raises(ValueError, match="period"):
        SMA(bad)


def test_zscore_period_one_raises_value_error() -> None:
    with pytest.raises(ValueError, match="period"):
        ZScore(1)


# --------------------------------------------------------------------------- state / restore


FACTORIES: dict[str, Callable[[], Any]] = {
    "sma": lambda: SMA(20),
    "rolling_mean": lambda: RollingMean(7),
    "rolling_std": lambda: RollingStd(20),
    "zscore": lambda: ZScore(20),
    "bollinger": lambda: Bollinger(20, 2.0, 1.5),
    "rsi": lambda: RSI(14),
    "roc": lambda: ROC(10),
}


def outputs(ind: Any, xs: list[float]) -> list[tuple[float, ...]]:
    rows = []
    for x in xs:
        out = ind.update(x)
        extra = (ind.upper, ind.lower, ind.std) if isinstance(ind, Bollinger) else ()
        rows.append((out, *extra))
    return rows


@pytest.mark.parametrize("name", sorted(FACTORIES))
@pytest.mark.parametrize("split", [0, 1, 9, 19, 20, 21, 777, 15_451])
def test_state_roundtrip_mid_stream_gives_identical_outputs(close: np.ndarray, name: str, split: int) -> None:
    xs = close.tolist()
    original = FACTORIES[name]()
    for x in xs[:split]:
        original.update(x)
    state = json.loads(json.dumps(original.state(), allow_nan=False))
    restored = type(original).restore(state)
    assert type(restored) is type(original)
    assert restored.ready == original.ready
    assert restored.value == original.value or (math.isnan(restored.value) and math.isnan(original.value))
    rest = xs[split : split + 3000]
    np.testing.assert_array_equal(np.array(outputs(restored, rest)), np.array(outputs(original, rest)))
    assert restored.state() == original.state()


def test_restore_state_of_other_indicator_raises_value_error() -> None:
    with pytest.raises(ValueError, match="SMA"):
        RollingStd.restore(SMA(5).state())
    with pytest.raises(ValueError, match="RollingMean"):
        SMA.restore(RollingMean(5).state())
