"""Streaming technical indicators: one ``update(x)`` per bar, O(1) memory, TA-Lib-exact.

Why streaming: the same object runs in backtest, paper and live, bar by bar, and is
checkpointed with its strategy. Why TA-Lib-exact: results must agree with the reference
implementation everybody checks against (to 1e-9 relative, see tests/test_indicators.py),
so a backtest can be cross-checked with a vectorised TA-Lib run.

Conventions shared by every indicator here:

* ``update(x) -> float`` takes one value and returns the indicator's new value, or
  ``nan`` until enough values were seen (``ready`` tells which); ``value`` is the last output.
* windows are fixed-size ring buffers (plain ``list[float]``), never growing;
* running sums are re-computed exactly (``math.fsum``) from the ring buffer once every
  ``period`` updates, so floating-point drift cannot accumulate over an unbounded stream;
* ``state()`` is a JSON-serialisable dict; the classmethod ``restore(state)`` builds an
  equal indicator whose future outputs are bit-identical to the original's.
"""

from __future__ import annotations

import math
from math import isnan
from typing import Any, Self

NAN = float("nan")

_U = 2.0**-53  # unit roundoff of a float64
_REL_TOL = 1e-12  # RollingStd re-computes exactly once its error bound passes this share of m2


def _out(value: float) -> float | None:
    """A float for JSON: ``nan`` (not warm) becomes ``None``."""
    return None if math.isnan(value) else value


def _in(value: float | None) -> float:
    return NAN if value is None else float(value)


def _check_type(cls: type, state: dict[str, Any]) -> None:
    if state.get("type") != cls.__name__:
        raise ValueError(f"state of a {state.get('type')!r}, not of a {cls.__name__!r}")


def _check_period(period: int, minimum: int = 1) -> int:
    if int(period) != period or period < minimum:
        raise ValueError(f"period must be an integer >= {minimum}, got {period!r}")
    return int(period)


def _ring_state(buf: list[float], idx: int, count: int) -> list[float]:
    """The ring's values oldest first (a canonical layout independent of the write index)."""
    if count < len(buf):
        return buf[:count]
    return buf[idx:] + buf[:idx]


def _ring_restore(values: list[float], period: int) -> tuple[list[float], int, int]:
    """(buffer, write index, count) for values given oldest first.

    While warming up, values go to ``buf[count]`` and the write index stays 0; once full,
    the oldest value is at the write index, 0 in this layout.
    """
    if len(values) > period:
        raise ValueError(f"{len(values)} buffered values for a period of {period}")
    buf = [float(v) for v in values] + [0.0] * (period - len(values))
    return buf, 0, len(values)


class SMA:
    """Simple moving average of the last ``period`` values, as TA-Lib SMA.

    Running sum for O(1) updates, re-summed exactly from the window every ``period`` bars.
    """

    __slots__ = ("_buf", "_count", "_idx", "_resync", "_sum", "period", "value")

    def __init__(self, period: int) -> None:
        self.period = _check_period(period)
        self._buf = [0.0] * self.period
        self._idx = 0
        self._count = 0
        self._sum = 0.0
        self._resync = self.period
        self.value = NAN

    @property
    def ready(self) -> bool:
        return self._count == self.period

    def update(self, x: float) -> float:
        p = self.period
        if self._count < p:
            self._buf[self._count] = x
            self._count += 1
            if self._count < p:
                self._sum += x
                return NAN
            self._sum = math.fsum(self._buf)
            self._resync = p
            self.value = self._sum / p
            return self.value
        i = self._idx
        old = self._buf[i]
        self._buf[i] = x
        self._idx = i + 1 if i + 1 < p else 0
        self._resync -= 1
        if self._resync:
            self._sum += x - old
        else:
            self._sum = math.fsum(self._buf)
            self._resync = p
        self.value = self._sum / p
        return self.value

    def state(self) -> dict[str, Any]:
        return {
            "type": type(self).__name__,
            "period": self.period,
            "window": _ring_state(self._buf, self._idx, self._count),
            "sum": self._sum,
            "resync": self._resync,
            "value": _out(self.value),
        }

    @classmethod
    def restore(cls, state: dict[str, Any]) -> Self:
        _check_type(cls, state)
        self = cls(int(state["period"]))
        self._buf, self._idx, self._count = _ring_restore(state["window"], self.period)
        self._sum = float(state["sum"])
        self._resync = int(state["resync"])
        self.value = _in(state["value"])
        return self


