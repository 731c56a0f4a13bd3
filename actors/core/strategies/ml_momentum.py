"""ML momentum (algo-trading guide): a random forest on momentum features predicts "up in 5 bars".

Per bar the features are roc_7, roc_14, volume_ratio, returns_7, returns_14 and volatility;
the label of bar ``i`` is ``close[i + horizon] > close[i]``. The strategy buys when the
forest's P(up) is at least ``entry_probability`` and exits when it is at most
``exit_probability``, with the probability (or its complement) as signal strength.

No look-ahead, by construction: the label of bar ``i`` is known only at bar ``i + horizon``,
so a model trained at bar ``t`` sees rows ``<= t - horizon`` and nothing else. Everything a
bar's decision depends on is computed from bars up to and including that bar.

Retraining is a delayed swap: the fit decided at bar N (on rows up to N - horizon) is first used
at bar N + ``model_swap_delay_bars``; until then the previous model predicts. Which model serves
a bar is thus a function of the data alone, in every driver, while the fit itself may run
anywhere (``offload_with``: the strategy actor runs it in a worker thread, off the feed's path).

Per-bar work is cheap: features are updated incrementally from small bounded windows, the
fitted forest is flattened into numpy arrays so one prediction is a handful of vectorised
steps (bit-identical to ``RandomForestClassifier.predict_proba``, but ~50x faster than its
per-call overhead), and the bar history is a fixed-size ring buffer.
"""

from __future__ import annotations

import math
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from actors.core.strategies.base import StrategyCore
from actors.core.strategies.offload import Submit, run_inline
from actors.domain.model import Candle, Side, Signal
from config.models import MlMomentumConfig

NAN = float("nan")
FEATURE_NAMES = ("roc_7", "roc_14", "volume_ratio", "returns_7", "returns_14", "volatility")
SHORT = 7
LONG = 14
VOLUME_WINDOW = 20
VOLATILITY_WINDOW = 20
FIRST_FEATURE_BAR = max(LONG, VOLUME_WINDOW - 1, SHORT + VOLATILITY_WINDOW - 1)
"""0-based index of the first bar with every feature defined (26): volatility needs 20 returns_7."""
STATE_VERSION = 2
"""2: pending fits (started, not yet in use) are part of the state; a version 1 state has none."""
_F32_MAX = float(np.finfo(np.float32).max)  # scikit-learn casts X to float32; beyond this it refuses


def _finite(x: float) -> float:
    """Non-finite inputs become nan, so inf can never turn into a finite feature (e.g. x/inf = 0)."""
    return x if math.isfinite(x) else NAN


def _roc(now: float, then: float) -> float:
    """The guide's rate of change: (close - close n bars ago) / close n bars ago."""
    return (now - then) / then if then != 0.0 else NAN


def _returns(now: float, then: float) -> float:
    """The guide's n-bar return, pandas ``pct_change(n)``: close / close n bars ago - 1."""
    return now / then - 1.0 if then != 0.0 else NAN


def _mean(values: deque[float]) -> float:
    """Correctly rounded mean (``math.fsum``): order-independent, so replay gives identical bits."""
    try:
        return math.fsum(values) / len(values)
    except (ValueError, OverflowError):  # inf - inf, or an intermediate overflow
        return NAN


def _sample_std(values: deque[float]) -> float:
    """Sample standard deviation (ddof=1), as pandas ``rolling(n).std()`` in the guide."""
    mean = _mean(values)
    if not math.isfinite(mean):
        return NAN
    try:
        var = math.fsum((v - mean) * (v - mean) for v in values) / (len(values) - 1)
    except (ValueError, OverflowError):
        return NAN
    return math.sqrt(var) if math.isfinite(var) else NAN


