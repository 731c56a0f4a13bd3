"""Event-bar stepping: skipping held bars where no exit can trigger gives exactly the every-bar trades."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from actors.data.candles import CandleTable
from actors.domain.model import ExitReason
from config.loader import load_settings
from config.models import Settings
from supervisor.research.backtest_setup import instrument_for, load_candles, prepare, revalidated
from supervisor.research.fast_backtest import Bars, FastDriver, signal_pass
from tests.paths import REPO_ROOT

DATA = REPO_ROOT / "ops/data/binance/BTCUSDT-1m-2024-03-01_2024-03-22.csv"
TRAILING = {
    "trailing_activate_pct": 0.004,
    "trailing_lock_pct": 0.001,
    "trailing_distance_pct": 0.002,
    "target_one_pct": 0.02,
    "target_two_pct": 0.05,
    "time_exit_s": 1800,
}
"""Trailing turns on at +0.4% and trails 0.2% behind the high: most exits are trailing stops."""


@pytest.fixture(scope="module")
def table() -> CandleTable:
    return load_candles(DATA)


def managed(**exits: Any) -> Settings:
    settings, _ = prepare(load_settings(env={}), ["mean_reversion"], "managed")
    if not exits:
        return settings
    strategies = [
        s if s.exits is None else s.model_copy(update={"exits": s.exits.model_copy(update=exits)})
        for s in settings.strategies
    ]
    top = settings.exits.model_copy(update=exits)
    return revalidated(settings.model_copy(update={"exits": top, "strategies": strategies}))


def run(settings: Settings, table: CandleTable, event_bars: bool) -> FastDriver:
    market = settings.strategies[0].market
    bars = Bars.from_table(table, market)
    signals = signal_pass(settings.strategies, bars)
    driver = FastDriver(settings, [instrument_for(market)], bars, signals, event_bars=event_bars)
    driver.run_bars(0)
    return driver


def assert_same_book(every: FastDriver, events: FastDriver) -> None:
    assert events.trips == every.trips
    assert events.curve == every.curve
    assert (events.cash, events.fees_paid, events.counters) == (every.cash, every.fees_paid, every.counters)
    assert events.steps.processed < every.steps.processed / 4  # the skip did happen


def test_default_exits_event_bars_give_the_every_bar_trades_and_curve(table: CandleTable) -> None:
    settings = managed()
    every, events = run(settings, table, False), run(settings, table, True)
    assert_same_book(every, events)
    reasons = Counter(t.exit_reason for t in every.trips)
    assert len(every.trips) > 50
    assert reasons[ExitReason.TIME_EXIT] > 0
    assert reasons[ExitReason.STOP] > 0


def test_trailing_heavy_exits_event_bars_give_the_every_bar_trades_and_curve(table: CandleTable) -> None:
    settings = managed(**TRAILING)
    every, events = run(settings, table, False), run(settings, table, True)
    assert_same_book(every, events)
    reasons = Counter(t.exit_reason for t in every.trips)
    assert reasons[ExitReason.TRAILING] > 20
    assert reasons[ExitReason.TIME_EXIT] > 0
