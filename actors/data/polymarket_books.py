"""MODELLED Up/Down order books for replaying the bundled Polymarket day.

The bundled data has **no order-book history** (only market listings, resolutions and the
Chainlink ticks), so every book a replay shows is made up here. It is a caricature of the
market the lag strategy hopes to find, not a record of what Polymarket quoted; a backtest on
these books measures the strategy against this model, nothing more.

The model, for a market and a time ``t``:

1. Fair value ``f`` = ``binary_pricing.fair_value`` of the Chainlink path **as known at
   t − lag** (price, realised vol over ``vol_window_s``, time left at t − lag). Before the
   window opens (t − lag < start) the fair value is 1/2: the strike is the price at the start,
   not yet known, and the path is driftless. With no tick yet it is also 1/2.
2. Up book centre = ``f`` rounded to the quote tick, then held inside the price range so that
   all of the best bid and ask fit in [tick, 1 − tick].
3. Best bid/ask = centre ∓ ``half_spread_ticks`` ticks, plus ``expiry_extra_ticks`` in the
   last ``expiry_window_s`` seconds (makers widen as the outcome firms up).
4. ``levels`` levels a side, one tick apart, dropped when they would leave [tick, 1 − tick];
   each of ``level_size`` shares times a seeded jitter in [0.5, 1.5), whole shares. The jitter
   is a hash of (seed, condition id, second, side, level): a pure function of its inputs, so a
   book can be recomputed at any time in any order.
5. Down book = the mirror of the Up book (Down bid = 1 − Up ask, same sizes), which is how
   Polymarket's matching engine joins the two sides: buying Down at p meets selling Up at 1 − p.

After the end of the window the books are empty (the venue stops taking orders).

Quote tick: the recorded ``orderPriceMinTickSize`` is a post-close snapshot (0.001 for
markets that ended near 0 or 1), so the model quotes on ``quote_tick`` (0.01 by default, or
the market's tick if coarser); a 0.01 grid is also aligned to a 0.001 tick.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from actors.core.pricing import fair_value
from actors.data.polymarket import VENUE, BinaryMarket, ChainlinkTicks, fallback_strike
from actors.domain.model import BookLevel, OrderBook

ONE = Decimal(1)
_HALF = 0.5


class BookModelConfig(BaseModel):
    """Knobs of the modelled books; defaults are a plausible quiet 5-minute market."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lag_s: float = Field(default=60.0, ge=0, le=300, description="books show the fair value this late")
    half_spread_ticks: int = Field(default=1, ge=1, description="best bid/ask this many ticks from centre")
    expiry_extra_ticks: int = Field(default=1, ge=0, description="added half-spread near expiry")
    expiry_window_s: float = Field(default=60.0, ge=0, description="'near expiry' = this many seconds left")
    levels: int = Field(default=5, ge=1, le=50)
    level_size: Decimal = Field(default=Decimal(200), gt=0, description="mean shares per level")
    quote_tick: Decimal | None = Field(default=Decimal("0.01"), gt=0, description="None = market tick")
    vol_window_s: float = Field(default=900.0, gt=0, description="realised-vol window of the fair value")
    sigma_floor: float = Field(
        default=5e-6, ge=0, description="σ per √s floor, so a flat stretch does not quote 0/1"
    )
    seed: int = 7


