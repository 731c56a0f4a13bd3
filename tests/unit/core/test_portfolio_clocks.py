"""PortfolioCore with feeds on different clocks: the default paper portfolio replays Binance candles
of 2024 beside a Polymarket day of 2026. The daily-loss book kept one UTC day for all of them, so
the Polymarket day captured it, Binance's 2024 signals could never roll it over, and a daily-loss
halt set on the Polymarket day held every Binance strategy for the rest of the run (found by
chaos running the default portfolio: no Binance entry at all after Polymarket's first bad hour)."""

from __future__ import annotations

import json
from decimal import Decimal

from actors.core.portfolio import PortfolioCore
from actors.core.portfolio_decisions import Gate
from actors.domain.model import DAY_MS, HOUR_MS, Side
from config.models import ExitConfig, MomentumBreakoutConfig
from tests.unit.core.portfolio_helpers import MARKET, NOON, inst, make_core, plan_of, sig, strat
from tests.unit.core.position_helpers import BINARY

TOKEN = BINARY.market_id
POLY_NOON = NOON + 1_000 * DAY_MS  # the Polymarket day is years after the Binance candles
UP = BINARY


STRATEGIES = [strat("mb", allocation=0.4), MomentumBreakoutConfig(name="lag", market=TOKEN, allocation=0.4)]


def two_feeds() -> PortfolioCore:
    return make_core(strategies=STRATEGIES)


def test_loss_on_the_polymarket_day_then_binance_next_day_entries_resume() -> None:
    core = two_feeds()
    core.evaluate(sig(side=Side.SELL, ts=NOON), inst(), None, NOON)  # Binance's day starts at 10,000
    plan_of(core.evaluate(sig(strategy="lag", market=TOKEN, ts=POLY_NOON, price=0.5), UP, None, POLY_NOON))
    core.on_equity(Decimal(9400), now_ms=POLY_NOON + 1)  # -6% on the Polymarket day: halted
    assert core.daily_loss_halted
    same_binance_day = core.evaluate(sig(ts=NOON + HOUR_MS), inst(), None, NOON + HOUR_MS)
    assert same_binance_day.rejected_by is Gate.DAILY_LOSS  # the loss counts on every clock's day
    next_binance_day = NOON + DAY_MS
    resumed = core.evaluate(sig(ts=next_binance_day), inst(), None, next_binance_day)
    assert resumed.approved, resumed.failed  # Binance's own next day lifts the halt for Binance
    again = POLY_NOON + HOUR_MS
    still = core.evaluate(sig(strategy="lag", market=TOKEN, ts=again, price=0.5), UP, None, again)
    assert still.rejected_by is Gate.DAILY_LOSS  # the Polymarket day is not over
    state = json.loads(json.dumps(core.state()))
    restored = PortfolioCore.from_state(core.portfolio, ExitConfig(), STRATEGIES, state)
    assert restored.state() == core.state()
    later = sig(strategy="lag", market=TOKEN, ts=again + 1, price=0.5)
    assert restored.evaluate(later, UP, None, again + 1).rejected_by is Gate.DAILY_LOSS


def test_snapshot_from_one_shared_day_still_holds_its_halt_on_every_clock() -> None:
    core = make_core()
    core.evaluate(sig(side=Side.SELL, ts=NOON), inst(), None, NOON)
    state = core.state()
    del state["days"], state["clock"]
    old = {**state, "day": NOON // DAY_MS, "day_start_equity": "10000", "halted_day": NOON // DAY_MS}
    restored = PortfolioCore.from_state(core.portfolio, ExitConfig(), [strat()], old)
    assert restored.evaluate(sig(ts=NOON + 1), inst(), None, NOON + 1).rejected_by is Gate.DAILY_LOSS
    assert restored.evaluate(sig(ts=NOON + DAY_MS), inst(), None, NOON + DAY_MS).approved


def test_one_clock_keeps_one_day_book() -> None:
    core = make_core()
    core.evaluate(sig(ts=NOON), inst(), None, NOON)
    core.on_equity(Decimal(9400), now_ms=NOON + 1)
    assert core.daily_loss_status()["halted"] is True
    assert (
        core.evaluate(sig(market=MARKET, ts=NOON + 2), inst(), None, NOON + 2).rejected_by is Gate.DAILY_LOSS
    )
