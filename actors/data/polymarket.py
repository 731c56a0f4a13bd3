"""Loaders for the bundled Polymarket day: the BTC 5-minute up/down markets and the Chainlink ticks.

Files (see ``ops/data/SOURCE.md``): ``BTC-5m-markets-<day>.jsonl.gz`` (one market a line, with
the raw Gamma API object) and ``BTCUSD-chainlink-<day>.csv.gz`` (the BTC/USD stream the markets
settle on, about 1 Hz). Pure functions of their inputs; nothing here reads a clock.

Findings about the data that shape the decisions below:

* A recorded ``strike_value`` is always exactly the Chainlink tick at ``start_sec`` (the
  "price to beat" is the price when the window opens). It is null for 18 of 292 markets, and
  in every such case the tick log has no row at ``start_sec`` (a feed gap). The fallback is the
  **last tick at or before start_sec**: the same rule that settles the previous window, and
  causal (it never uses a price from after the window opened, so a replay cannot peek ahead).
* ``orderPriceMinTickSize`` is a snapshot taken after the market closed. Polymarket narrows the
  tick from 0.01 to 0.001 once a price passes 0.96 / 0.04, so the 210 markets recorded at 0.001
  mostly ended at an extreme price; during most of their life they traded on 0.01.
* The tick log covers one UTC day exactly (00:00:00 .. 23:59:59) but the markets run from
  23:55 the day before to 00:15 the day after, so the first window has no history before it
  and the last windows cannot be settled from this log.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from actors.data.candles_csv import open_text
from actors.domain.model import Candle, Instrument, MarketKind, to_decimal

Outcome = Literal["Up", "Down"]

VENUE = "polymarket"
CORRELATION_GROUP = "BTC-5m"
"""One group for every window and both tokens.

