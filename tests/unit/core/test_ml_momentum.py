"""ML momentum: no look-ahead, exact features, delayed model swap, exact restore, leak-free research split.

The look-ahead proof is empirical and strict: whatever happens after bar T (here, garbage)
must not change a single bit of what the strategy said up to T, including at the bar where
a model was just fitted or swapped in (the places a label leak would show).
"""

from __future__ import annotations

import csv
import json
import math
import random
from collections.abc import Callable
from concurrent.futures import Future
from functools import cache
from typing import Any

import numpy as np
import pytest
import sklearn.ensemble
from sklearn.ensemble import RandomForestClassifier

from actors.core.strategies import build_strategy
from actors.core.strategies.ml_momentum import (
    FEATURE_NAMES,
    FIRST_FEATURE_BAR,
    FlatForest,
    MlMomentum,
    MomentumFeatures,
    compute_features,
    evaluate_chronological,
)
from actors.core.strategies.offload import Offloading
from actors.domain.model import Candle, Side, Signal
from config.models import MlMomentumConfig
from tests.paths import BTC_1M

DATA = BTC_1M
MARKET = "binance:BTC/USDT"
PREFIX = 1200
DELAY = 7
"""The swap delay of the small config: shorter than its retrain period (50 bars)."""


def small_config(**overrides: Any) -> MlMomentumConfig:
    settings: dict[str, Any] = {
        "name": "ml_test",
        "market": MARKET,
        "n_estimators": 10,
        "min_train_rows": 200,
        "retrain_every": 50,
        "max_train_rows": 300,
        "entry_probability": 0.55,
        "exit_probability": 0.45,
        "model_swap_delay_bars": DELAY,
    }
    settings.update(overrides)
    return MlMomentumConfig(**settings)


@cache
def real_candles() -> tuple[Candle, ...]:
    with DATA.open(newline="") as f:
        return tuple(
            Candle(
                market=MARKET,
                ts_ms=int(row["timestamp"]),
                open=float(row["open"]),
                high=float(row["high"]),
                low=float(row["low"]),
                close=float(row["close"]),
                volume=float(row["volume"]),
            )
            for row in csv.DictReader(f)
        )


def garbage_after(candles: tuple[Candle, ...], t: int, seed: int = 7) -> list[Candle]:
    """Bars 0..t untouched; every later bar keeps its time but gets random prices and volume."""
    rng = random.Random(seed)
    out = list(candles[: t + 1])
    for c in candles[t + 1 :]:
        price = rng.uniform(1.0, 1e6)
        out.append(
            Candle(
                market=MARKET,
                ts_ms=c.ts_ms,
                open=price,
                high=price * 2,
                low=price / 2,
                close=rng.uniform(1.0, 1e6),
                volume=rng.uniform(0.0, 1e5),
            )
        )
    return out


class Run:
    """Per-bar record of one strategy run: signals, P(up), the model in use and the fits pending."""

    def __init__(self, strategy: MlMomentum) -> None:
        self.strategy = strategy
        self.signals: list[list[Signal]] = []
        self.probabilities: list[float | None] = []
        self.train_bars: list[int | None] = []
        self.windows: list[tuple[int, int] | None] = []
        self.pending: list[tuple[tuple[int, tuple[int, int], int], ...]] = []

    def feed(self, candles: list[Candle] | tuple[Candle, ...]) -> Run:
        for candle in candles:
            self.signals.append(self.strategy.on_candle(candle))
            self.probabilities.append(self.strategy.last_probability)
            self.train_bars.append(self.strategy.last_train_bar)
            self.windows.append(self.strategy.training_window)
            self.pending.append(self.strategy.pending_fits)
        return self

    @property
    def fit_bars(self) -> list[int]:
        """Bars at which a fit started (whether or not its model is in use yet)."""
        started = {p[0] for pending in self.pending for p in pending}
        return sorted(started | {b for b in self.train_bars if b is not None})

    @property
    def swap_bars(self) -> list[int]:
        """Bars from which a newly fitted model predicts."""
        before = [None, *self.train_bars[:-1]]
        return [i for i, (a, b) in enumerate(zip(before, self.train_bars, strict=True)) if a != b]


