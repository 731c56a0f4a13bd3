"""PortfolioCore: a strategy restarted from an older checkpoint replays its signals, exits too. An
exit signal older than the entry the strategy acted on since must not close that newer position
(found by chaos's strategy_replay: the entry replay was refused, the exit replay was not)."""

from __future__ import annotations

from actors.core.portfolio import PortfolioCore
from actors.core.portfolio_decisions import DecisionKind, Gate
from actors.domain.model import Side
from config.models import ExitConfig, PortfolioConfig
from tests.unit.core.portfolio_helpers import MARKET, NOON, inst, make_core, plan_of, sig, strat


def test_exit_signal_replayed_from_before_the_entry_leaves_the_newer_position_open() -> None:
    core = make_core()
    plan = plan_of(core.evaluate(sig(ts=NOON + 60_000), inst(), None, NOON + 60_000))
    core.on_position_opened(plan.position_id, "mb", MARKET, plan.notional, MARKET)
    stale = core.evaluate(sig(side=Side.SELL, ts=NOON), inst(), None, NOON + 120_000)
    assert stale.kind is DecisionKind.EXIT
    assert stale.exit_position_id is None
    assert stale.rejected_by is Gate.REPLAYED
    restored = PortfolioCore.from_state(PortfolioConfig(), ExitConfig(), [strat()], core.state())
    assert (
        restored.evaluate(sig(side=Side.SELL, ts=NOON), inst(), None, NOON + 180_000).exit_position_id is None
    )
    fresh = restored.evaluate(sig(side=Side.SELL, ts=NOON + 120_000), inst(), None, NOON + 180_000)
    assert fresh.exit_position_id == plan.position_id  # a newer exit still closes it
    assert fresh.rejected_by is None