class MomentumFeatures:
    """The guide's six features, updated one bar at a time from bounded windows.

    roc_n and returns_n coincide mathematically (both are the n-bar relative change; they may
    differ in the last bit since they are evaluated differently). The guide lists both, so
    both are kept: the forest's feature sampling then sees that information twice, as in the
    guide. volume_ratio is volume over the 20-bar mean volume (current bar included);
    volatility is the 20-bar sample standard deviation of returns_7.
    """

    def __init__(self) -> None:
        self._closes: deque[float] = deque(maxlen=LONG + 1)
        self._volumes: deque[float] = deque(maxlen=VOLUME_WINDOW)
        self._returns_short: deque[float] = deque(maxlen=VOLATILITY_WINDOW)

    def update(self, close: float, volume: float) -> tuple[float, ...] | None:
        """Features of the bar just closed, or None while fewer than 27 bars were seen.

        A feature is nan when an input in its window is not finite or a denominator is 0.
        """
        close, volume = _finite(close), _finite(volume)
        closes = self._closes
        closes.append(close)
        self._volumes.append(volume)
        if len(closes) > SHORT:
            self._returns_short.append(_returns(close, closes[-1 - SHORT]))
        if (
            len(closes) <= LONG
            or len(self._volumes) < VOLUME_WINDOW
            or len(self._returns_short) < VOLATILITY_WINDOW
        ):
            return None
        short_then, long_then = closes[-1 - SHORT], closes[-1 - LONG]
        mean_volume = _mean(self._volumes)
        volume_ratio = volume / mean_volume if mean_volume > 0.0 else NAN
        return (
            _roc(close, short_then),
            _roc(close, long_then),
            volume_ratio,
            self._returns_short[-1],
            _returns(close, long_then),
            _sample_std(self._returns_short),
        )


def compute_features(closes: NDArray[np.float64], volumes: NDArray[np.float64]) -> NDArray[np.float64]:
    """Vectorised features for research: shape (n, 6), nan where undefined (warm-up, bad inputs).

    Same definitions as ``MomentumFeatures``; values agree to rounding (numpy sums are not
    ``fsum``), which is all a research run needs.
    """
    c = np.asarray(closes, dtype=np.float64)
    v = np.asarray(volumes, dtype=np.float64)
    c = np.where(np.isfinite(c), c, np.nan)
    v = np.where(np.isfinite(v), v, np.nan)
    n = len(c)
    out = np.full((n, len(FEATURE_NAMES)), np.nan)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):

        def shifted(k: int) -> NDArray[np.float64]:
            prev = np.full(n, np.nan)
            if n > k:
                prev[k:] = c[: n - k]
            return np.where(prev != 0.0, prev, np.nan)

        short_then, long_then = shifted(SHORT), shifted(LONG)
        returns_short = c / short_then - 1.0
        out[:, 0] = (c - short_then) / short_then
        out[:, 1] = (c - long_then) / long_then
        out[:, 3] = returns_short
        out[:, 4] = c / long_then - 1.0
        if n >= VOLUME_WINDOW:
            mean_volume = np.lib.stride_tricks.sliding_window_view(v, VOLUME_WINDOW).mean(axis=1)
            mean_volume = np.where(mean_volume > 0.0, mean_volume, np.nan)
            out[VOLUME_WINDOW - 1 :, 2] = v[VOLUME_WINDOW - 1 :] / mean_volume
        if n >= SHORT + VOLATILITY_WINDOW:
            windows = np.lib.stride_tricks.sliding_window_view(returns_short[SHORT:], VOLATILITY_WINDOW)
            out[SHORT + VOLATILITY_WINDOW - 1 :, 5] = windows.std(axis=1, ddof=1)
    out[:FIRST_FEATURE_BAR] = np.nan
    return out