class RollingMean(SMA):
    """Rolling mean of volume (or any series); an SMA under the name the strategies read."""

    __slots__ = ()


class RollingStd:
    """Population standard deviation over the last ``period`` values (TA-Lib STDDEV, nbdev=1).

    Why not TA-Lib's running sum of squares: at BTC price levels (x² ~ 4e9) it cancels
    catastrophically when the window is quiet. Instead a sliding Welford update of the
    mean and of the sum of squared deviations, on values shifted by a recent value (so
    rounding scales with the window's spread, not with the price level), carrying a running
    bound on its own rounding error: once that bound exceeds 1e-12 of the variance (a quiet
    window after a volatile one, or the shift gone stale), the moments are re-computed
    exactly, two-pass with ``math.fsum``, from the ring buffer. Amortised O(1); a flat
    window gives exactly 0. Also the base of ``ZScore`` and ``Bollinger``.
    """

    __slots__ = ("_buf", "_count", "_em2", "_emu", "_idx", "_m2", "_mu", "_shift", "period", "value")

    def __init__(self, period: int) -> None:
        self.period = _check_period(period)
        self._buf = [0.0] * self.period
        self._idx = 0
        self._count = 0
        self._shift = 0.0  # K: the window's values are handled as x - K
        self._mu = 0.0  # mean - K
        self._m2 = 0.0  # sum of squared deviations from the mean
        self._emu = 0.0  # bound on the rounding error of _mu
        self._em2 = 0.0  # bound on the rounding error of _m2
        self.value = NAN

    @property
    def ready(self) -> bool:
        return self._count == self.period

    @property
    def mean(self) -> float:
        """Mean of the window (``nan`` until warm)."""
        return self._shift + self._mu if self._count == self.period else NAN

    def _recompute(self, shift: float) -> None:
        """Exact two-pass moments of the window about ``shift``, and their error bounds."""
        p = self.period
        dev = [v - shift for v in self._buf]
        mu = math.fsum(dev) / p
        self._shift = shift
        self._mu = mu
        self._emu = emu = _U * (max(map(abs, dev)) + abs(mu))
        self._m2 = m2 = math.fsum([(v - mu) * (v - mu) for v in dev])
        self._em2 = _U * 5.0 * m2 + 2.0 * emu * math.sqrt(p * m2)

    def _push(self, x: float) -> float:
        """Add one value; the window's population std, or ``nan`` until warm."""
        p = self.period
        if self._count < p:
            self._buf[self._count] = x
            self._count += 1
            if self._count < p:
                return NAN
            self._recompute(x)
        else:
            i = self._idx
            o = self._buf[i]
            self._buf[i] = x
            self._idx = i + 1 if i + 1 < p else 0
            k = self._shift
            b = x - k
            a = o - k
            d = b - a
            mu0 = self._mu
            mu1 = mu0 + d / p
            s = (b - mu1) + (a - mu0)
            m2 = self._m2 + d * s
            # first-order bounds of the rounding errors of the three lines above
            mag = (b if b >= 0.0 else -b) + (a if a >= 0.0 else -a)
            amu0 = mu0 if mu0 >= 0.0 else -mu0
            amu1 = mu1 if mu1 >= 0.0 else -mu1
            ad = d if d >= 0.0 else -d
            emu0 = self._emu
            emu1 = emu0 + _U * (3.0 * mag / p + amu1)
            em2 = (
                self._em2
                + ad * (emu0 + emu1 + _U * (3.0 * mag + 2.0 * (amu0 + amu1)))
                + _U * ((s if s >= 0.0 else -s) * (2.0 * mag + ad) + (m2 if m2 >= 0.0 else -m2))
            )
            if em2 <= _REL_TOL * m2:
                self._mu = mu1
                self._m2 = m2
                self._emu = emu1
                self._em2 = em2
            else:  # too uncertain (or nan): exact, re-anchored on the newest value
                self._recompute(x)
        m2 = self._m2
        return math.sqrt(m2 / p) if m2 > 0.0 else 0.0

    def update(self, x: float) -> float:
        self.value = self._push(x)
        return self.value

    def state(self) -> dict[str, Any]:
        return {
            "type": type(self).__name__,
            "period": self.period,
            "window": _ring_state(self._buf, self._idx, self._count),
            "shift": self._shift,
            "mu": self._mu,
            "m2": self._m2,
            "emu": self._emu,
            "em2": self._em2,
            "value": _out(self.value),
        }

    @classmethod
    def restore(cls, state: dict[str, Any]) -> Self:
        _check_type(cls, state)
        self = cls._from_state(state)
        self.value = _in(state["value"])
        return self

    @classmethod
    def _from_state(cls, state: dict[str, Any]) -> Self:
        self = cls.__new__(cls)
        RollingStd.__init__(self, int(state["period"]))
        self._buf, self._idx, self._count = _ring_restore(state["window"], self.period)
        self._shift = float(state["shift"])
        self._mu = float(state["mu"])
        self._m2 = float(state["m2"])
        self._emu = float(state["emu"])
        self._em2 = float(state["em2"])
        return self


