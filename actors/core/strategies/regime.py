"""Trend/range regime detector, shared by strategies that should stand aside in a trend.

Trend strength is ``|close - SMA(period)| / std(period)`` (population std, the current
close in the window): how many standard deviations price sits away from its own mean.
In a range it hovers around 1 and changes sign often; in a steady trend it stays high.
One bar says little, so it is smoothed by a rolling mean over ``smoothing`` bars, and the
market counts as trending while the smoothed strength is above ``threshold``.
"""

from __future__ import annotations

import math
from typing import Any, Self

from actors.core.indicators import NAN, SMA, ZScore
from config.models import RegimeParams


class RegimeDetector:
    """Streaming regime detector; ``update(close)`` returns the smoothed trend strength.

    ``nan`` (and ``trending`` False, ``ready`` False) for the first
    ``period + smoothing - 2`` closes. A flat window (std 0) has strength 0.
    """

    __slots__ = ("_smooth", "_z", "strength", "threshold", "value")

    def __init__(self, period: int = 50, smoothing: int = 20, threshold: float = 0.5) -> None:
        if threshold <= 0:
            raise ValueError(f"threshold must be positive, got {threshold!r}")
        self._z = ZScore(period)
        self._smooth = SMA(smoothing)
        self.threshold = float(threshold)
        self.strength = NAN  # the last bar's raw |z|
        self.value = NAN  # smoothed

    @classmethod
    def from_params(cls, params: RegimeParams) -> Self:
        return cls(params.period, params.smoothing, params.threshold)

    @property
    def period(self) -> int:
        return self._z.period

    @property
    def smoothing(self) -> int:
        return self._smooth.period

    @property
    def ready(self) -> bool:
        return self._smooth.ready

    @property
    def trending(self) -> bool:
        """Smoothed strength above threshold; False while not warm (``nan`` compares False)."""
        return self.value > self.threshold

    def update(self, close: float) -> float:
        z = self._z.update(close)
        if math.isnan(z):
            return NAN
        strength = z if z >= 0.0 else -z
        self.strength = strength
        self.value = self._smooth.update(strength)
        return self.value

    def state(self) -> dict[str, Any]:
        return {
            "type": type(self).__name__,
            "threshold": self.threshold,
            "z": self._z.state(),
            "smooth": self._smooth.state(),
            "strength": None if math.isnan(self.strength) else self.strength,
            "value": None if math.isnan(self.value) else self.value,
        }

    @classmethod
    def restore(cls, state: dict[str, Any]) -> Self:
        if state.get("type") != cls.__name__:
            raise ValueError(f"state of a {state.get('type')!r}, not of a {cls.__name__!r}")
        self = cls.__new__(cls)
        self._z = ZScore.restore(state["z"])
        self._smooth = SMA.restore(state["smooth"])
        self.threshold = float(state["threshold"])
        self.strength = NAN if state["strength"] is None else float(state["strength"])
        self.value = NAN if state["value"] is None else float(state["value"])
        return self


__all__ = ["RegimeDetector"]
