"""Polymarket lag (Polymarket bot design): buy the outcome token the book has not repriced yet.

Polymarket's 5-minute "Bitcoin Up or Down" books follow the BTC price with a delay. This core
keeps the reference BTC path (``config.reference_market`` candles: 1-second candles built from
the Chainlink ticks in replay, Binance 1-minute candles live), prices each window's Up token
with ``binary_pricing`` (driftless lognormal: P(up) = Φ(ln(S/K) / (σ√τ))) and, on each token
book, BUYs the token whose best ask sits more than ``edge`` below its fair value.

Inputs:

* ``on_candle``: only ``reference_market``. A candle is the price at its **close time**
  (``ts_ms + interval_ms``), the moment it is known; candles closing at or before the last
  one seen are ignored (duplicates, replays after a restore).
* ``on_instrument``: BINARY instruments of this strategy's venue (the part of
  ``config.market`` before ':', e.g. ``polymarket:btc-5m`` → ``polymarket``) with an outcome
  of Up or Down, an ``end_ms`` and a ``start_ms``. Their ``strike`` is the price to beat; when it
  is None the last reference price at or before ``start_ms`` stands in (the loader's rule).
* ``on_book``: books of known tokens; each may produce a signal.

A book of token X at time t signals BUY X when all hold:

* ``start_ms <= t`` (before the window opens the strike is not a known fact yet) and
  ``end_ms - t >= min_time_left_s`` (and > 0);
* the reference is fresh (last close at most ``MAX_REFERENCE_AGE_MS`` old) and σ is
  measurable: at least ``MIN_VOL_RETURNS`` returns within ``vol_window_s`` and σ > 0, so a
  flat or missing history never turns into a 0/1 "certainty";
* fair_X = P(up) for Up, 1 − P(up) for Down; best ask <= ``max_price`` and ask < fair_X − edge;
* with ``require_momentum``: the z-score of the last ``momentum_lookback`` reference closes
  (strategy 1's z: current close included, population std) agrees in sign and size:
  z > z_entry to buy Up, z < −z_entry to buy Down;
* X has not signalled before (at most one signal per token, i.e. per token per window).

Signal: market = the token's market id (``polymarket:<token_id>``), price = the best ask,
ts = the book's time, strength = min(1, (fair_X − ask) / (2·edge)): 0.5 at the threshold,
1 from twice the required edge.

Caveat for a non-Chainlink reference: the strike is a Chainlink BTC/USD price; a Binance
BTC/USDT path carries a basis against it (tens of dollars, a good fraction of σ√τ over five
minutes), which this core does not remove.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from actors.core.indicators import ZScore
from actors.core.pricing import fair_value
from actors.core.strategies.base import StrategyCore
from actors.domain.model import Candle, Instrument, MarketKind, OrderBook, Side, Signal
from actors.domain.names import market_venue
from config.models import PolymarketLagConfig

MIN_VOL_RETURNS = 10
"""Returns needed in the vol window before σ is trusted (10 s of 1 s candles, 10 min of 1 m)."""

MAX_REFERENCE_AGE_MS = 120_000
"""A reference older than this (two 1-minute candles) is stale: no fair value, no signal."""

STRIKE_HISTORY_S = 600
"""History kept at least this long, so a missing strike can still be read at the window start."""

_OUTCOMES = ("Up", "Down")


class PolymarketLag(StrategyCore[PolymarketLagConfig]):
    kind = "polymarket_lag"

    def __init__(self, config: PolymarketLagConfig) -> None:
        super().__init__(config)
        self._venue = market_venue(config.market)
        self._keep_ms = max(config.vol_window_s, STRIKE_HISTORY_S) * 1000
        self._ref_ts: deque[int] = deque()
        self._ref_px: deque[float] = deque()
        self._z = ZScore(config.momentum_lookback)
        self._instruments: dict[str, Instrument] = {}
        self._fired: dict[str, int] = {}  # token market id -> its window's end_ms
        self._next_prune_ms: int | None = None

    @property
    def zscore(self) -> float:
        """z of the last reference close over ``momentum_lookback`` closes (``nan`` until warm)."""
        return self._z.value

    @property
    def reference_price(self) -> float | None:
        """The last reference close seen, if any."""
        return self._ref_px[-1] if self._ref_px else None

    def warmup_bars(self, interval_ms: int) -> int:
        """Reference candles: the kept history (vol window, strike look-back) and the momentum window."""
        kept = -(-self._keep_ms // interval_ms) + 1
        return max(kept, MIN_VOL_RETURNS + 1, self.config.momentum_lookback)

    # ------------------------------------------------------------------ events

    def on_candle(self, candle: Candle) -> list[Signal]:
        if candle.market != self.config.reference_market:
            return []
        close_ms = candle.ts_ms + candle.interval_ms
        if self._ref_ts and close_ms <= self._ref_ts[-1]:
            return []
        self._ref_ts.append(close_ms)
        self._ref_px.append(candle.close)
        self._z.update(candle.close)
        cutoff = close_ms - self._keep_ms
        while len(self._ref_ts) > 1 and self._ref_ts[1] <= cutoff:  # keep one point at/before cutoff
            self._ref_ts.popleft()
            self._ref_px.popleft()
        self._prune(close_ms)
        return []

    def on_instrument(self, instrument: Instrument) -> list[Signal]:
        if (
            instrument.kind is not MarketKind.BINARY
            or instrument.venue != self._venue
            or instrument.outcome not in _OUTCOMES
            or instrument.end_ms is None
            or instrument.start_ms is None
        ):
            return []
        self._instruments[instrument.market_id] = instrument
        if self._next_prune_ms is None or instrument.end_ms < self._next_prune_ms:
            self._next_prune_ms = instrument.end_ms
        return []

    def on_book(self, book: OrderBook) -> list[Signal]:
        inst = self._instruments.get(book.market)
        if inst is None or book.market in self._fired:
            return []
        signal = self._evaluate(inst, book)
        if signal is not None:
            self._fired[book.market] = inst.end_ms or 0  # end_ms is set: checked on arrival
        self._prune(book.ts_ms)
        return [] if signal is None else [signal]

    # ------------------------------------------------------------------ logic

    def _evaluate(self, inst: Instrument, book: OrderBook) -> Signal | None:
        cfg = self.config
        now = book.ts_ms
        start, end = inst.start_ms, inst.end_ms
        if start is None or end is None or now < start:
            return None
        left_ms = end - now
        if left_ms <= 0 or left_ms < cfg.min_time_left_s * 1000:
            return None
        ask = book.best_ask
        if ask is None or float(ask) > cfg.max_price:
            return None
        ask_f = float(ask)
        if not self._ref_ts or now - self._ref_ts[-1] > MAX_REFERENCE_AGE_MS:
            return None
        ts = np.fromiter(self._ref_ts, dtype=np.int64, count=len(self._ref_ts))
        px = np.fromiter(self._ref_px, dtype=np.float64, count=len(self._ref_px))
        strike = inst.strike if inst.strike is not None else self._price_at(ts, px, start)
        if strike is None:
            return None
        fv = fair_value(ts, px, now, strike, end, cfg.vol_window_s)
        if fv is None or fv.sigma <= 0 or fv.n_returns < MIN_VOL_RETURNS:
            return None
        is_up = inst.outcome == "Up"
        fair = fv.prob_up if is_up else 1.0 - fv.prob_up
        gap = fair - ask_f
        if not gap > cfg.edge:
            return None
        if cfg.require_momentum and not self._momentum_agrees(is_up):
            return None
        return Signal(
            strategy=self.name,
            market=book.market,
            side=Side.BUY,
            strength=min(1.0, gap / (2.0 * cfg.edge)),
            ts_ms=now,
            price=ask_f,
            reason=(
                f"{inst.outcome} fair={fair:.4f} ask={ask_f:g} edge={gap:.4f}>{cfg.edge:g} "
                f"S={fv.price:.2f} K={strike:.2f} tau={fv.tau_s:.0f}s sigma={fv.sigma:.3e}"
            ),
        )

    def _momentum_agrees(self, is_up: bool) -> bool:
        z = self._z.value  # nan until warm: both comparisons are then False
        return z > self.config.z_entry if is_up else z < -self.config.z_entry

    @staticmethod
    def _price_at(ts: np.ndarray[Any, Any], px: np.ndarray[Any, Any], ms: int) -> float | None:
        i = int(np.searchsorted(ts, ms, side="right")) - 1
        return None if i < 0 else float(px[i])

    def _prune(self, now_ms: int) -> None:
        """Forget windows that ended: their tokens can no longer signal (time left < 0)."""
        if self._next_prune_ms is None or now_ms <= self._next_prune_ms:
            return
        self._instruments = {k: v for k, v in self._instruments.items() if (v.end_ms or 0) >= now_ms}
        self._fired = {k: end for k, end in self._fired.items() if end >= now_ms}
        ends = [v.end_ms for v in self._instruments.values() if v.end_ms is not None]
        self._next_prune_ms = min(ends) if ends else None

    # ------------------------------------------------------------------ checkpoint

    def state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "momentum_lookback": self.config.momentum_lookback,
            "ref_ts": list(self._ref_ts),
            "ref_px": list(self._ref_px),
            "z": self._z.state(),
            "instruments": [i.model_dump(mode="json") for i in self._instruments.values()],
            "fired": dict(self._fired),
            "next_prune_ms": self._next_prune_ms,
        }

    def restore(self, state: dict[str, Any]) -> None:
        if state.get("kind") != self.kind:
            raise ValueError(f"{self.name}: state of a {state.get('kind')!r} strategy")
        if state["momentum_lookback"] != self.config.momentum_lookback:
            raise ValueError(
                f"{self.name}: state was taken with momentum_lookback={state['momentum_lookback']}, "
                f"config has {self.config.momentum_lookback}"
            )
        self._ref_ts = deque(int(t) for t in state["ref_ts"])
        self._ref_px = deque(float(p) for p in state["ref_px"])
        self._z = ZScore.restore(state["z"])
        instruments = (Instrument.model_validate(raw) for raw in state["instruments"])
        self._instruments = {i.market_id: i for i in instruments}
        self._fired = {str(k): int(v) for k, v in state["fired"].items()}
        nxt = state["next_prune_ms"]
        self._next_prune_ms = None if nxt is None else int(nxt)


__all__ = ["MAX_REFERENCE_AGE_MS", "MIN_VOL_RETURNS", "PolymarketLag"]