class FlatForest:
    """A fitted ``RandomForestClassifier`` as flat arrays: P(up) for a few rows without per-tree calls.

    Replicates scikit-learn exactly: inputs cast to float32, ``x <= threshold`` goes left,
    leaf class fractions summed over trees in order (``cumsum`` is strictly sequential, like
    sklearn's accumulation with n_jobs=1), then divided by the number of trees.
    """

    def __init__(self, model: Any) -> None:
        trees = [estimator.tree_ for estimator in model.estimators_]
        classes = list(model.classes_.tolist())
        up = classes.index(True) if True in classes else None
        sizes = [int(tree.node_count) for tree in trees]
        offsets = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
        feature_parts: list[NDArray[np.int64]] = []
        threshold_parts: list[NDArray[np.float64]] = []
        children_parts: list[NDArray[np.int64]] = []
        p_up_parts: list[NDArray[np.float64]] = []
        for tree, offset in zip(trees, offsets, strict=True):
            left = np.asarray(tree.children_left, dtype=np.int64)
            right = np.asarray(tree.children_right, dtype=np.int64)
            leaf = left < 0
            own = np.arange(len(left), dtype=np.int64)
            # A leaf points to itself, so every row can take the same number of steps.
            children = np.empty(2 * len(left), dtype=np.int64)
            children[0::2] = np.where(leaf, own, left) + offset
            children[1::2] = np.where(leaf, own, right) + offset
            feature_parts.append(np.where(leaf, 0, np.asarray(tree.feature, dtype=np.int64)))
            threshold_parts.append(np.asarray(tree.threshold, dtype=np.float64))
            children_parts.append(children)
            value = np.asarray(tree.value, dtype=np.float64)[:, 0, : len(classes)]
            p_up_parts.append(value[:, up] if up is not None else np.zeros(len(left)))
        self.n_trees = len(trees)
        self._roots = offsets
        self._feature = np.concatenate(feature_parts)
        self._threshold = np.concatenate(threshold_parts)
        # children[2 * node + go_right] with nodes numbered globally across trees.
        self._children = np.concatenate(children_parts)
        self._p_up = np.concatenate(p_up_parts)
        self._depth = max((int(tree.max_depth) for tree in trees), default=0)

    def predict_up(self, rows: NDArray[np.float64]) -> NDArray[np.float64]:
        """P(up) per row of ``rows`` (shape (m, n_features)); equals predict_proba[:, up]."""
        x = np.asarray(rows, dtype=np.float32).astype(np.float64)
        nodes = np.broadcast_to(self._roots, (x.shape[0], self.n_trees)).copy()
        for _ in range(self._depth):
            values = np.take_along_axis(x, self._feature[nodes], axis=1)
            go_right = ~(values <= self._threshold[nodes])
            nodes = self._children[2 * nodes + go_right]
        total: NDArray[np.float64] = np.cumsum(self._p_up[nodes], axis=1)[:, -1]
        return total / self.n_trees


def _forest(config: MlMomentumConfig) -> Any:
    """One job: n_jobs=2 builds the very same trees, but a fit runs beside the feed on two cores."""
    from sklearn.ensemble import RandomForestClassifier  # here: a feed asking for warmup_bars never loads it

    return RandomForestClassifier(
        n_estimators=config.n_estimators,
        random_state=config.seed,
        max_depth=config.max_depth,
        n_jobs=1,
    )


def _usable(row: tuple[float, ...] | NDArray[np.float64]) -> bool:
    """A row scikit-learn will accept (finite in float32) and that means something."""
    return all(math.isfinite(x) and abs(x) <= _F32_MAX for x in row)


def _fit_job(config: MlMomentumConfig, x: NDArray[np.float64], y: NDArray[np.bool_]) -> FlatForest:
    """The fit itself: pure, on copies of the rows, so it may run in any thread."""
    return FlatForest(_forest(config).fit(x, y))


@dataclass(frozen=True, slots=True)
class PendingFit:
    """A fit started at ``bar`` on rows ``window``, first used at bar ``ready``."""

    bar: int
    window: tuple[int, int]
    ready: int
    model: Future[FlatForest | None]


