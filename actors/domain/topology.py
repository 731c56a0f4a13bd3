"""Which actors a config needs, and who consumes which market: decided here and nowhere else.

The runtime starts the store, the supervisor spawns the rest of :meth:`Topology.actors`
(besides one actor per open position), strategies catch up from these feeds, feeds route a
market's events to the strategies that watch it, and positions find the feed of their market
here.

Feeds, as the design card says, are one per market feed: each Binance market a strategy trades
or watches has its own feed actor (its id is the market id, e.g. ``binance:ETH/USDT``). A
Polymarket series is one feed (``polymarket``): its markets live for minutes and are listed
as they come, and it carries the Chainlink settlement prices its windows resolve against.
"""

from __future__ import annotations

from dataclasses import dataclass

from actors.domain.names import (
    FEED,
    PORTFOLIO,
    STORE,
    STRATEGY,
    VENUE,
    ActorName,
    market_venue,
)
from config.market_patterns import unresolved
from config.models import Feeds, Mode, Settings, StrategyBase

SERIES_VENUES = ("polymarket",)
"""Venues whose strategy ``market`` names a series of short-lived markets, not one market."""

SERIES_FEED_OF_VENUE = {"polymarket": "polymarket", "chainlink": "polymarket"}
"""Venues served by one series feed: the Polymarket day carries its own Chainlink reference."""


# ---------------------------------------------------------------------- markets and feeds


def live_data(settings: Settings) -> bool:
    """Whether feeds read the venues' live streams rather than replay files: chosen here alone.
    Orthogonal to where orders go, except that live orders always trade on live data."""
    return settings.mode is Mode.LIVE or settings.feeds is Feeds.LIVE


def data_source(settings: Settings) -> str:
    """The ``data`` mark of a trade made under ``settings``: ``live`` or ``replay``."""
    return Feeds.LIVE.value if live_data(settings) else Feeds.REPLAY.value


def feed_of_market(market_id: str) -> str:
    """The feed that carries a market's prices and settlements: its own, or its series' feed."""
    return SERIES_FEED_OF_VENUE.get(market_venue(market_id), market_id)


def venue_of_feed(feed_id: str) -> str:
    """The venue whose data a feed reads (its source: replay files or the venue's stream)."""
    return market_venue(feed_id) if ":" in feed_id else feed_id


# ---------------------------------------------------------------------- strategies and markets


def watched_markets(config: StrategyBase) -> tuple[str, ...]:
    """The market ids (or series) a strategy consumes: its markets and any reference market."""
    markets = list(config.markets)
    reference = getattr(config, "reference_market", None)
    if reference:
        markets.append(str(reference))
    return tuple(markets)


def _covers(watched: str, market: str) -> bool:
    if watched == market:
        return True
    venue = market_venue(watched)
    return venue in SERIES_VENUES and market.startswith(f"{venue}:")


def watches(config: StrategyBase, market: str) -> bool:
    """Does this strategy consume events of ``market``? A series watches every market of its venue."""
    return any(_covers(watched, market) for watched in watched_markets(config))


# ---------------------------------------------------------------------- the topology


@dataclass(frozen=True)
class Topology:
    """The actors a config needs (besides the supervisor and one per open position)."""

    venues: tuple[str, ...]
    """Venue actors: one per venue an enabled strategy trades, sorted."""
    feeds: tuple[str, ...]
    """Feed ids, one per market feed (see the module docstring), sorted."""
    strategies: tuple[str, ...]
    """Enabled strategies, in config order."""
    watching: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(strategy, the markets or series it watches), in config order."""

    @property
    def store(self) -> ActorName:
        return ActorName(STORE, STORE)

    @property
    def portfolio(self) -> ActorName:
        return ActorName(PORTFOLIO, PORTFOLIO)

    def actors(self) -> tuple[ActorName, ...]:
        """Every one of them: the store, then consumers before the feeds (a feed's first batch
        finds everyone it delivers to)."""
        return (self.store, *self.supervised())

    def supervised(self) -> tuple[ActorName, ...]:
        """The ones the supervisor spawns and keeps alive (the runtime starts the store)."""
        return (
            *(ActorName(VENUE, v) for v in self.venues),
            self.portfolio,
            *(ActorName(STRATEGY, s) for s in self.strategies),
            *(ActorName(FEED, f) for f in self.feeds),
        )

    def watches(self, strategy: str, market: str) -> bool:
        """Does ``strategy`` consume events of ``market``?"""
        markets = next((m for name, m in self.watching if name == strategy), ())
        return any(_covers(watched, market) for watched in markets)

    def strategies_watching(self, market: str) -> tuple[str, ...]:
        """The strategies that consume ``market``'s events, in config order."""
        return tuple(s for s in self.strategies if self.watches(s, market))


def topology(settings: Settings) -> Topology:
    """The actors of ``settings``, whose market patterns must be resolved (``load_settings`` does):
    a glob is no feed id, and a strategy core per glob would trade nothing."""
    enabled = [s for s in settings.strategies if s.enabled]
    patterns = unresolved(m for s in enabled for m in watched_markets(s))
    if patterns:
        raise ValueError(
            f"unresolved market patterns {patterns}: resolve them first "
            "(config.market_patterns.resolve_markets)"
        )
    venues = sorted({market_venue(m) for s in enabled for m in s.markets})
    feeds = sorted({feed_of_market(m) for s in enabled for m in watched_markets(s)})
    return Topology(
        venues=tuple(venues),
        feeds=tuple(feeds),
        strategies=tuple(s.name for s in enabled),
        watching=tuple((s.name, watched_markets(s)) for s in enabled),
    )