Every position in this series is a bet on the same BTC/USD path over the same few minutes:
the Up and Down tokens of one window are exactly opposite, and at any moment the windows one
can hold are the current one (and, for early buyers, the next few, whose outcomes all hinge on
the same price level). A per-window group would let the portfolio cap count "Up in 12:05" and
"Up in 12:10" as unrelated; one series-wide group makes the correlated-positions cap bite.
"""

LOT_SIZE = Decimal("0.01")
"""Polymarket CLOB share amounts carry two decimals (py-clob-client rounds order sizes to 2)."""

DEFAULT_TICK = Decimal("0.01")
_STRIKE_SCALE = 10**18
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FeeSchedule(_Model):
    """The raw ``feeSchedule``: fee = shares * rate * (p * (1 - p)) ** exponent, taker side."""

    rate: float = Field(ge=0)
    exponent: float = Field(gt=0)
    taker_only: bool = True
    rebate_rate: float = Field(default=0.0, ge=0)

    def fee(self, shares: float, price: float) -> float:
        """Fee in USDC for a taker trade of ``shares`` at ``price``."""
        return shares * self.rate * float((price * (1.0 - price)) ** self.exponent)


class BinaryMarket(_Model):
    """One "Bitcoin Up or Down" 5-minute window: two outcome tokens, a strike, a resolution."""

    slug: str
    condition_id: str
    up_token_id: str
    down_token_id: str
    start_ms: int
    end_ms: int
    strike: float | None = Field(description="price to beat, USD; None when unrecorded and not filled")
    strike_recorded: bool = Field(description="False when the strike is the Chainlink fallback or None")
    outcome: Outcome | None = Field(description="resolved winner; None while unresolved")
    tick_size: Decimal = Field(gt=0, description="raw orderPriceMinTickSize (a post-close snapshot)")
    min_size: Decimal = Field(ge=0, description="raw orderMinSize, shares")
    created_ms: int | None
    fee_schedule: FeeSchedule | None
    question: str = ""

    @property
    def token_ids(self) -> tuple[str, str]:
        return (self.up_token_id, self.down_token_id)

    def token_outcome(self, token_id: str) -> Outcome:
        """Which side a token of this market pays on; KeyError for a foreign token."""
        if token_id == self.up_token_id:
            return "Up"
        if token_id == self.down_token_id:
            return "Down"
        raise KeyError(f"token {token_id} is not part of {self.slug}")

    def payout(self, token_id: str, outcome: Outcome | None = None) -> Decimal | None:
        """USDC paid per share of ``token_id`` at settlement (1 or 0); None if unresolved."""
        winner = outcome if outcome is not None else self.outcome
        if winner is None:
            return None
        return Decimal(1) if self.token_outcome(token_id) == winner else Decimal(0)

    def instruments(self) -> tuple[Instrument, Instrument]:
        """The Up and Down tokens as tradable instruments, in that order."""
        return (self._instrument(self.up_token_id, "Up"), self._instrument(self.down_token_id, "Down"))

    def _instrument(self, token_id: str, outcome: Outcome) -> Instrument:
        return Instrument(
            venue=VENUE,
            symbol=token_id,
            kind=MarketKind.BINARY,
            tick_size=self.tick_size,
            lot_size=LOT_SIZE,
            min_size=self.min_size,
            created_ms=self.created_ms,
            end_ms=self.end_ms,
            correlation_group=CORRELATION_GROUP,
            condition_id=self.condition_id,
            outcome=outcome,
            start_ms=self.start_ms,
            strike=self.strike,
        )


class ChainlinkTicks(NamedTuple):
    """The tick log as two aligned arrays, ascending in time, one row per second at most."""

    ts_ms: npt.NDArray[np.int64]
    price: npt.NDArray[np.float64]

    def index_at(self, ms: int) -> int:
        """Index of the last tick at or before ``ms``; -1 if there is none."""
        return int(np.searchsorted(self.ts_ms, ms, side="right")) - 1

    def price_at(self, ms: int) -> float | None:
        """The last price at or before ``ms`` (what a listener knew at ``ms``)."""
        i = self.index_at(ms)
        return None if i < 0 else float(self.price[i])

    def until(self, ms: int) -> ChainlinkTicks:
        """The ticks at or before ``ms``: the history as it stood then."""
        i = self.index_at(ms) + 1
        return ChainlinkTicks(self.ts_ms[:i], self.price[:i])


# --------------------------------------------------------------------------- loaders


def _iso_ms(text: str | None) -> int | None:
    if not text:
        return None
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // timedelta(milliseconds=1)


def _outcome(row: dict[str, Any]) -> Outcome | None:
    prices = row.get("outcome_prices")
    if not row.get("resolved") or not prices:
        return None
    up, down = (Decimal(str(p)) for p in prices)
    if up == 1 and down == 0:
        return "Up"
    if up == 0 and down == 1:
        return "Down"
    return None


def _fee_schedule(raw: dict[str, Any]) -> FeeSchedule | None:
    fees = raw.get("feeSchedule")
    if not isinstance(fees, dict):
        return None
    return FeeSchedule(
        rate=float(fees.get("rate", 0.0)),
        exponent=float(fees.get("exponent", 1.0)),
        taker_only=bool(fees.get("takerOnly", True)),
        rebate_rate=float(fees.get("rebateRate", 0.0)),
    )


def fallback_strike(ticks: ChainlinkTicks, start_ms: int) -> float | None:
    """Strike for a market whose ``strike_value`` is null: the last tick at or before the start."""
    return ticks.price_at(start_ms)


def parse_market(row: dict[str, Any], ticks: ChainlinkTicks | None = None) -> BinaryMarket:
    """One JSON line of the markets file; ``ticks`` fills a null strike (see ``fallback_strike``)."""
    raw: dict[str, Any] = row.get("raw") or {}
    up_token, down_token = (str(t) for t in row["token_ids"])
    start_ms = int(row["start_sec"]) * 1000
    strike_value = row.get("strike_value")
    strike = int(strike_value) / _STRIKE_SCALE if strike_value is not None else None
    recorded = strike is not None
    if strike is None and ticks is not None:
        strike = fallback_strike(ticks, start_ms)
    tick = raw.get("orderPriceMinTickSize")
    min_size = raw.get("orderMinSize")
    return BinaryMarket(
        slug=str(row["slug"]),
        condition_id=str(row["condition_id"]),
        up_token_id=up_token,
        down_token_id=down_token,
        start_ms=start_ms,
        end_ms=int(row["end_sec"]) * 1000,
        strike=strike,
        strike_recorded=recorded,
        outcome=_outcome(row),
        tick_size=to_decimal(tick) if tick else DEFAULT_TICK,
        min_size=to_decimal(min_size) if min_size is not None else Decimal(0),
        created_ms=_iso_ms(raw.get("createdAt")),
        fee_schedule=_fee_schedule(raw),
        question=str(raw.get("question", "")),
    )


def load_markets(path: Path | str, ticks: ChainlinkTicks | None = None) -> list[BinaryMarket]:
    """Every market of a markets file, in start order; pass ``ticks`` to fill null strikes."""
    with open_text(Path(path)) as fh:
        markets = [parse_market(json.loads(line), ticks) for line in fh if line.strip()]
    return sorted(markets, key=lambda m: (m.start_ms, m.slug))


def _chainlink_rows(lines: Iterable[dict[str, str]]) -> Iterator[tuple[int, int, int]]:
    for row in lines:
        raw = row.get("full_accuracy_value") or ""
        # The exact value when present: recorded strikes are these integers, so ties compare exactly.
        scaled = int(raw) if raw else round(Decimal(row["value"]) * _STRIKE_SCALE)
        yield int(row["feed_ts_ms"]), int(row["recv_ms"]), scaled


def load_chainlink(path: Path | str) -> ChainlinkTicks:
    """The tick log, one row per second: of two rows in one second, the later ``recv_ms`` wins.

    Prices are ``full_accuracy_value / 1e18`` (correctly rounded), so a tick equal to a
    recorded strike compares equal as a float too.
    """
    with open_text(Path(path)) as fh:
        rows = list(_chainlink_rows(csv.DictReader(fh)))
    best: dict[int, tuple[int, int, int]] = {}
    for feed_ms, recv_ms, scaled in rows:
        second = feed_ms // 1000
        kept = best.get(second)
        if kept is None or recv_ms >= kept[1]:
            best[second] = (feed_ms, recv_ms, scaled)
    chosen = [best[s] for s in sorted(best)]
    ts = np.fromiter((r[0] for r in chosen), dtype=np.int64, count=len(chosen))
    price = np.fromiter((r[2] / _STRIKE_SCALE for r in chosen), dtype=np.float64, count=len(chosen))
    return ChainlinkTicks(ts, price)


# --------------------------------------------------------------------------- settlement


def settlement_outcome(market: BinaryMarket, ticks: ChainlinkTicks) -> Outcome | None:
    """Up wins iff the last tick at or before ``end_ms`` is >= the strike.

    ``None`` when the log cannot decide: it stops before ``end_ms`` (a later tick at or before
    the end may exist that it never saw), it has no tick at or before ``end_ms``, or the strike
    is unknown and the log has no tick at or before ``start_ms`` to stand in for it.
    """
    if len(ticks.ts_ms) == 0 or int(ticks.ts_ms[-1]) < market.end_ms:
        return None
    strike = market.strike if market.strike is not None else fallback_strike(ticks, market.start_ms)
    final = ticks.price_at(market.end_ms)
    if strike is None or final is None:
        return None
    return "Up" if final >= strike else "Down"


def tick_candle(market: str, ts_ms: int, price: float) -> Candle:
    """A Chainlink tick as the strategies see it, replayed or live: a 1-second candle closing at
    the tick's time (the moment it is known). Unvalidated: callers pass a positive finite price."""
    return Candle.model_construct(
        market=market,
        ts_ms=ts_ms - 1000,
        interval_ms=1000,
        open=price,
        high=price,
        low=price,
        close=price,
        volume=0.0,
    )