class ZScore(RollingStd):
    """``(x - mean) / std`` over the last ``period`` values, the current one included.

    Population std, as the Polymarket bot design computes it; 0.0 for a flat window
    (std 0), where the current value equals the mean.
    """

    __slots__ = ("std",)

    def __init__(self, period: int) -> None:
        super().__init__(_check_period(period, 2))
        self.std = NAN

    def update(self, x: float) -> float:
        std = self._push(x)
        self.std = std
        if isnan(std):  # not warm
            return NAN
        self.value = ((x - self._shift) - self._mu) / std if std > 0.0 else 0.0
        return self.value

    def state(self) -> dict[str, Any]:
        state = super().state()
        state["std"] = _out(self.std)
        return state

    @classmethod
    def restore(cls, state: dict[str, Any]) -> Self:
        _check_type(cls, state)
        self = cls._from_state(state)
        self.value = _in(state["value"])
        self.std = _in(state["std"])
        return self


class Bollinger(RollingStd):
    """Bollinger bands as TA-Lib BBANDS with matype=0: SMA middle, population std.

    ``update`` returns the middle band; ``upper``, ``lower`` and ``std`` hold the rest.
    """

    __slots__ = ("lower", "nbdev_dn", "nbdev_up", "std", "upper")

    def __init__(self, period: int = 20, nbdev_up: float = 2.0, nbdev_dn: float | None = None) -> None:
        super().__init__(_check_period(period, 2))
        self.nbdev_up = float(nbdev_up)
        self.nbdev_dn = float(nbdev_up if nbdev_dn is None else nbdev_dn)
        self.upper = NAN
        self.lower = NAN
        self.std = NAN

    @property
    def middle(self) -> float:
        return self.value

    def update(self, x: float) -> float:
        std = self._push(x)
        if isnan(std):
            return NAN
        mid = self._shift + self._mu
        self.std = std
        self.value = mid
        self.upper = mid + self.nbdev_up * std
        self.lower = mid - self.nbdev_dn * std
        return mid

    def state(self) -> dict[str, Any]:
        state = super().state()
        state.update(
            nbdev_up=self.nbdev_up,
            nbdev_dn=self.nbdev_dn,
            upper=_out(self.upper),
            lower=_out(self.lower),
            std=_out(self.std),
        )
        return state

    @classmethod
    def restore(cls, state: dict[str, Any]) -> Self:
        _check_type(cls, state)
        self = cls._from_state(state)
        self.nbdev_up = float(state["nbdev_up"])
        self.nbdev_dn = float(state["nbdev_dn"])
        self.value = _in(state["value"])
        self.upper = _in(state["upper"])
        self.lower = _in(state["lower"])
        self.std = _in(state["std"])
        return self


