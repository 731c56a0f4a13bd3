"""Replay sources: the bundled real data as one time-ordered stream of market events.

The backtester and the paper feeds consume the very same stream, so a backtest and a
paper run of the same data see the same events in the same order.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from actors.data.polymarket import (
    VENUE,
    BinaryMarket,
    ChainlinkTicks,
    load_chainlink,
    load_markets,
    tick_candle,
)
from actors.data.polymarket_books import BookModel, BookModelConfig
from actors.domain.model import Candle, Instrument, MarketEvent, MarketKind, OrderBook, Settlement

if TYPE_CHECKING:  # a type only: a feed reading no candle file need not import Parquet
    from actors.data.candles import CandleTable

BINANCE_SPOT_FILTERS: dict[str, tuple[str, str]] = {
    "BTC/USDT": ("0.01", "0.00001"),
    "ETH/USDT": ("0.01", "0.0001"),
    "SOL/USDT": ("0.01", "0.001"),
    "XRP/USDT": ("0.0001", "1"),
}
"""Binance spot PRICE_FILTER tick and LOT_SIZE step of the bundled pairs (exchangeInfo, 2024);
another pair replays with BTC/USDT's."""


def binance_instrument(market_id: str) -> Instrument:
    """The instrument of a Binance spot pair replayed from candles, with its tick and lot."""
    symbol = market_id.partition(":")[2]
    tick, lot = BINANCE_SPOT_FILTERS.get(symbol, BINANCE_SPOT_FILTERS["BTC/USDT"])
    return Instrument(
        venue="binance",
        symbol=symbol,
        kind=MarketKind.SPOT,
        tick_size=Decimal(tick),
        lot_size=Decimal(lot),
        min_size=Decimal(lot),
        correlation_group=symbol.split("/")[0],
    )


BINANCE_BTCUSDT = binance_instrument("binance:BTC/USDT")


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


# --------------------------------------------------------------------------- Polymarket day

CHAINLINK_MARKET = "chainlink:BTC/USD"
CHAINLINK_INSTRUMENT = Instrument(
    venue="chainlink",
    symbol="BTC/USD",
    kind=MarketKind.SPOT,
    tick_size=Decimal("0.01"),
    lot_size=Decimal("0.00001"),
    correlation_group="BTC",
)


def chainlink_candles(ticks: ChainlinkTicks, market: str = CHAINLINK_MARKET) -> Iterator[Candle]:
    """One 1-second candle per Chainlink tick, closing at the tick's time (so it is known then)."""
    for ts, price in zip(ticks.ts_ms.tolist(), ticks.price.tolist(), strict=True):
        yield tick_candle(market, ts, price)


def market_listings(markets: Iterable[BinaryMarket]) -> Iterator[Instrument]:
    """Both tokens of every market, in listing order (Polymarket lists them a day ahead)."""
    instruments = [inst for m in markets for inst in m.instruments()]
    yield from sorted(instruments, key=lambda i: (i.created_ms or 0, i.start_ms or 0, i.outcome or ""))


def modelled_books(
    markets: Iterable[BinaryMarket], ticks: ChainlinkTicks, model: BookModel, interval_ms: int
) -> Iterator[OrderBook]:
    """MODELLED Up/Down books every ``interval_ms`` while each window is open (no book history exists)."""
    for market in sorted(markets, key=lambda m: m.start_ms):
        for now in range(market.start_ms, market.end_ms, interval_ms):
            up, down = model.books_at(market, now, ticks)
            yield up
            yield down


def settlements(markets: Iterable[BinaryMarket]) -> Iterator[Settlement]:
    """Each token's recorded payout (1 or 0) at its window's end; unresolved markets are skipped."""
    for market in sorted(markets, key=lambda m: m.end_ms):
        for token in market.token_ids:
            payout = market.payout(token)
            if payout is not None:
                yield Settlement(market=f"{VENUE}:{token}", payout=payout, ts_ms=market.end_ms)


def polymarket_events(
    markets_path: Path, ticks_path: Path, *, model: BookModel | None = None, book_interval_ms: int = 5_000
) -> tuple[list[Instrument], Iterator[MarketEvent]]:
    """The bundled Polymarket day as one stream: Chainlink candles, listings, modelled books, settlements.

    Returns the instruments too, so a venue can know every token before its listing event.
    """
    ticks = load_chainlink(ticks_path)
    markets = load_markets(markets_path, ticks)
    model = model or BookModel(BookModelConfig())
    instruments = [CHAINLINK_INSTRUMENT, *(i for m in markets for i in m.instruments())]
    stream = merge_streams(
        market_listings(markets),
        chainlink_candles(ticks),
        settlements(markets),
        modelled_books(markets, ticks, model, book_interval_ms),
    )
    return instruments, stream
