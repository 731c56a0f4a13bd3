"""Which actors a config needs: decided here and nowhere else.

The supervisor spawns exactly these (besides one actor per open position), strategies
subscribe to these feeds, and positions find the feed of their market here. Feeds are one per
venue today; a feed per market changes only this module.
"""

from __future__ import annotations

from dataclasses import dataclass

from actors.domain.names import PORTFOLIO, feed_name, market_venue, strategy_name, venue_name
from config.models import Settings

FEEDS = ("binance", "polymarket")
"""The replay feeds this version has, in start-up order."""


@dataclass(frozen=True)
class Topology:
    venues: tuple[str, ...]
    feeds: tuple[str, ...]
    strategies: tuple[str, ...]

    def static_actors(self) -> list[tuple[str, str]]:
        """(name, kind) of every actor besides positions, consumers before the feeds."""
        names = [(venue_name(v), "venue") for v in self.venues]
        names.append((PORTFOLIO, "portfolio"))
        names += [(strategy_name(s), "strategy") for s in self.strategies]
        names += [(feed_name(f), "feed") for f in self.feeds]
        return names


def topology(settings: Settings) -> Topology:
    enabled = [s for s in settings.strategies if s.enabled]
    venues = sorted({market_venue(s.market) for s in enabled})
    return Topology(
        venues=tuple(venues),
        feeds=tuple(f for f in FEEDS if f in venues),
        strategies=tuple(s.name for s in enabled),
    )


def feed_of_market(market_id: str) -> str:
    """The feed that carries a market's prices and settlements (its venue's feed)."""
    return market_venue(market_id)