class RSI:
    """Relative strength index with Wilder smoothing, step for step as TA-Lib RSI.

    Seeding as TA-Lib (no unstable period): the first ``period`` changes are averaged
    plainly, the first value comes out on the ``period + 1``-th input; after that
    ``avg = (avg * (period - 1) + change) / period``. A window with no movement gives 0.
    """

    __slots__ = ("_gain", "_loss", "_n", "_prev", "period", "value")

    def __init__(self, period: int = 14) -> None:
        self.period = _check_period(period, 2)
        self._prev = NAN
        self._n = 0  # changes seen, capped at period
        self._gain = 0.0  # while seeding: sums; then Wilder averages
        self._loss = 0.0
        self.value = NAN

    @property
    def ready(self) -> bool:
        return self._n == self.period

    def update(self, x: float) -> float:
        prev = self._prev
        self._prev = x
        if isnan(prev):  # first value
            return NAN
        diff = x - prev
        p = self.period
        n = self._n
        if n < p:
            if diff < 0.0:
                self._loss -= diff
            else:
                self._gain += diff
            n += 1
            self._n = n
            if n < p:
                return NAN
            gain = self._gain = self._gain / p
            loss = self._loss = self._loss / p
        else:
            loss = self._loss * (p - 1)
            gain = self._gain * (p - 1)
            if diff < 0.0:
                loss -= diff
            else:
                gain += diff
            loss = self._loss = loss / p
            gain = self._gain = gain / p
        total = gain + loss
        self.value = 100.0 * (gain / total) if (total >= 1e-14 or total <= -1e-14) else 0.0
        return self.value

    def state(self) -> dict[str, Any]:
        return {
            "type": type(self).__name__,
            "period": self.period,
            "prev": _out(self._prev),
            "n": self._n,
            "gain": self._gain,
            "loss": self._loss,
            "value": _out(self.value),
        }

    @classmethod
    def restore(cls, state: dict[str, Any]) -> Self:
        _check_type(cls, state)
        self = cls(int(state["period"]))
        self._prev = _in(state["prev"])
        self._n = int(state["n"])
        self._gain = float(state["gain"])
        self._loss = float(state["loss"])
        self.value = _in(state["value"])
        return self


class ROC:
    """Rate of change in percent, as TA-Lib ROC: ``(x / x[t - period] - 1) * 100``.

    0.0 when the reference value is 0 (as TA-Lib). Divide by 100 for a fraction.
    """

    __slots__ = ("_buf", "_count", "_idx", "period", "value")

    def __init__(self, period: int = 10) -> None:
        self.period = _check_period(period)
        self._buf = [0.0] * self.period
        self._idx = 0
        self._count = 0
        self.value = NAN

    @property
    def ready(self) -> bool:
        return self._count == self.period and not math.isnan(self.value)

    def update(self, x: float) -> float:
        p = self.period
        if self._count < p:
            self._buf[self._count] = x
            self._count += 1
            return NAN
        i = self._idx
        ref = self._buf[i]
        self._buf[i] = x
        self._idx = i + 1 if i + 1 < p else 0
        self.value = ((x / ref) - 1.0) * 100.0 if ref != 0.0 else 0.0
        return self.value

    def state(self) -> dict[str, Any]:
        return {
            "type": type(self).__name__,
            "period": self.period,
            "window": _ring_state(self._buf, self._idx, self._count),
            "value": _out(self.value),
        }

    @classmethod
    def restore(cls, state: dict[str, Any]) -> Self:
        _check_type(cls, state)
        self = cls(int(state["period"]))
        self._buf, self._idx, self._count = _ring_restore(state["window"], self.period)
        self.value = _in(state["value"])
        return self


__all__ = ["ROC", "RSI", "SMA", "Bollinger", "RollingMean", "RollingStd", "ZScore"]
