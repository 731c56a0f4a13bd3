"""Replay sources: the bundled real data as one time-ordered stream of market events.

The backtester and the paper feeds consume the very same stream, so a backtest and a
paper run of the same data see the same events in the same order.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from decimal import Decimal

from actors.domain import Candle, Instrument, MarketEvent, MarketKind
from supervisor.market_data import CandleTable

BINANCE_BTCUSDT = Instrument(
    venue="binance",
    symbol="BTC/USDT",
    kind=MarketKind.SPOT,
    tick_size=Decimal("0.01"),
    lot_size=Decimal("0.00001"),
    min_size=Decimal("0.00001"),
    correlation_group="BTC",
)


def event_time(event: MarketEvent) -> int:
    """When an event becomes known: a candle at its close, everything else at its stamp."""
    if isinstance(event, Candle):
        return event.ts_ms + event.interval_ms
    if isinstance(event, Instrument):
        return event.created_ms or 0
    return event.ts_ms


def candle_events(table: CandleTable, market: str) -> Iterator[Candle]:
    """Candles of one market, skipping bars flagged as suspicious moves by cleaning."""
    interval = table.interval_ms
    flags = table.flags
    ts, o, h, lo, c, v = (
        table.timestamp.tolist(),
        table.open.tolist(),
        table.high.tolist(),
        table.low.tolist(),
        table.close.tolist(),
        table.volume.tolist(),
    )
    for i in range(len(ts)):
        if flags[i]:
            continue
        yield Candle.model_construct(
            market=market,
            ts_ms=ts[i],
            interval_ms=interval,
            open=o[i],
            high=h[i],
            low=lo[i],
            close=c[i],
            volume=v[i],
        )


def merge_streams(*streams: Iterable[MarketEvent]) -> Iterator[MarketEvent]:
    """Merge time-ordered streams by event time; ties keep the order the streams were given in."""
    iterators = [
        ((event_time(e), idx, n, e) for n, e in enumerate(stream)) for idx, stream in enumerate(streams)
    ]
    for _t, _idx, _n, event in heapq.merge(*iterators, key=lambda item: (item[0], item[1], item[2])):
        yield event
