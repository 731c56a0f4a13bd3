"""Every actor name and market id, built and parsed in one place.

Actor names are Ray actor names and keys in the store and the supervisor's records, so their
format (``<kind>:<key>``, or a bare kind for the singletons) is stable across versions.
"""

from __future__ import annotations

from dataclasses import dataclass

STORE = "store"
SUPERVISOR = "supervisor"
PORTFOLIO = "portfolio"
SINGLETONS = (STORE, SUPERVISOR, PORTFOLIO)
"""The actors there is one of: each one's name is its kind."""

VENUE = "venue"
FEED = "feed"
STRATEGY = "strategy"
POSITION = "position"
POOL = "pool"
"""The kinds with one actor per key: ``venue:<venue>``, ``feed:<feed id>``, ``strategy:<name>``,
``position:<position id>``, ``pool:<n>`` (a pre-started position actor, see :func:`pool_name`)."""


@dataclass(frozen=True)
class ActorName:
    """A parsed actor name: ``kind`` (venue, feed, strategy, position, or a singleton) and ``key``."""

    kind: str
    key: str

    def __str__(self) -> str:
        return self.kind if self.kind in SINGLETONS else f"{self.kind}:{self.key}"

    @property
    def name(self) -> str:
        """The Ray actor name (and the supervisor's key): ``<kind>:<key>``, or the bare kind."""
        return str(self)


def venue_name(venue: str) -> str:
    return str(ActorName(VENUE, venue))


def feed_name(feed_id: str) -> str:
    return str(ActorName(FEED, feed_id))


def strategy_name(name: str) -> str:
    return str(ActorName(STRATEGY, name))


def position_name(position_id: str) -> str:
    return str(ActorName(POSITION, position_id))


def pool_name(number: int) -> str:
    """The Ray name of the portfolio's ``number``-th pre-started position actor. Never reused: once
    assigned, ``pool:<n>`` runs one position for life and is found under ``position:<id>``
    through the alias it registers (actors.shells.base.try_actor)."""
    return str(ActorName(POOL, str(number)))


def parse_actor_name(name: str) -> ActorName:
    """Inverse of the builders above; a singleton's key is its kind."""
    if name in SINGLETONS:
        return ActorName(name, name)
    kind, sep, key = name.partition(":")
    if not sep or not key:
        raise ValueError(f"not an actor name: {name!r}")
    return ActorName(kind, key)


def actor_key(name: str) -> str:
    """The key of an actor name: the venue, feed id, strategy name or position id."""
    return parse_actor_name(name).key


def market_venue(market_id: str) -> str:
    """``binance:BTC/USDT`` -> ``binance``; ``polymarket:<token>`` -> ``polymarket``."""
    return market_id.split(":", 1)[0]


def market_symbol(market_id: str) -> str:
    """``binance:BTC/USDT`` -> ``BTC/USDT``; ``polymarket:<token>`` -> the token id."""
    return market_id.split(":", 1)[1]
