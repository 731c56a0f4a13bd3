"""Issue 11, live timeframe per market: a live Binance feed on ``live.binance.timeframes`` reads that
interval from the venue through the real ccxt (REST warm-up and the ``@kline_<interval>`` stream),
and the sandbox aggregates its 1m bars into it as Binance does."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from actors.data.live import History, binance_live, warmup_bars
from actors.domain.model import Candle, Instrument
from actors.venues.binance.client import ws_supported
from config.loader import load_settings
from config.models import MeanReversionConfig, Settings
from ops.sandbox.binance import Credentials, SandboxBinance
from tests.integration.sandbox.binance_support import MARKET, next_item

FIVE_MIN = 300_000
STRATEGY = MeanReversionConfig(name="mr_5m", markets=(MARKET,), allocation=0.4, bb_period=8)


def live_settings_for(
    venue: SandboxBinance, creds: Credentials, strategy: MeanReversionConfig, extra: tuple[str, ...] = ()
) -> Settings:
    """Settings of a live Binance feed on the sandbox, ``strategy`` the one watching, then ``extra``."""
    settings = load_settings(
        None,
        env={
            "RAYTRADER_SECRETS__BINANCE_API_KEY": creds.api_key,
            "RAYTRADER_SECRETS__BINANCE_API_SECRET": creds.api_secret,
        },
        overrides=[
            f'live.binance.url="{venue.rest_url}"',
            f'live.binance.ws_url="{venue.ws_url}"',
            *extra,
        ],
    )
    return settings.model_copy(update={"strategies": [strategy]})


def _aggregate(venue: SandboxBinance, open_ms: int) -> tuple[int, float, float, float, float]:
    """The 5m bar opening at ``open_ms`` from the sandbox's 1m bars."""
    bars = [
        venue.bar(i) for i in range(venue.bar_index + 1) if open_ms <= venue.bar(i)[0] < open_ms + FIVE_MIN
    ]
    assert len(bars) == 5
    return (
        open_ms,
        float(bars[0][1]),
        float(max(b[2] for b in bars)),
        float(min(b[3] for b in bars)),
        float(bars[-1][4]),
    )


def _ohlc(candle: Candle) -> tuple[int, float, float, float, float]:
    return (candle.ts_ms, candle.open, candle.high, candle.low, candle.close)


@pytest.mark.skipif(not ws_supported(), reason="ccxt.pro not importable")
async def test_live_feed_on_5m_timeframe_warms_up_on_5m_history_and_streams_5m_candles(
    venue: SandboxBinance, creds: Credentials
) -> None:
    settings = live_settings_for(
        venue,
        creds,
        STRATEGY,
        (f'live.binance.timeframes={{"{MARKET}"="5m"}}', "live.binance.order_book=false"),
    )
    assert settings.live.binance.timeframe_of("binance:ETH/USDT") == "1m"  # the default elsewhere
    warmup = warmup_bars(settings, MARKET, FIVE_MIN)
    assert 0 < warmup < 20  # the sandbox holds 100 1m bars of history: 20 5m bars
    feed = binance_live(settings, MARKET, None)
    instrument = await anext(feed)
    assert isinstance(instrument, Instrument)
    assert instrument.market_id == MARKET
    history = await anext(feed)
    assert isinstance(history, History)
    assert len(history.candles) == warmup
    assert all(c.interval_ms == FIVE_MIN and c.ts_ms % FIVE_MIN == 0 for c in history.candles)
    assert [c.ts_ms for c in history.candles] == [
        history.candles[0].ts_ms + k * FIVE_MIN for k in range(warmup)
    ]
    assert history.candles[-1].close_ms <= venue.bar()[0] + 60_000  # only closed bars
    assert [_ohlc(c) for c in history.candles] == [_aggregate(venue, c.ts_ms) for c in history.candles]

    streamed: list[Candle] = []
    nxt = asyncio.create_task(next_item(feed))
    await venue.wait_for(lambda: "btcusdt@kline_5m" in set().union(*venue.subscriptions()))
    assert "btcusdt@kline_1m" not in set().union(*venue.subscriptions())
    while len(streamed) < 2:
        venue.advance(1)
        if (venue.bar()[0] + 60_000) % FIVE_MIN == 0:  # a 5m bar closed: the stream delivers it
            candle = await asyncio.wait_for(nxt, 10)
            assert isinstance(candle, Candle)
            streamed.append(candle)
            nxt = asyncio.create_task(next_item(feed))
    nxt.cancel()
    await feed.aclose()
    first = history.candles[-1].ts_ms + FIVE_MIN
    assert [c.ts_ms for c in streamed] == [first, first + FIVE_MIN]
    assert all(c.interval_ms == FIVE_MIN for c in streamed)
    assert [_ohlc(c) for c in streamed] == [_aggregate(venue, c.ts_ms) for c in streamed]
    assert [Decimal(str(c.volume)) > 0 for c in streamed] == [True, True]
