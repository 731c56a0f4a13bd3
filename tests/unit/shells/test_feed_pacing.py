"""A paced replay waits for market data, not for listings: the bundled Polymarket day lists its
markets a day ahead of their trading, and pacing through that day of listings alone would spend
half of a paced run's wall time with nothing to trade (chaos paces its replay to its duration)."""

from __future__ import annotations

from decimal import Decimal

from actors.domain.model import Candle, Settlement
from actors.shells.feed import paced_time
from tests.unit.core.position_helpers import BINARY

LISTED = BINARY.model_copy(update={"created_ms": 1_000})


def test_a_batch_of_listings_alone_is_not_paced() -> None:
    assert paced_time([LISTED, LISTED.model_copy(update={"created_ms": 86_400_000})]) is None


def test_a_batch_is_paced_by_its_last_market_event_not_a_trailing_listing() -> None:
    tick = Candle(
        market="chainlink:BTC/USD", ts_ms=90_000_000, open=1.0, high=1.0, low=1.0, close=1.0, volume=0
    )
    settled = Settlement(market=LISTED.market_id, ts_ms=90_100_000, payout=Decimal(1))
    late_listing = LISTED.model_copy(update={"created_ms": 95_000_000})
    assert paced_time([LISTED, tick, late_listing]) == tick.ts_ms + tick.interval_ms
    assert paced_time([tick, settled, late_listing]) == settled.ts_ms