@cache
def baseline() -> Run:
    return Run(MlMomentum(small_config())).feed(real_candles()[:PREFIX])


# --------------------------------------------------------------------------- no look-ahead


@pytest.mark.parametrize(
    "where",
    ["first_swap", "retrain", "fit_pending", "swap", "bar_after_retrain", "mid_cycle", "late_retrain"],
)
def test_garbage_after_t_leaves_signals_up_to_t_identical(where: str) -> None:
    base = baseline()
    fits, swaps = base.fit_bars, base.swap_bars
    t = {
        "first_swap": swaps[0],  # the first bar with a model (the first fit's bar cannot signal yet)
        "retrain": fits[3],
        "fit_pending": fits[3] + DELAY // 2,
        "swap": swaps[3],
        "bar_after_retrain": fits[3] + 1,
        "mid_cycle": fits[5] + 23,
        "late_retrain": fits[-2],
    }[where]
    corrupted = Run(MlMomentum(small_config())).feed(garbage_after(real_candles()[:PREFIX], t)[: t + 120])

    assert corrupted.probabilities[: t + 1] == base.probabilities[: t + 1]
    assert corrupted.signals[: t + 1] == base.signals[: t + 1]
    assert corrupted.windows[: t + 1] == base.windows[: t + 1]
    # The comparison means something: there were signals, and the garbage did change what came after.
    assert any(base.signals[: t + 1])
    assert corrupted.probabilities[t + 1 :] != base.probabilities[t + 1 : t + 120]


@pytest.mark.parametrize("delay", [0, DELAY, 60])  # 60: longer than the retrain period, two fits pending
def test_fit_at_bar_t_uses_rows_up_to_t_minus_horizon_only_from_t_plus_delay(delay: int) -> None:
    config = small_config(model_swap_delay_bars=delay)
    base = Run(MlMomentum(config)).feed(real_candles()[:PREFIX])
    h = config.horizon
    fits = base.fit_bars
    # First fit: exactly when min_train_rows rows have a known label (row 26 is the first with features).
    assert fits[0] == FIRST_FEATURE_BAR + h + config.min_train_rows - 1
    assert fits[1:] == list(range(fits[0] + config.retrain_every, PREFIX, config.retrain_every))
    assert base.swap_bars == [f + delay for f in fits if f + delay < PREFIX]
    for fit, until in zip(fits, [*fits[1:], PREFIX], strict=True):
        used = range(fit + delay, min(until + delay, PREFIX))
        assert {base.train_bars[bar] for bar in used} <= {fit}
        for bar in used:
            window = base.windows[bar]
            assert window is not None
            first, last = window
            assert last == fit - h
            assert last - first + 1 == min(config.max_train_rows, last + 1)
    assert all(p is None for p in base.probabilities[: fits[0] + delay])
    assert all(p is not None for p in base.probabilities[fits[0] + delay :])


def oracle_probabilities(
    candles: tuple[Candle, ...], config: MlMomentumConfig, fits: list[int]
) -> list[float | None]:
    """P(up) per bar from scikit-learn itself: the forest fitted at bar f on rows <= f - horizon, used
    from f + delay until the next one is; features from the incremental code, no ring buffer."""
    features = MomentumFeatures()
    rows = [features.update(c.close, c.volume) for c in candles]
    closes = [c.close for c in candles]
    h, delay = config.horizon, config.model_swap_delay_bars
    x_all = np.array([r if r is not None else (0.0,) * len(FEATURE_NAMES) for r in rows])
    out: list[float | None] = [None] * len(candles)
    for fit, until in zip(fits, [*fits[1:], len(candles)], strict=True):
        last = fit - h
        train = [i for i in range(max(0, last - config.max_train_rows + 1), last + 1) if rows[i] is not None]
        model = RandomForestClassifier(
            n_estimators=config.n_estimators, random_state=config.seed, max_depth=config.max_depth, n_jobs=1
        ).fit(x_all[train], [closes[i + h] > closes[i] for i in train])
        p_up = model.predict_proba(x_all)[:, list(model.classes_).index(True)]
        for bar in range(fit + delay, min(until + delay, len(candles))):
            out[bar] = float(p_up[bar]) if rows[bar] is not None else None
    return out


