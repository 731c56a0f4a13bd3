"""Actor names and the topology a config needs: one place each."""

from __future__ import annotations

import pytest

from actors.domain.names import (
    PORTFOLIO,
    STORE,
    SUPERVISOR,
    ActorName,
    actor_key,
    feed_name,
    market_symbol,
    market_venue,
    parse_actor_name,
    position_name,
    strategy_name,
    venue_name,
)
from actors.domain.topology import feed_of_market, topology
from config.loader import load_settings


@pytest.mark.parametrize(
    ("name", "kind", "key"),
    [
        (venue_name("binance"), "venue", "binance"),
        (feed_name("polymarket"), "feed", "polymarket"),
        (strategy_name("mean_reversion"), "strategy", "mean_reversion"),
        (position_name("pos-1a2b"), "position", "pos-1a2b"),
        (PORTFOLIO, "portfolio", "portfolio"),
        (STORE, "store", "store"),
    ],
)
def test_actor_name_round_trips_through_parse(name: str, kind: str, key: str) -> None:
    parsed = parse_actor_name(name)
    assert parsed == ActorName(kind, key)
    assert str(parsed) == name
    assert actor_key(name) == key


def test_actor_names_keep_their_persisted_format() -> None:
    """Ray actor names and store keys: the strings must not change across versions."""
    assert venue_name("binance") == "venue:binance"
    assert feed_name("binance") == "feed:binance"
    assert strategy_name("mean_reversion") == "strategy:mean_reversion"
    assert position_name("pos-1a2b") == "position:pos-1a2b"
    assert (STORE, SUPERVISOR, PORTFOLIO) == ("store", "supervisor", "portfolio")


def test_malformed_actor_name_is_refused() -> None:
    with pytest.raises(ValueError, match="not an actor name"):
        parse_actor_name("position:")


def test_market_id_splits_into_venue_and_symbol() -> None:
    assert (market_venue("binance:BTC/USDT"), market_symbol("binance:BTC/USDT")) == ("binance", "BTC/USDT")
    token = "polymarket:1234:5678"
    assert (market_venue(token), market_symbol(token)) == ("polymarket", "1234:5678")


def test_default_config_needs_both_venues_feeds_and_four_strategies() -> None:
    tp = topology(load_settings(None, env={}))
    assert tp.venues == ("binance", "polymarket")
    assert tp.feeds == ("binance", "polymarket")
    assert set(tp.strategies) == {"mean_reversion", "ml_momentum", "momentum_breakout", "polymarket_lag"}
    names = tp.static_actors()
    assert names[:3] == [
        ("venue:binance", "venue"),
        ("venue:polymarket", "venue"),
        ("portfolio", "portfolio"),
    ]
    assert names[-2:] == [("feed:binance", "feed"), ("feed:polymarket", "feed")]  # consumers first


def test_disabled_strategies_leave_their_venue_out() -> None:
    settings = load_settings(None, env={}, overrides=["strategies.polymarket_lag.enabled=false"])
    tp = topology(settings)
    assert tp.venues == ("binance",)
    assert tp.feeds == ("binance",)
    assert "polymarket_lag" not in tp.strategies


def test_a_market_is_carried_by_its_venues_feed() -> None:
    assert feed_of_market("binance:ETH/USDT") == "binance"
    assert feed_of_market("polymarket:987") == "polymarket"
