"""The market a trade counts in: a Polymarket window's Up/Down pair (one condition) is one market.

The portfolio's gates already treat the two outcome tokens of one condition as one market
(``Instrument.condition_id``); reports count trades the same way, through this one mapping:
a token's market id maps to ``<venue>:<condition id>``, every other market id to itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from actors.domain.model import Instrument


def conditions_of(instruments: Iterable[Instrument]) -> dict[str, str]:
    """Outcome token market id -> its window's market id (``polymarket:<condition id>``)."""
    return {i.market_id: f"{i.venue}:{i.condition_id}" for i in instruments if i.condition_id}


def gate_market(market: str, conditions: Mapping[str, str]) -> str:
    """The market ``market`` counts in for the gates and the reports (see the module docstring)."""
    return conditions.get(market, market)


def count_by_market(markets: Iterable[str], conditions: Mapping[str, str]) -> dict[str, int]:
    """How many of ``markets`` (one entry per trade) fall in each gate market, sorted by market."""
    counts: dict[str, int] = {}
    for market in markets:
        key = gate_market(market, conditions)
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


__all__ = ["conditions_of", "count_by_market", "gate_market"]
