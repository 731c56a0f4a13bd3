"""Invariant 7 (the notional cap per position) bounds each entry by the equity it could have had."""

from __future__ import annotations

from typing import Any

from actors.core.position import PositionCore
from config.models import Settings
from supervisor.control.invariants import _risk_limits
from tests.unit.core.position_helpers import SPOT, T0, opened

POLYMARKET_LATER = T0 + 3 * 365 * 24 * 3_600_000
"""A Polymarket replay's clock, years after the Binance replay's, as in the default paper run."""


def trade(market: str, exit_ms: int, pnl: str) -> dict[str, Any]:
    return {"market": market, "exit_time_ms": exit_ms, "pnl": pnl}


def binance_entry(qty: str) -> dict[str, PositionCore]:
    core, _exits = opened(SPOT, qty=qty, price="100")
    return {"p1": core}


def test_entry_sized_on_a_gain_booked_on_another_venue_with_a_later_clock_holds() -> None:
    gain = trade("polymarket:tok-up", POLYMARKET_LATER, "2000")  # 12,000 booked -> cap 1,200
    result = _risk_limits(Settings(), binance_entry("11.5"), [gain])
    assert result.ok, result.violations


def test_entry_over_the_cap_of_its_venues_earlier_gains_violates() -> None:
    later_gain = trade("binance:ETH/USDT", T0 + 60_000, "2000")  # closed after the entry: not yet money
    result = _risk_limits(Settings(), binance_entry("11.5"), [later_gain])
    assert not result.ok
    assert "position p1: notional 1150" in result.violations[0]


def test_entry_within_the_cap_of_capital_holds() -> None:
    result = _risk_limits(Settings(), binance_entry("10"), [])
    assert result.ok
    assert result.checked == 1
