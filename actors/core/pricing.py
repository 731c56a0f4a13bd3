"""Fair up-probability of a "BTC up or down" binary from the BTC price path. Pure functions.

Model: the log price follows a driftless Brownian motion, ``d ln S = σ dW`` with σ per
√second, so over the ``τ`` seconds left

    P(up) = P(S_T >= K) = Φ( ln(S / K) / (σ √τ) )

Assumptions and why they are acceptable for 5-minute windows:

* No drift. Over minutes any drift estimate is noise, and the martingale correction
  (−σ²τ/2 in the numerator) is about σ√τ/2 ≈ 3e-4 of one standard deviation for BTC at
  τ = 300 s, far below a price tick; dropping it keeps P = 1/2 exactly at S = K.
* Constant σ over the window, estimated from the recent log-returns (``realized_vol``) with
  a zero-mean estimator that weights each return by its time span, so feed gaps of a few
  seconds or minutes count as the time they cover instead of as a single step.
* Continuous prices: the chance of finishing exactly on the strike is ignored, except at
  expiry, where the settlement rule's ``>=`` decides ties for Up.

Edge cases are deterministic: when ``σ√τ`` is zero (expired window or a flat price path) the
probability is the settlement step, 1 if S >= K else 0, which is the limit of the formula
as τ → 0 for S != K.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

SQRT2 = math.sqrt(2.0)

ArrayLike = Sequence[float] | npt.NDArray[np.float64] | npt.NDArray[np.int64]


def norm_cdf(x: float) -> float:
    """Standard normal CDF; ``erfc`` keeps the lower tail accurate and the function monotone."""
    return 0.5 * math.erfc(-x / SQRT2)


def prob_up(price: float, strike: float, tau_s: float, sigma: float) -> float:
    """P(final >= strike) for a driftless lognormal price; sigma per √second, tau in seconds.

    ``tau_s <= 0`` or ``sigma <= 0`` gives the settlement step (1 if price >= strike else 0).
    """
    if price <= 0 or strike <= 0:
        raise ValueError(f"prices must be positive, got price={price} strike={strike}")
    scale = sigma * math.sqrt(tau_s) if tau_s > 0 and sigma > 0 else 0.0
    # ln(S/K) as log1p of the exact difference: nonzero with the right sign whenever S != K,
    # accurate for S ≈ K (where S/K itself would round), and monotone in S.
    moneyness = math.log1p((price - strike) / strike)
    if scale <= 0.0:
        return 1.0 if price >= strike else 0.0
    return norm_cdf(moneyness / scale)


def realized_vol(ts_ms: ArrayLike, prices: ArrayLike) -> float:
    """σ per √second from consecutive log-returns: sqrt(Σ r² / Σ Δt), driftless.

    Returns 0.0 with fewer than two points or no elapsed time. Points must be ascending in time.
    """
    ts = np.asarray(ts_ms, dtype=np.float64)
    px = np.asarray(prices, dtype=np.float64)
    if ts.shape != px.shape:
        raise ValueError(f"ts_ms and prices differ in length: {ts.shape} vs {px.shape}")
    if len(px) < 2:
        return 0.0
    elapsed_s = float(ts[-1] - ts[0]) / 1000.0
    if elapsed_s <= 0:
        return 0.0
    returns = np.diff(np.log(px))
    return math.sqrt(float(np.dot(returns, returns)) / elapsed_s)


@dataclass(frozen=True, slots=True)
class FairValue:
    """The fair up-probability and the inputs it came from (for logs, tests and gating)."""

    prob_up: float
    price: float
    strike: float
    tau_s: float
    sigma: float
    n_returns: int


def fair_value(
    ts_ms: ArrayLike,
    prices: ArrayLike,
    now_ms: int,
    strike: float,
    end_ms: int,
    vol_window_s: float,
    sigma_floor: float = 0.0,
) -> FairValue | None:
    """Fair value at ``now_ms`` from the path known then; None if no price at or before ``now_ms``.

    Uses only points at or before ``now_ms`` (causal): S is the last of them, σ comes from
    those within the last ``vol_window_s`` seconds, floored at ``sigma_floor``; τ is the time
    to ``end_ms``, never negative.
    """
    ts = np.asarray(ts_ms, dtype=np.int64)
    px = np.asarray(prices, dtype=np.float64)
    stop = int(np.searchsorted(ts, now_ms, side="right"))
    if stop == 0:
        return None
    start = int(np.searchsorted(ts[:stop], now_ms - round(vol_window_s * 1000), side="left"))
    sigma = max(realized_vol(ts[start:stop], px[start:stop]), sigma_floor)
    price = float(px[stop - 1])
    tau_s = max(0.0, (end_ms - now_ms) / 1000.0)
    return FairValue(
        prob_up=prob_up(price, strike, tau_s, sigma),
        price=price,
        strike=strike,
        tau_s=tau_s,
        sigma=sigma,
        n_returns=max(0, stop - start - 1),
    )
