"""Shared by the PortfolioCore tests: a core, instruments, signals, books, an approved plan."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from actors.core.portfolio import PortfolioCore
from actors.core.portfolio_decisions import EntryPlan
from actors.domain.model import DAY_MS, HOUR_MS, BookLevel, Instrument, OrderBook, Side, Signal
from config.models import ExitConfig, MomentumBreakoutConfig, PortfolioConfig

MARKET = "binance:BTC/USDT"
DAY0 = 19_675 * DAY_MS  # a midnight UTC
NOON = DAY0 + 12 * HOUR_MS


def strat(name: str = "mb", **kw: Any) -> MomentumBreakoutConfig:
    return MomentumBreakoutConfig(name=name, market=MARKET, **kw)


def make_core(
    *, strategies: list[Any] | None = None, exits: ExitConfig | None = None, **portfolio: Any
) -> PortfolioCore:
    return PortfolioCore(
        PortfolioConfig(**portfolio),
        exits or ExitConfig(),
        strategies if strategies is not None else [strat()],
    )


def inst(
    symbol: str = "BTC/USDT",
    *,
    tick: str = "0.01",
    lot: str = "1",
    min_size: str = "0",
    created_ms: int | None = None,
    group: str = "",
) -> Instrument:
    return Instrument(
        venue="binance",
        symbol=symbol,
        tick_size=Decimal(tick),
        lot_size=Decimal(lot),
        min_size=Decimal(min_size),
        created_ms=created_ms,
        correlation_group=group,
    )


def sig(
    *,
    market: str = MARKET,
    strategy: str = "mb",
    side: Side = Side.BUY,
    strength: float = 1.0,
    ts: int = NOON,
    price: float = 100.0,
) -> Signal:
    return Signal(strategy=strategy, market=market, side=side, strength=strength, ts_ms=ts, price=price)


def book(
    bid: str = "99.9", ask: str = "100", size: str = "100", levels: int = 5, market: str = MARKET
) -> OrderBook:
    """Levels one tick apart each side; ``levels`` of ``size`` on both sides."""
    step = Decimal("0.1")
    return OrderBook(
        market=market,
        ts_ms=NOON,
        bids=tuple(BookLevel(price=Decimal(bid) - i * step, size=Decimal(size)) for i in range(levels)),
        asks=tuple(BookLevel(price=Decimal(ask) + i * step, size=Decimal(size)) for i in range(levels)),
    )


def plan_of(decision: Any) -> EntryPlan:
    assert decision.approved, decision.failed
    assert decision.plan is not None
    plan: EntryPlan = decision.plan
    return plan


def open_position(
    core: PortfolioCore,
    pid: str,
    *,
    market: str,
    strategy: str = "other",
    notional: str = "100",
    group: str = "",
) -> None:
    core.on_position_opened(pid, strategy, market, Decimal(notional), group)


def loose(**kw: Any) -> PortfolioCore:
    """A core whose allocation, reserve and concurrency leave room for many 1,000-notional entries."""
    return make_core(strategies=[strat(allocation=0.9)], cash_reserve=0.0, max_concurrent_positions=50, **kw)


def market_inst(n: int) -> Instrument:
    return inst(f"C{n}/USDT")


def sig_in(n: int, ts: int, side: Side = Side.BUY) -> Signal:
    return sig(market=f"binance:C{n}/USDT", ts=ts, side=side)