class BookModel:
    """Deterministic Up/Down books of a binary market from the Chainlink history."""

    def __init__(self, config: BookModelConfig | None = None) -> None:
        self.config = config or BookModelConfig()

    def tick(self, market: BinaryMarket) -> Decimal:
        """The grid the model quotes on: the quote tick, or the market's tick if coarser."""
        quote = self.config.quote_tick
        return market.tick_size if quote is None else max(quote, market.tick_size)

    def fair_up(self, market: BinaryMarket, at_ms: int, history: ChainlinkTicks) -> float:
        """Unlagged fair up-probability at ``at_ms`` from the ticks at or before it."""
        if at_ms < market.start_ms:
            return _HALF
        strike = market.strike if market.strike is not None else fallback_strike(history, market.start_ms)
        if strike is None:
            return _HALF
        value = fair_value(
            history.ts_ms,
            history.price,
            at_ms,
            strike,
            market.end_ms,
            self.config.vol_window_s,
            self.config.sigma_floor,
        )
        return _HALF if value is None else value.prob_up

    def quoted_fair(self, market: BinaryMarket, now_ms: int, history: ChainlinkTicks) -> float:
        """The fair value the books at ``now_ms`` show: the one at ``now_ms − lag``."""
        return self.fair_up(market, now_ms - round(self.config.lag_s * 1000), history)

    def books_at(
        self, market: BinaryMarket, now_ms: int, history: ChainlinkTicks
    ) -> tuple[OrderBook, OrderBook]:
        """(Up book, Down book) at ``now_ms``; ``history`` may run past ``now_ms`` (it is cut)."""
        up_market = f"{VENUE}:{market.up_token_id}"
        down_market = f"{VENUE}:{market.down_token_id}"
        if now_ms >= market.end_ms:
            return OrderBook(market=up_market, ts_ms=now_ms), OrderBook(market=down_market, ts_ms=now_ms)
        tick = self.tick(market)
        half = tick * (self.config.half_spread_ticks + self._expiry_ticks(market, now_ms))
        centre = self._centre(self.quoted_fair(market, now_ms, history), tick, half)
        sizes = self._sizes(market, now_ms)
        bids: list[BookLevel] = []
        asks: list[BookLevel] = []
        for level in range(self.config.levels):
            bid = centre - half - tick * level
            ask = centre + half + tick * level
            if bid >= tick:
                bids.append(BookLevel(price=bid, size=sizes[2 * level]))
            if ask <= ONE - tick:
                asks.append(BookLevel(price=ask, size=sizes[2 * level + 1]))
        up = OrderBook(market=up_market, ts_ms=now_ms, bids=tuple(bids), asks=tuple(asks))
        down = OrderBook(
            market=down_market,
            ts_ms=now_ms,
            bids=tuple(BookLevel(price=ONE - lv.price, size=lv.size) for lv in asks),
            asks=tuple(BookLevel(price=ONE - lv.price, size=lv.size) for lv in bids),
        )
        return up, down

    # ------------------------------------------------------------------ internals

    def _expiry_ticks(self, market: BinaryMarket, now_ms: int) -> int:
        left_s = (market.end_ms - now_ms) / 1000.0
        return self.config.expiry_extra_ticks if left_s <= self.config.expiry_window_s else 0

    @staticmethod
    def _centre(fair: float, tick: Decimal, half: Decimal) -> Decimal:
        """Fair value on the tick grid, held so the best bid and ask stay in [tick, 1 − tick]."""
        centre = Decimal(round(fair / float(tick))) * tick
        low, high = tick + half, ONE - tick - half
        if low > high:  # spread wider than the price range: centre it
            return (low + high) / 2 // tick * tick
        return min(max(centre, low), high)

    def _sizes(self, market: BinaryMarket, now_ms: int) -> list[Decimal]:
        """2 × levels sizes (bid, ask per level), whole shares, from a seeded hash."""
        count = 2 * self.config.levels
        key = f"{self.config.seed}|{market.condition_id}|{now_ms // 1000}".encode()
        digest = hashlib.blake2b(key, digest_size=min(64, 4 * count)).digest()
        while len(digest) < 4 * count:
            digest += hashlib.blake2b(digest, digest_size=64).digest()
        sizes: list[Decimal] = []
        for i in range(count):
            u = int.from_bytes(digest[4 * i : 4 * i + 4], "big") / 2**32
            shares = (self.config.level_size * Decimal(repr(0.5 + u))).to_integral_value()
            sizes.append(max(shares, ONE))
        return sizes
