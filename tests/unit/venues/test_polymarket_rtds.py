"""The RTDS Chainlink reader: Polymarket's ``crypto_prices_chainlink`` messages as 1-second
candles, the shape the replay gives the same feed. The fixture follows the message documented at
docs.polymarket.com (RTDS, crypto prices: topic, type, timestamp, payload {symbol, timestamp,
value}); no live capture was possible from this machine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from actors.data.polymarket import ChainlinkTicks
from actors.data.replay import chainlink_candles
from actors.venues.polymarket.rtds import ChainlinkReader, subscription

FIXTURE = Path(__file__).parents[2] / "fixtures" / "polymarket" / "rtds_chainlink_update.json"
MARKET = "chainlink:BTC/USD"


def _tick(ts: int, value: float, symbol: str = "btc/usd") -> str:
    raw = json.loads(FIXTURE.read_text())
    raw["payload"] = {"symbol": symbol, "timestamp": ts, "value": value}
    return json.dumps(raw)


def test_chainlink_update_becomes_the_candle_the_replay_makes() -> None:
    reader = ChainlinkReader(MARKET)
    (candle,) = reader.feed(FIXTURE.read_text())

    ticks = ChainlinkTicks(np.array([1753314064000], dtype=np.int64), np.array([118350.27]))
    (replayed,) = chainlink_candles(ticks)
    assert candle.model_dump() == replayed.model_dump()
    assert candle.close_ms == 1753314064000
    assert reader.ticks == 1


def test_repeated_or_older_tick_after_a_reconnect_is_dropped() -> None:
    reader = ChainlinkReader(MARKET)
    assert len(reader.feed(_tick(2_000, 100.0))) == 1
    assert reader.feed(_tick(2_000, 100.0)) == []
    assert reader.feed(_tick(1_000, 99.0)) == []
    assert [c.close for c in reader.feed(_tick(3_000, 101.5))] == [101.5]
    assert reader.ignored == 2


def test_malformed_rtds_messages_are_counted_not_raised() -> None:
    reader = ChainlinkReader(MARKET)
    bad = [
        "{not json",
        json.dumps([1]),
        _tick(5_000, -1.0),
        _tick(0, 100.0),
        json.dumps({"topic": "crypto_prices_chainlink", "type": "update", "payload": {"symbol": "btc/usd"}}),
        _tick(6_000, float("inf")).replace("Infinity", "1e999"),
    ]
    for text in bad:
        assert reader.feed(text) == []
    assert reader.malformed == 6
    assert reader.ticks == 0


def test_other_topics_symbols_and_pongs_are_ignored() -> None:
    reader = ChainlinkReader(MARKET)
    other = json.dumps({"topic": "crypto_prices", "type": "update", "payload": {"symbol": "btcusdt"}})
    assert reader.feed(other) == []
    assert reader.feed(_tick(7_000, 3000.0, symbol="eth/usd")) == []
    assert reader.feed("PONG") == []
    assert (reader.malformed, reader.ignored) == (0, 2)


def test_subscription_names_the_chainlink_topic_and_symbol() -> None:
    (sub,) = subscription("btc/usd")["subscriptions"]  # type: ignore[misc]
    assert sub == {"topic": "crypto_prices_chainlink", "type": "*", "filters": '{"symbol":"btc/usd"}'}