class MlMomentum(StrategyCore[MlMomentumConfig]):
    """Random-forest momentum on one market's closed bars; long-only entry and exit signals.

    History is a ring buffer of ``max_train_rows + horizon + retrain_every + delay + 27`` bars:
    the current model's training rows (up to ``retrain_every + delay - 1`` bars old plus the
    label horizon) and their feature warm-up must still be there, so ``restore`` can refit the
    very same model (and any pending one) from the state. Candles not newer than the last one
    are ignored, so a feed replaying a bar after a restart cannot shift the history.
    """

    kind = "ml_momentum"

    def __init__(self, config: MlMomentumConfig) -> None:
        super().__init__(config)
        self.capacity = (
            config.max_train_rows
            + config.horizon
            + config.retrain_every
            + config.model_swap_delay_bars
            + FIRST_FEATURE_BAR
            + 1
        )
        self._submit: Submit = run_inline
        self._reset()

    def _reset(self) -> None:
        cap = self.capacity
        self._features = MomentumFeatures()
        self._closes = np.full(cap, np.nan)
        self._volumes = np.full(cap, np.nan)
        self._rows = np.full((cap, len(FEATURE_NAMES)), np.nan)
        self._usable = np.zeros(cap, dtype=bool)
        self._bars = 0  # bars ingested so far = global index of the next bar
        self._last_ts_ms: int | None = None
        self._trainable = 0  # rows with usable features whose label is known
        self._last_train_bar: int | None = None
        self._window: tuple[int, int] | None = None
        self._model: FlatForest | None = None
        self._pending: deque[PendingFit] = deque()  # started, oldest first
        self.last_probability: float | None = None

    # ------------------------------------------------------------------ offloading

    def offload_with(self, submit: Submit) -> None:
        """Where later fits run; with no swap delay they stay inline (the bar that starts one uses it)."""
        self._submit = submit

    def waits_for(self, candle: Candle) -> list[Future[Any]]:
        """Unfinished fits that ``on_candle(candle)`` would swap in (it calls ``.result()`` on them)."""
        if not self._pending or self._pending[0].ready > self._bars or candle.market != self.config.market:
            return []
        if self._last_ts_ms is not None and candle.ts_ms <= self._last_ts_ms:
            return []
        return [p.model for p in self._pending if p.ready <= self._bars and not p.model.done()]

    # ------------------------------------------------------------------ introspection

    @property
    def bars_seen(self) -> int:
        return self._bars

    def warmup_bars(self, interval_ms: int) -> int:  # noqa: ARG002
        """Its training window: ``max_train_rows`` labelled rows, their label horizon and the
        first 26 bars, where a feature is still undefined (20,031 bars by default); or, if
        longer, until the first model is in use (``min_train_rows`` rows plus the swap delay)."""
        cfg = self.config
        rows = max(cfg.max_train_rows, cfg.min_train_rows + cfg.model_swap_delay_bars)
        return FIRST_FEATURE_BAR + rows + cfg.horizon

    @property
    def training_window(self) -> tuple[int, int] | None:
        """Global bar indices (first, last) of the rows the current model was fitted on."""
        return self._window

    @property
    def last_train_bar(self) -> int | None:
        """Global index of the bar at which the current model was fitted."""
        return self._last_train_bar

    @property
    def pending_fits(self) -> tuple[tuple[int, tuple[int, int], int], ...]:
        """(bar started, training window, first bar using it) of each fit not yet in use."""
        return tuple((p.bar, p.window, p.ready) for p in self._pending)

    def feature_row(self, bar: int) -> tuple[float, ...] | None:
        """Features of a global bar index still in the buffer (None if evicted or warming up)."""
        if not (max(0, self._bars - self.capacity) <= bar < self._bars):
            return None
        row = self._rows[bar % self.capacity]
        return None if np.isnan(row).all() else tuple(row.tolist())

    # ------------------------------------------------------------------ events

    def on_candle(self, candle: Candle) -> list[Signal]:
        if candle.market != self.config.market:
            return []
        if self._last_ts_ms is not None and candle.ts_ms <= self._last_ts_ms:
            return []
        self._last_ts_ms = candle.ts_ms
        bar = self._ingest(candle.close, candle.volume)
        self._maybe_train(bar)
        self._swap_ready(bar)
        slot = bar % self.capacity
        if self._model is None or not self._usable[slot]:
            self.last_probability = None
            return []
        p_up = float(self._model.predict_up(self._rows[slot : slot + 1])[0])
        self.last_probability = p_up
        return self._signals(candle, p_up)

    def _signals(self, candle: Candle, p_up: float) -> list[Signal]:
        if not (math.isfinite(candle.close) and candle.close > 0):
            return []
        if p_up >= self.config.entry_probability:
            side, strength = Side.BUY, p_up
        elif p_up <= self.config.exit_probability:
            side, strength = Side.SELL, 1.0 - p_up
        else:
            return []
        return [
            Signal(
                strategy=self.name,
                market=candle.market,
                side=side,
                strength=min(1.0, max(0.0, strength)),
                ts_ms=candle.close_ms,
                price=candle.close,
                reason=f"p_up={p_up:.4f}",
            )
        ]

    # ------------------------------------------------------------------ learning

    def _ingest(self, close: float, volume: float) -> int:
        """Store one bar and its features; count the row whose label this bar reveals."""
        bar, cap = self._bars, self.capacity
        slot = bar % cap
        features = self._features.update(close, volume)
        self._closes[slot] = _finite(close)
        self._volumes[slot] = _finite(volume)
        if features is None:
            self._rows[slot] = np.nan
            self._usable[slot] = False
        else:
            self._rows[slot] = features
            self._usable[slot] = _usable(features)
        self._bars = bar + 1
        labelled = bar - self.config.horizon
        if labelled >= 0 and self._usable[labelled % cap] and math.isfinite(self._closes[slot]):
            self._trainable += 1
        return bar

    def _maybe_train(self, bar: int) -> None:
        """Start a fit at the first bar with min_train_rows labelled rows, then every retrain_every bars."""
        config = self.config
        if self._model is None and not self._pending:
            due = self._trainable >= config.min_train_rows
        else:
            started = self._pending[-1].bar if self._pending else self._last_train_bar
            due = started is not None and bar - started >= config.retrain_every
        if not due:
            return
        last = bar - config.horizon  # newest row whose label is known at this bar
        first = max(0, last - config.max_train_rows + 1)
        self._start(bar, (first, last), bar + config.model_swap_delay_bars)

    def _start(self, bar: int, window: tuple[int, int], ready: int) -> None:
        """Queue the fit on ``window``'s rows (copied now, so later bars cannot reach it) for ``ready``."""
        x, y = self._training_set(*window)
        if len(y) == 0:  # no usable row: the swap drops the model (no trading on garbage)
            model: Future[FlatForest | None] = Future()
            model.set_result(None)
        else:
            submit = self._submit if ready > bar else run_inline  # used on this bar: nothing to overlap
            model = submit(lambda: _fit_job(self.config, x, y))
        self._pending.append(PendingFit(bar, window, ready, model))

    def _swap_ready(self, bar: int) -> None:
        """Put every fit due by ``bar`` in use, oldest first; a failed fit is dropped and re-raised."""
        while self._pending and self._pending[0].ready <= bar:
            fit = self._pending.popleft()
            # A failed fit raises here: the bar is rejected, as it was when fits ran inline.
            model = fit.model.result()
            self._model = model
            self._window = fit.window if model is not None else None
            self._last_train_bar = fit.bar

    def _training_set(self, first: int, last: int) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        rows = np.arange(first, last + 1)
        slots = rows % self.capacity
        future = (rows + self.config.horizon) % self.capacity
        keep = self._usable[slots] & np.isfinite(self._closes[future])
        slots, future = slots[keep], future[keep]
        return self._rows[slots], self._closes[future] > self._closes[slots]

    # ------------------------------------------------------------------ checkpoint

    def state(self) -> dict[str, Any]:
        """Bounded bar history, schedule counters and pending fits; models are refitted on restore."""
        count = min(self._bars, self.capacity)
        slots = np.arange(self._bars - count, self._bars) % self.capacity

        def floats(values: NDArray[np.float64]) -> list[float | None]:
            return [v if math.isfinite(v) else None for v in values.tolist()]

        return {
            "version": STATE_VERSION,
            "bars_seen": self._bars,
            "last_ts_ms": self._last_ts_ms,
            "closes": floats(self._closes[slots]),
            "volumes": floats(self._volumes[slots]),
            "trainable_rows": self._trainable,
            "last_train_bar": self._last_train_bar,
            "training_window": list(self._window) if self._window is not None else None,
            "pending_fits": [[p.bar, p.window[0], p.window[1], p.ready] for p in self._pending],
            "last_probability": self.last_probability,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Replay the stored bars through the feature code, then refit the same rows with the same seed.

        The current model is refitted here; pending fits are restarted through ``offload_with``'s
        submit with their stored ready bars. A version 1 state (before delayed swaps) has none.
        """
        if state.get("version") not in (1, STATE_VERSION):
            raise ValueError(f"ml_momentum state version {state.get('version')!r}, expected {STATE_VERSION}")
        closes = [NAN if c is None else float(c) for c in state["closes"]]
        volumes = [NAN if v is None else float(v) for v in state["volumes"]]
        if len(closes) != len(volumes):
            raise ValueError("ml_momentum state: closes and volumes differ in length")
        keep = min(len(closes), self.capacity)
        closes, volumes = closes[len(closes) - keep :], volumes[len(volumes) - keep :]
        bars = int(state["bars_seen"])
        self._reset()
        self._bars = start = bars - keep
        for close, volume in zip(closes, volumes, strict=True):
            self._ingest(close, volume)
        self._trainable = int(state["trainable_rows"])
        self._last_train_bar = None if state["last_train_bar"] is None else int(state["last_train_bar"])
        self._last_ts_ms = None if state["last_ts_ms"] is None else int(state["last_ts_ms"])
        window = state["training_window"]
        if window is not None:
            first, last = self._refittable(window, start)
            x, y = self._training_set(first, last)
            self._model = _fit_job(self.config, x, y) if len(y) else None
            self._window = (first, last) if self._model is not None else None
        for bar, first, last, ready in state.get("pending_fits", []):
            self._start(int(bar), self._refittable((first, last), start), int(ready))
        probability = state.get("last_probability")
        self.last_probability = None if probability is None else float(probability)

    @staticmethod
    def _refittable(window: Any, start: int) -> tuple[int, int]:
        """A stored window, checked against the history kept (``start``: its first bar)."""
        first, last = int(window[0]), int(window[1])
        if start > 0 and first < start + FIRST_FEATURE_BAR:
            raise ValueError("ml_momentum state: history too short to refit the model it describes")
        return first, last


# --------------------------------------------------------------------------- research


def evaluate_chronological(
    closes: NDArray[np.float64] | list[float],
    volumes: NDArray[np.float64] | list[float],
    config: MlMomentumConfig,
    train_fraction: float = 0.8,
) -> dict[str, float | int]:
    """The guide's out-of-sample check: chronological split, no shuffling, no label leakage.

    Rows are the bars with every feature defined and a known label. The first
    ``train_fraction`` of them train, the rest test; the last ``horizon`` training rows are
    dropped because their labels are closes inside the test period. Returns accuracy and
    precision (of "up" calls) on the test part, the test part's base rate of "up", the
    split sizes, and the bar indices bounding each part.
    """
    c = np.asarray(closes, dtype=np.float64)
    features = compute_features(c, np.asarray(volumes, dtype=np.float64))
    h = config.horizon
    n = len(c)
    bars = np.arange(n - h) if n > h else np.arange(0)
    finite = np.isfinite(features[bars]).all(axis=1) & (np.abs(features[bars]) <= _F32_MAX).all(axis=1)
    bars = bars[finite & np.isfinite(c[bars + h])]
    split = int(len(bars) * train_fraction)
    test = bars[split:]
    if len(test) == 0:
        raise ValueError("evaluate_chronological: not enough rows for a test part")
    train = bars[:split]
    train = train[train + h < test[0]]  # purge: labels must not read a test-period close
    if len(train) == 0:
        raise ValueError("evaluate_chronological: not enough rows for a training part")
    y_train = c[train + h] > c[train]
    y_test = c[test + h] > c[test]
    model = _forest(config).fit(features[train], y_train)
    predicted = np.asarray(model.predict(features[test]), dtype=bool)
    calls = int(predicted.sum())
    return {
        "accuracy": float((predicted == y_test).mean()),
        "precision": float((predicted & y_test).sum() / calls) if calls else 0.0,
        "base_rate": float(y_test.mean()),
        "n_train": len(train),
        "n_test": len(test),
        "train_first_bar": int(train[0]),
        "train_last_bar": int(train[-1]),
        "test_first_bar": int(test[0]),
        "test_last_bar": int(test[-1]),
    }
