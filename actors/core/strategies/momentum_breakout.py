"""Momentum breakout (Polymarket bot design): a close far above its recent mean goes long.

Every ``bar_ms`` bar (5 minutes by default): take the last ``lookback`` (20) bar closes,
*the current close included* (as the design's code does), their mean and population
std; ``z = (close - mean) / std``. ``z > z_entry`` emits a BUY with strength
``min(1, z / z_full_strength)``; anything else emits nothing. Long only: exits are the
portfolio's exit plan, not this strategy's business.

Resampling: candles (typically 1-minute) are folded into epoch-aligned ``bar_ms`` bars,
``bar start = ts_ms - ts_ms % bar_ms``. Only the close matters, so a bar is the last close
seen in it. A bar is complete, and evaluated, when the candle whose close time
(``ts_ms + interval_ms``) is the bar's end arrives; the signal carries that close time as
``ts_ms``, so nothing can act on it before the bar has closed. Deterministic rules for
imperfect feeds:

* candles of other markets are ignored;
* a candle closing at or before the last accepted close time (a duplicate or a replay
  after restore) is ignored, which makes delivery idempotent;
* a bar whose closing candle never came (a gap) enters the window with its last close once
  a candle of a later bar arrives, but emits no signal: it is stale by then;
* whole bars with no candle at all are not invented;
* a candle that does not fit inside one bar (interval not dividing ``bar_ms``, or
  misaligned) is a configuration error: ``ValueError``.
"""

from __future__ import annotations

from typing import Any

from actors.core.indicators import ZScore
from actors.core.strategies.base import StrategyCore
from actors.domain.model import Candle, Side, Signal
from config.models import MomentumBreakoutConfig


class MomentumBreakout(StrategyCore[MomentumBreakoutConfig]):
    kind = "momentum_breakout"

    def __init__(self, config: MomentumBreakoutConfig) -> None:
        super().__init__(config)
        self._market = config.market
        self._bar_ms = config.bar_ms
        self._z_entry = config.z_entry
        self._z_full = config.z_full_strength
        self._z = ZScore(config.lookback)
        self._bar_start: int | None = None  # open bar (not yet complete), if any
        self._bar_close = 0.0  # its last close
        self._last_close_ms: int | None = None

    @property
    def zscore(self) -> float:
        """z of the last completed bar (``nan`` until ``lookback`` bars)."""
        return self._z.value

    def warmup_bars(self, interval_ms: int) -> int:
        """``lookback`` bars of ``bar_ms``: any ``bar_ms / interval_ms`` aligned candles close one."""
        return self.config.lookback * -(-self._bar_ms // interval_ms)

    def on_candle(self, candle: Candle) -> list[Signal]:
        if candle.market != self._market:
            return []
        ts = candle.ts_ms
        close_ms = ts + candle.interval_ms
        last = self._last_close_ms
        if last is not None and close_ms <= last:
            return []
        bar_ms = self._bar_ms
        bar_end = ts - ts % bar_ms + bar_ms
        if close_ms > bar_end:
            raise ValueError(
                f"{self.name}: candle [{ts}, {close_ms}) straddles the {bar_ms} ms bar ending {bar_end}; "
                f"candle intervals must divide bar_ms and be aligned"
            )
        self._last_close_ms = close_ms
        open_bar = self._bar_start
        if open_bar is not None and open_bar != bar_end - bar_ms:
            self._z.update(self._bar_close)  # gap: bank the unfinished bar, silently
            self._bar_start = None
        if close_ms != bar_end:
            self._bar_start = bar_end - bar_ms
            self._bar_close = candle.close
            return []
        self._bar_start = None
        close = candle.close
        z = self._z.update(close)
        if not z > self._z_entry:  # also False for nan (not warm)
            return []
        return [
            Signal(
                strategy=self.name,
                market=self._market,
                side=Side.BUY,
                strength=min(1.0, z / self._z_full),
                ts_ms=close_ms,
                price=close,
                reason=f"z={z:.3f}>{self._z_entry:g} over {self._z.period} bars of {bar_ms // 1000}s",
            )
        ]

    def state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "bar_ms": self._bar_ms,
            "lookback": self._z.period,
            "bar_start": self._bar_start,
            "bar_close": self._bar_close,
            "last_close_ms": self._last_close_ms,
            "z": self._z.state(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        if state.get("kind") != self.kind:
            raise ValueError(f"{self.name}: state of a {state.get('kind')!r} strategy")
        if state["bar_ms"] != self._bar_ms or state["lookback"] != self.config.lookback:
            raise ValueError(
                f"{self.name}: state was taken with bar_ms={state['bar_ms']} lookback={state['lookback']}, "
                f"config has bar_ms={self._bar_ms} lookback={self.config.lookback}"
            )
        self._z = ZScore.restore(state["z"])
        bar_start = state["bar_start"]
        self._bar_start = None if bar_start is None else int(bar_start)
        self._bar_close = float(state["bar_close"])
        last = state["last_close_ms"]
        self._last_close_ms = None if last is None else int(last)


__all__ = ["MomentumBreakout"]
