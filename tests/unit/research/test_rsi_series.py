"""rsi_series equals the streaming RSI bit for bit, on the finite fast path and around nan restarts."""

from __future__ import annotations

import numpy as np
import pytest

from actors.core.indicators import RSI
from supervisor.research.fast_backtest import rsi_series


def _streaming(values: list[float], period: int) -> np.ndarray:
    core = RSI(period)
    return np.array([core.update(x) for x in values], dtype=np.float64)


def _walk(n: int, seed: int) -> list[float]:
    return [float(x) for x in 100.0 + np.cumsum(np.random.default_rng(seed).normal(size=n))]


@pytest.mark.parametrize("period", [2, 3, 14, 30])
@pytest.mark.parametrize("n", [0, 1, 2, 3, 14, 15, 16, 31, 500])
def test_rsi_series_equals_streaming_rsi_bit_for_bit_at_every_length(period: int, n: int) -> None:
    values = _walk(n, seed=n + period)
    np.testing.assert_array_equal(rsi_series(values, period), _streaming(values, period))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_rsi_series_equals_streaming_rsi_around_a_nan_or_infinite_value(bad: float) -> None:
    values = _walk(300, seed=5)
    values[40] = bad
    values[41] = bad
    np.testing.assert_array_equal(rsi_series(values, 14), _streaming(values, 14))


def test_rsi_series_of_a_flat_series_is_zero_after_the_seed() -> None:
    out = rsi_series([5.0] * 40, 14)
    assert np.isnan(out[:14]).all()
    assert (out[14:] == 0.0).all()