@pytest.mark.parametrize("delay", [0, DELAY])
def test_probabilities_equal_sklearn_models_fitted_at_n_and_used_from_n_plus_delay(delay: int) -> None:
    """delay 0 is the behaviour before delayed swaps: each fit predicts from the bar that made it."""
    config = small_config(model_swap_delay_bars=delay)
    candles = real_candles()[:700]
    run = Run(MlMomentum(config)).feed(candles)
    assert len(run.fit_bars) > 3
    assert run.probabilities == oracle_probabilities(candles, config, run.fit_bars)


class Deferred:
    """A Submit that runs nothing until told to: the fit is 'still running' until ``finish``."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Callable[[], Any], Future[Any]]] = []

    def __call__(self, job: Callable[[], Any], /) -> Future[Any]:
        future: Future[Any] = Future()
        self.jobs.append((job, future))
        return future

    def finish(self) -> None:
        for job, future in self.jobs:
            if not future.done():
                future.set_result(job())


def test_offloaded_fit_is_awaited_only_on_its_swap_bar_and_gives_identical_signals() -> None:
    candles = real_candles()[:PREFIX]
    inline = baseline()
    strategy = MlMomentum(small_config())
    assert isinstance(strategy, Offloading)
    deferred = Deferred()
    strategy.offload_with(deferred)
    deferred_run = Run(strategy)
    waited_at: list[int] = []
    for bar, candle in enumerate(candles):
        waits = strategy.waits_for(candle)
        if waits:
            waited_at.append(bar)
            deferred.finish()
            assert all(w.done() for w in waits)
        deferred_run.feed([candle])
        assert strategy.waits_for(candle) == []  # a replayed bar is ignored: nothing to await for it

    assert waited_at == inline.swap_bars  # the fit is needed on its swap bar, not before
    assert len(deferred.jobs) == len(inline.fit_bars)
    assert deferred_run.probabilities == inline.probabilities
    assert deferred_run.signals == inline.signals


def test_no_swap_delay_fits_inline_even_when_offloading() -> None:
    strategy = MlMomentum(small_config(model_swap_delay_bars=0))
    deferred = Deferred()
    strategy.offload_with(deferred)
    run = Run(strategy).feed(real_candles()[:400])
    assert deferred.jobs == []
    assert (
        run.probabilities
        == Run(MlMomentum(small_config(model_swap_delay_bars=0))).feed(real_candles()[:400]).probabilities
    )


def test_failed_fit_rejects_its_swap_bar_and_is_retried_on_the_next() -> None:
    candles = real_candles()[:PREFIX]
    strategy = MlMomentum(small_config())
    failing = Deferred()
    strategy.offload_with(failing)
    bar = 0
    while not strategy.pending_fits:
        strategy.on_candle(candles[bar])
        bar += 1
    ((started, _, ready),) = strategy.pending_fits
    _, future = failing.jobs[0]
    future.set_exception(MemoryError("no room for the forest"))
    for candle in candles[bar:ready]:
        strategy.on_candle(candle)
    with pytest.raises(MemoryError):
        strategy.on_candle(candles[ready])
    assert strategy.pending_fits == ()
    assert strategy.training_window is None
    strategy.offload_with(Deferred())
    strategy.on_candle(candles[ready + 1])
    ((restarted, _, ready_again),) = strategy.pending_fits
    assert (restarted, ready_again) == (ready + 1, ready + 1 + DELAY)
    assert started < restarted


# --------------------------------------------------------------------------- features


def reference_features(closes: list[float], volumes: list[float]) -> list[tuple[float, ...] | None]:
    """Textbook definitions, one bar at a time, no numpy: the oracle for both implementations."""
    out: list[tuple[float, ...] | None] = []
    returns_7 = [math.nan if i < 7 else closes[i] / closes[i - 7] - 1 for i in range(len(closes))]
    for i in range(len(closes)):
        if i < 26:
            out.append(None)
            continue
        roc_7 = (closes[i] - closes[i - 7]) / closes[i - 7]
        roc_14 = (closes[i] - closes[i - 14]) / closes[i - 14]
        mean_volume = sum(volumes[i - 19 : i + 1]) / 20
        window = returns_7[i - 19 : i + 1]
        mean_r = sum(window) / 20
        std = math.sqrt(sum((r - mean_r) ** 2 for r in window) / 19)
        out.append(
            (roc_7, roc_14, volumes[i] / mean_volume, returns_7[i], closes[i] / closes[i - 14] - 1, std)
        )
    return out


def small_series(n: int = 80, seed: int = 3) -> tuple[list[float], list[float]]:
    rng = random.Random(seed)
    closes, volumes, price = [], [], 100.0
    for _ in range(n):
        price *= 1 + rng.gauss(0, 0.01)
        closes.append(price)
        volumes.append(rng.uniform(1, 50))
    return closes, volumes


def test_incremental_features_match_reference_definitions() -> None:
    closes, volumes = small_series()
    expected = reference_features(closes, volumes)
    features = MomentumFeatures()
    got = [features.update(c, v) for c, v in zip(closes, volumes, strict=True)]

    assert got[:FIRST_FEATURE_BAR] == [None] * FIRST_FEATURE_BAR
    for bar in range(FIRST_FEATURE_BAR, len(closes)):
        row, ref = got[bar], expected[bar]
        assert row is not None
        assert ref is not None
        assert len(row) == len(FEATURE_NAMES)
        for name, a, b in zip(FEATURE_NAMES, row, ref, strict=True):
            assert math.isclose(a, b, rel_tol=1e-11, abs_tol=1e-15), (bar, name, a, b)
        # roc_n and returns_n are the same quantity, computed two ways.
        assert math.isclose(row[0], row[3], rel_tol=1e-9, abs_tol=1e-15)
        assert math.isclose(row[1], row[4], rel_tol=1e-9, abs_tol=1e-15)


def test_vectorised_features_match_reference_definitions() -> None:
    closes, volumes = small_series(seed=11)
    expected = reference_features(closes, volumes)
    got = compute_features(np.array(closes), np.array(volumes))

    assert got.shape == (len(closes), len(FEATURE_NAMES))
    assert np.isnan(got[:FIRST_FEATURE_BAR]).all()
    ref = np.array([r for r in expected if r is not None])
    np.testing.assert_allclose(got[FIRST_FEATURE_BAR:], ref, rtol=1e-11, atol=1e-15)


def test_strategy_feature_rows_match_reference_on_real_bars() -> None:
    candles = real_candles()[:100]
    strategy = MlMomentum(small_config())
    for candle in candles:
        strategy.on_candle(candle)
    expected = reference_features([c.close for c in candles], [c.volume for c in candles])

    assert strategy.feature_row(FIRST_FEATURE_BAR - 1) is None
    for bar in range(FIRST_FEATURE_BAR, len(candles)):
        row, ref = strategy.feature_row(bar), expected[bar]
        assert row is not None
        assert ref is not None
        np.testing.assert_allclose(row, ref, rtol=1e-11, atol=1e-15)


def test_zero_volume_window_and_zero_close_give_nan_features() -> None:
    features = MomentumFeatures()
    rows = [features.update(100.0 + i, 0.0) for i in range(30)]
    last = rows[-1]
    assert last is not None
    assert math.isnan(last[2])  # volume / mean volume with mean 0
    assert math.isfinite(last[0])

    features = MomentumFeatures()
    closes = [0.0] + [100.0] * 40
    rows = [features.update(c, 1.0) for c in closes]
    # returns_7 of bar 7 divides by the zero close; it leaves the volatility window at bar 27
    vectorised = compute_features(np.array(closes), np.ones(len(closes)))
    for bar in (26, 27):
        row = rows[bar]
        assert row is not None
        assert math.isnan(row[5]) == (bar == 26) == math.isnan(vectorised[bar, 5])
        assert all(math.isfinite(x) for x in row[:5])


# --------------------------------------------------------------------------- the flattened forest


@pytest.mark.parametrize("max_depth", [3, None])
def test_flat_forest_equals_sklearn_predict_proba_bit_for_bit(max_depth: int | None) -> None:
    candles = real_candles()[:3000]
    closes = np.array([c.close for c in candles])
    x = compute_features(closes, np.array([c.volume for c in candles]))[FIRST_FEATURE_BAR:-5]
    y = closes[FIRST_FEATURE_BAR + 5 :] > closes[FIRST_FEATURE_BAR:-5]
    model = RandomForestClassifier(n_estimators=15, max_depth=max_depth, random_state=1, n_jobs=1)
    model.fit(x[:2000], y[:2000])

    expected = model.predict_proba(x)[:, 1]
    got = FlatForest(model).predict_up(x)
    assert np.array_equal(got, expected)


def test_forest_fitted_on_two_threads_predicts_bit_for_bit_as_on_one() -> None:
    """Each tree's seed is drawn before the trees are built, so n_jobs cannot change a model
    (kept at 1 anyway: on two cores the feed needs the other one while a fit runs)."""
    candles = real_candles()[:3000]
    closes = np.array([c.close for c in candles])
    x = compute_features(closes, np.array([c.volume for c in candles]))[FIRST_FEATURE_BAR:-5]
    y = closes[FIRST_FEATURE_BAR + 5 :] > closes[FIRST_FEATURE_BAR:-5]
    one, two = (
        RandomForestClassifier(n_estimators=24, max_depth=8, random_state=42, n_jobs=jobs).fit(x, y)
        for jobs in (1, 2)
    )
    assert np.array_equal(FlatForest(one).predict_up(x), FlatForest(two).predict_up(x))


@pytest.mark.parametrize("label", [True, False])
def test_flat_forest_single_class_training_gives_certain_probability(label: bool) -> None:
    x = np.random.default_rng(0).normal(size=(50, 6))
    model = RandomForestClassifier(n_estimators=5, random_state=0, n_jobs=1).fit(x, np.full(50, label))
    assert np.array_equal(FlatForest(model).predict_up(x[:4]), np.full(4, 1.0 if label else 0.0))


# --------------------------------------------------------------------------- signals and filtering


def test_signals_follow_thresholds_and_use_bar_close_time() -> None:
    base = baseline()
    config = small_config()
    candles = real_candles()
    fired = 0
    for bar, (signals, p) in enumerate(zip(base.signals, base.probabilities, strict=True)):
        if p is None or config.exit_probability < p < config.entry_probability:
            assert signals == []
            continue
        (signal,) = signals
        fired += 1
        assert signal.ts_ms == candles[bar].ts_ms + 60_000
        assert signal.price == candles[bar].close
        assert signal.market == MARKET
        assert signal.strategy == "ml_test"
        if p >= config.entry_probability:
            assert signal.side is Side.BUY
            assert signal.strength == p
        else:
            assert signal.side is Side.SELL
            assert signal.strength == 1 - p
    assert fired > 0
    assert {s.side for bar in base.signals for s in bar} == {Side.BUY, Side.SELL}


def test_foreign_market_and_stale_candles_are_ignored() -> None:
    candles = real_candles()[:400]
    clean = Run(MlMomentum(small_config())).feed(candles)
    noisy_input: list[Candle] = []
    for c in candles:
        noisy_input.append(c)
        noisy_input.append(c.model_copy(update={"market": "binance:ETH/USDT", "close": 1.0}))
        noisy_input.append(c.model_copy(update={"close": c.close * 3}))  # same ts_ms again: a replay
    noisy = Run(MlMomentum(small_config())).feed(noisy_input)

    assert noisy.strategy.bars_seen == len(candles)
    assert noisy.probabilities[0::3] == clean.probabilities
    assert noisy.signals[0::3] == clean.signals
    assert not any(noisy.signals[1::3])
    assert not any(noisy.signals[2::3])


def test_degenerate_bars_give_no_signal_and_no_error() -> None:
    candles = list(real_candles()[:400])
    strategy = MlMomentum(small_config())
    for c in candles:
        strategy.on_candle(c)
    ts = candles[-1].ts_ms
    weird = [
        (0.0, 1.0),
        (float("nan"), 1.0),
        (float("inf"), 1.0),
        (-5.0, 1.0),
        (1e300, 0.0),
        (50_000.0, 1e300),
    ]
    for i, (close, volume) in enumerate(weird, start=1):
        # bypass validation: the model now refuses these, but a strategy must survive them anyway
        c = Candle.model_construct(
            market=MARKET,
            ts_ms=ts + i * 60_000,
            interval_ms=60_000,
            open=1,
            high=1,
            low=1,
            close=close,
            volume=volume,
        )
        for signal in strategy.on_candle(c):
            assert signal.price > 0
            assert 0 <= signal.strength <= 1
    state = strategy.state()
    json.dumps(state, allow_nan=False)  # non-finite values are stored as null
    twin = MlMomentum(small_config())
    twin.restore(json.loads(json.dumps(state)))
    assert twin.state() == state


def test_build_strategy_resolves_ml_momentum_kind() -> None:
    strategy = build_strategy(small_config())
    assert isinstance(strategy, MlMomentum)
    assert strategy.kind == "ml_momentum"


# --------------------------------------------------------------------------- checkpoint


@pytest.mark.parametrize(
    ("overrides", "where"),
    [
        ({}, "warming_up"),
        ({}, "first_fit_pending"),
        ({}, "retrain"),
        ({}, "before_swap"),
        ({}, "swap"),
        ({}, "mid_cycle"),
        ({"max_train_rows": 100}, "mid_cycle"),  # history ring has wrapped: capacity 189 bars
        ({"max_train_rows": 100}, "retrain"),
        ({"max_train_rows": 100}, "before_swap"),
        ({"max_train_rows": 100, "model_swap_delay_bars": 60}, "before_swap"),  # two fits pending
        ({"model_swap_delay_bars": 0}, "retrain"),
        ({"model_swap_delay_bars": 0}, "mid_cycle"),
    ],
)
def test_restore_mid_stream_gives_identical_later_signals(overrides: dict[str, Any], where: str) -> None:
    config = small_config(**overrides)
    candles = real_candles()[:900]
    full = Run(MlMomentum(config)).feed(candles)
    fits = full.fit_bars
    delay = config.model_swap_delay_bars
    k = {
        "warming_up": 100,
        "first_fit_pending": fits[0] + delay // 2,
        "retrain": fits[6],
        "before_swap": fits[6] + delay - 1,
        "swap": fits[6] + delay,
        "mid_cycle": fits[8] + 31,
    }[where]
    assert bool(full.pending[k]) == (where in ("first_fit_pending", "retrain", "before_swap") and delay > 0)

    first = MlMomentum(config)
    for c in candles[: k + 1]:
        first.on_candle(c)
    state = json.loads(json.dumps(first.state(), allow_nan=False))
    assert len(state["closes"]) == min(k + 1, first.capacity)
    restored = MlMomentum(config)
    restored.restore(state)
    assert restored.state() == first.state()
    resumed = Run(restored).feed(candles[k + 1 :])

    assert resumed.probabilities == full.probabilities[k + 1 :]
    assert resumed.signals == full.signals[k + 1 :]
    assert resumed.windows == full.windows[k + 1 :]
    assert any(resumed.signals)


def test_restore_of_version_1_state_keeps_its_model_and_schedule() -> None:
    """A checkpoint from before delayed swaps (no pending fits) restores as it was taken."""
    config = small_config(model_swap_delay_bars=0)
    candles = real_candles()[:900]
    full = Run(MlMomentum(config)).feed(candles)
    k = full.fit_bars[6] + 20
    first = MlMomentum(config)
    for c in candles[: k + 1]:
        first.on_candle(c)
    state = first.state()
    del state["pending_fits"]
    restored = MlMomentum(config)
    restored.restore(state | {"version": 1})
    resumed = Run(restored).feed(candles[k + 1 :])
    assert resumed.probabilities == full.probabilities[k + 1 :]
    assert resumed.windows == full.windows[k + 1 :]


def test_restore_rejects_unknown_state_version() -> None:
    strategy = MlMomentum(small_config())
    state = strategy.state() | {"version": 99}
    with pytest.raises(ValueError, match="version"):
        strategy.restore(state)


# --------------------------------------------------------------------------- research helper


def test_evaluate_chronological_split_is_exact_and_leak_free(monkeypatch: pytest.MonkeyPatch) -> None:
    candles = real_candles()
    closes = np.array([c.close for c in candles])
    volumes = np.array([c.volume for c in candles])
    config = small_config()
    h = config.horizon
    fitted: list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]] = []

    class Recording(RandomForestClassifier):  # type: ignore[misc]
        def fit(self, x: Any, y: Any, sample_weight: Any = None) -> Any:
            fitted.append((np.array(x), np.array(y)))
            return super().fit(x, y, sample_weight=sample_weight)

    monkeypatch.setattr(sklearn.ensemble, "RandomForestClassifier", Recording)  # imported when fitting
    result = evaluate_chronological(closes, volumes, config)

    rows = len(closes) - h - FIRST_FEATURE_BAR  # every real bar has finite features
    split = int(rows * 0.8)
    assert result["n_test"] == rows - split
    assert result["n_train"] == split - h
    assert result["train_first_bar"] == FIRST_FEATURE_BAR
    assert result["train_last_bar"] == FIRST_FEATURE_BAR + split - h - 1
    assert result["test_first_bar"] == FIRST_FEATURE_BAR + split
    assert result["test_last_bar"] == len(closes) - h - 1
    assert result["train_last_bar"] + h < result["test_first_bar"]
    assert 0.0 <= result["accuracy"] <= 1.0
    assert 0.0 <= result["precision"] <= 1.0
    assert 0.3 < result["base_rate"] < 0.7

    # Garbage from the first test bar on changes nothing the model was trained on.
    rng = np.random.default_rng(5)
    start = int(result["test_first_bar"])
    closes_bad, volumes_bad = closes.copy(), volumes.copy()
    closes_bad[start:] = rng.uniform(1, 1e6, len(closes) - start)
    volumes_bad[start:] = rng.uniform(0, 1e5, len(closes) - start)
    corrupted = evaluate_chronological(closes_bad, volumes_bad, config)
    (x_clean, y_clean), (x_bad, y_bad) = fitted
    assert x_clean.shape == (result["n_train"], len(FEATURE_NAMES))
    assert np.array_equal(x_clean, x_bad)
    assert np.array_equal(y_clean, y_bad)
    assert corrupted["n_train"] == result["n_train"]
    assert corrupted["accuracy"] != result["accuracy"]


def test_evaluate_chronological_too_short_series_raises() -> None:
    with pytest.raises(ValueError, match="not enough rows"):
        evaluate_chronological([100.0] * 30, [1.0] * 30, small_config())


def test_negative_swap_delay_is_rejected_and_default_is_positive() -> None:
    with pytest.raises(ValueError, match="model_swap_delay_bars"):
        small_config(model_swap_delay_bars=-1)
    assert MlMomentumConfig(name="ml", market=MARKET).model_swap_delay_bars > 0
