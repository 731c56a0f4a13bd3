"""Mean reversion (algo-trading guide): Bollinger(20, 2) and RSI(14) on every candle.

* BUY (entry) when ``close < lower band`` and ``RSI < rsi_buy`` (oversold below the band);
* SELL (exit) when ``close > upper band`` and ``RSI > rsi_sell`` (overbought above it).

Both on the candle's close, the band and RSI including that close (TA-Lib BBANDS with
matype=0, population std; TA-Lib RSI). Signals carry the candle's close time as ``ts_ms``.

Strength: how far beyond the middle band, in band widths: ``min(1, |z| / (2 * bb_std))``
with ``z = (close - middle) / std``. Just past the band that is 0.5; twice as far out
(4 std by default, rare in a 20-bar window) is 1.0. Exits use the same formula.

Regime filter (``regime_filter``, off by default): a ``RegimeDetector`` runs on the
closes; while it reports a trend, or has not seen enough bars to say, no BUY is emitted
(mean reversion loses in trends). SELL exits are always emitted.

Candles of other markets, and candles not newer than the last one accepted (duplicates,
replays after a restore), are ignored.
"""

from __future__ import annotations

from typing import Any

from actors.core.indicators import RSI, Bollinger
from actors.core.strategies.base import StrategyCore
from actors.core.strategies.regime import RegimeDetector
from actors.domain.model import Candle, Side, Signal
from config.models import MeanReversionConfig


class MeanReversion(StrategyCore[MeanReversionConfig]):
    kind = "mean_reversion"

    def __init__(self, config: MeanReversionConfig) -> None:
        super().__init__(config)
        self._market = config.market
        self._bb = Bollinger(config.bb_period, config.bb_std, config.bb_std)
        self._rsi = RSI(config.rsi_period)
        self._rsi_buy = config.rsi_buy
        self._rsi_sell = config.rsi_sell
        self._full = 2.0 * config.bb_std
        self._regime = RegimeDetector.from_params(config.regime) if config.regime_filter else None
        self._last_ts: int | None = None

    @property
    def regime(self) -> RegimeDetector | None:
        return self._regime

    def warmup_bars(self, interval_ms: int) -> int:  # noqa: ARG002
        """Bollinger's window, RSI's ``period`` changes (and the regime filter's window and smoothing).

        RSI's Wilder smoothing is then defined, not converged: older bars still weigh
        ``(1 - 1/period)^k`` in a longer history.
        """
        cfg = self.config
        need = max(cfg.bb_period, cfg.rsi_period + 1)
        if cfg.regime_filter:
            need = max(need, cfg.regime.period + cfg.regime.smoothing - 1)
        return need

    def on_candle(self, candle: Candle) -> list[Signal]:
        if candle.market != self._market:
            return []
        ts = candle.ts_ms
        if self._last_ts is not None and ts <= self._last_ts:
            return []
        self._last_ts = ts
        close = candle.close
        bb = self._bb
        bb.update(close)
        rsi = self._rsi.update(close)
        regime = self._regime
        if regime is not None:
            regime.update(close)
        # nan (not warm) fails every comparison below
        if close < bb.lower and rsi < self._rsi_buy:
            if regime is not None and (regime.trending or not regime.ready):
                return []
            side = Side.BUY
            reason = f"close<lower {bb.lower:.6g}, rsi={rsi:.2f}<{self._rsi_buy:g}"
        elif close > bb.upper and rsi > self._rsi_sell:
            side = Side.SELL
            reason = f"close>upper {bb.upper:.6g}, rsi={rsi:.2f}>{self._rsi_sell:g}"
        else:
            return []
        std = bb.std
        if not std > 0.0:  # a flat window: no band to be beyond
            return []
        deviation = abs(close - bb.value) / std
        return [
            Signal(
                strategy=self.name,
                market=self._market,
                side=side,
                strength=min(1.0, deviation / self._full),
                ts_ms=ts + candle.interval_ms,
                price=close,
                reason=reason,
            )
        ]

    def state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "last_ts": self._last_ts,
            "bb": self._bb.state(),
            "rsi": self._rsi.state(),
            "regime": None if self._regime is None else self._regime.state(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        if state.get("kind") != self.kind:
            raise ValueError(f"{self.name}: state of a {state.get('kind')!r} strategy")
        cfg = self.config
        bb = Bollinger.restore(state["bb"])
        rsi = RSI.restore(state["rsi"])
        regime_state = state["regime"]
        regime = None if regime_state is None else RegimeDetector.restore(regime_state)
        mismatch = (
            bb.period != cfg.bb_period
            or bb.nbdev_up != cfg.bb_std
            or rsi.period != cfg.rsi_period
            or (regime is None) == cfg.regime_filter
            or (
                regime is not None
                and (regime.period, regime.smoothing, regime.threshold)
                != (cfg.regime.period, cfg.regime.smoothing, cfg.regime.threshold)
            )
        )
        if mismatch:
            raise ValueError(
                f"{self.name}: state was taken with different indicator settings than the config"
            )
        self._bb, self._rsi, self._regime = bb, rsi, regime
        last = state["last_ts"]
        self._last_ts = None if last is None else int(last)


__all__ = ["MeanReversion"]
