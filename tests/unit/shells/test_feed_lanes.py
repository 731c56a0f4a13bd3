"""A detached consumer's lane: coalescing, and the floor a feed checkpoint must not pass."""

from __future__ import annotations

from actors.domain.model import Candle
from actors.shells.feed import Lane

MARKET = "binance:BTC/USDT"


def _bars(first: int, n: int) -> list[Candle]:
    return [
        Candle(market=MARKET, ts_ms=(first + i) * 60_000, open=1, high=1, low=1, close=1, volume=1)
        for i in range(n)
    ]


def test_events_added_while_a_call_is_in_flight_go_as_one_call_in_order() -> None:
    lane = Lane("on_events")
    lane.add(_bars(0, 2), ingest_ns=10, floor=(0, None))
    first, ingest = lane.take()
    assert (len(first), ingest) == (2, 10)
    lane.add(_bars(2, 3), ingest_ns=20, floor=(2, 60_000))
    lane.add(_bars(5, 3), ingest_ns=30, floor=(5, 240_000))
    lane.sent(first)
    second, ingest = lane.take()
    assert [c.ts_ms // 60_000 for c in second] == [2, 3, 4, 5, 6, 7]
    assert ingest == 20  # the oldest event's ingest time: its latency is not hidden
    lane.sent(second)
    assert (lane.calls, lane.events, lane.pending, lane.floor()) == (2, 8, [], None)


def test_floor_is_the_oldest_undelivered_event_until_its_call_succeeds() -> None:
    lane = Lane("on_events")
    lane.add(_bars(0, 2), ingest_ns=1, floor=(0, None))
    events, ingest = lane.take()
    lane.add(_bars(2, 2), ingest_ns=2, floor=(2, 60_000))
    assert lane.floor() == (0, None)  # in flight: a checkpoint must not pass it
    lane.sent(events)
    assert lane.floor() == (2, 60_000)  # only the pending ones are left
    events, ingest = lane.take()
    lane.add(_bars(4, 1), ingest_ns=3, floor=(4, 180_000))
    lane.failed(events, ingest)
    assert lane.floor() == (2, 60_000)
    again, ingest = lane.take()
    assert [c.ts_ms // 60_000 for c in again] == [2, 3, 4]  # the failed ones first, none lost
    assert ingest == 2
