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
from actors.domain.topology import feed_of_market, topology, venue_of_feed, watches
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


def test_default_config_needs_store_both_venues_and_feeds_portfolio_and_four_strategies() -> None:
    tp = topology(load_settings(None, env={}))
    assert tp.venues == ("binance", "polymarket")
    assert tp.feeds == (
        *("binance:BTC/USDT", "binance:ETH/USDT", "binance:SOL/USDT", "binance:XRP/USDT"),
        "polymarket",
    )
    assert set(tp.strategies) == {"mean_reversion", "ml_momentum", "momentum_breakout", "polymarket_lag"}
    names = [(a.name, a.kind) for a in tp.actors()]
    assert names[:4] == [
        ("store", "store"),
        ("venue:binance", "venue"),
        ("venue:polymarket", "venue"),
        ("portfolio", "portfolio"),
    ]
    assert names[-5:] == [(f"feed:{f}", "feed") for f in tp.feeds]  # consumers first
    assert {n for n, kind in names if kind == "strategy"} == {f"strategy:{s}" for s in tp.strategies}
    assert len(names) == 1 + 2 + 1 + 4 + 5


def test_supervised_actors_are_all_but_the_store() -> None:
    tp = topology(load_settings(None, env={}))
    assert tp.supervised() == tp.actors()[1:]
    assert tp.store not in tp.supervised()


def test_disabled_strategy_leaves_its_venue_and_feed_out() -> None:
    settings = load_settings(None, env={}, overrides=["strategies.polymarket_lag.enabled=false"])
    tp = topology(settings)
    assert tp.venues == ("binance",)
    assert tp.feeds == ("binance:BTC/USDT", "binance:ETH/USDT", "binance:SOL/USDT", "binance:XRP/USDT")
    assert "polymarket_lag" not in tp.strategies
    assert "feed:polymarket" not in {a.name for a in tp.actors()}


def test_binance_market_has_its_own_feed_and_a_series_shares_one() -> None:
    assert feed_of_market("binance:ETH/USDT") == "binance:ETH/USDT"
    assert venue_of_feed("binance:ETH/USDT") == "binance"
    assert feed_of_market("polymarket:987") == feed_of_market("chainlink:BTC/USD") == "polymarket"
    assert venue_of_feed("polymarket") == "polymarket"


def test_strategy_over_many_markets_gets_a_feed_per_market() -> None:
    settings = load_settings(
        None,
        env={},
        overrides=[
            "strategies.polymarket_lag.enabled=false",
            "strategies.ml_momentum.enabled=false",
            "strategies.momentum_breakout.enabled=false",
            'strategies.mean_reversion.markets=["binance:ETH/USDT", "binance:SOL/USDT"]',
        ],
    )
    tp = topology(settings)
    assert tp.feeds == ("binance:ETH/USDT", "binance:SOL/USDT")
    assert tp.strategies_watching("binance:SOL/USDT") == ("mean_reversion",)
    assert feed_name(tp.feeds[0]) == "feed:binance:ETH/USDT"
    assert parse_actor_name("feed:binance:ETH/USDT") == ActorName("feed", "binance:ETH/USDT")


def test_feed_routes_a_market_to_the_strategies_watching_it() -> None:
    tp = topology(load_settings(None, env={}))
    assert tp.strategies_watching("binance:BTC/USDT") == ("mean_reversion", "ml_momentum")
    assert tp.strategies_watching("binance:SOL/USDT") == ("mean_reversion", "momentum_breakout")
    # polymarket_lag watches a series (every market of its venue) and its reference market
    assert tp.strategies_watching("polymarket:any-token-id") == ("polymarket_lag",)
    assert tp.strategies_watching("chainlink:BTC/USD") == ("polymarket_lag",)
    assert tp.strategies_watching("binance:DOGE/USDT") == ()


def test_module_watches_agrees_with_the_topology() -> None:
    settings = load_settings(None, env={})
    tp = topology(settings)
    for market in ("binance:BTC/USDT", "polymarket:1", "chainlink:BTC/USD", "binance:ETH/USDT"):
        for cfg in settings.strategies:
            assert watches(cfg, market) == tp.watches(cfg.name, market), (cfg.name, market)
