"""PortfolioCore properties: any approved plan stays within the risk, notional and allocation limits;
any signal stream respects the order rate and order notional limits."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.core.portfolio_decisions import Gate
from actors.domain.model import BookLevel, OrderBook
from config.models import ExitConfig
from tests.unit.core.portfolio_helpers import (
    MARKET,
    NOON,
    inst,
    loose,
    make_core,
    market_inst,
    open_position,
    plan_of,
    sig,
    sig_in,
    strat,
)


@settings(max_examples=300, deadline=None)
@given(
    equity=st.integers(min_value=50, max_value=10_000_000),
    price_ticks=st.integers(min_value=1, max_value=10_000_000),
    tick=st.sampled_from(["0.0001", "0.01", "0.5", "1"]),
    lot=st.sampled_from(["0.00001", "0.001", "0.1", "1", "5"]),
    stop_pct=st.floats(min_value=0.001, max_value=0.5),
    strength=st.floats(min_value=0.0, max_value=1.0),
    kelly=st.none() | st.floats(min_value=0.01, max_value=1.0),
    win_rate=st.floats(min_value=0.3, max_value=0.9),
    allocation=st.floats(min_value=0.0, max_value=0.9),
    committed_pct=st.just(0) | st.integers(min_value=0, max_value=100),
    with_book=st.booleans(),
)
def test_any_approved_plan_within_risk_and_notional_limits(
    equity: int,
    price_ticks: int,
    tick: str,
    lot: str,
    stop_pct: float,
    strength: float,
    kelly: float | None,
    win_rate: float,
    allocation: float,
    committed_pct: int,
    with_book: bool,
) -> None:
    exits = ExitConfig(stop_pct=stop_pct, target_one_pct=0.02, target_two_pct=0.6)
    core = make_core(
        exits=exits,
        kelly_fraction=kelly,
        kelly_win_rate=win_rate,
        strategies=[strat(allocation=allocation)],
    )
    core.on_equity(Decimal(equity))
    price = Decimal(price_ticks) * Decimal(tick)
    if committed_pct:
        room = Decimal(equity) * Decimal("0.9") * committed_pct / 100
        open_position(core, "p0", market="binance:ETH/USDT", strategy="mb", notional=str(room))
    instrument = inst(tick=tick, lot=lot)
    snapshot = None
    if with_book:
        snapshot = OrderBook(
            market=MARKET,
            ts_ms=NOON,
            bids=(BookLevel(price=price * Decimal("0.999"), size=Decimal(1000)),),
            asks=(BookLevel(price=price, size=Decimal(1000)),),
        )
    decision = core.evaluate(sig(price=float(price), strength=strength), instrument, snapshot, NOON)
    if not decision.approved:
        assert decision.rejected_by is not None
        assert core.committed("mb") == (
            Decimal(equity) * Decimal("0.9") * committed_pct / 100 if committed_pct else 0
        )
        return
    plan = plan_of(decision)
    eq = Decimal(equity)
    assert plan.notional == plan.qty * plan.limit_price
    assert plan.notional <= eq * Decimal("0.10")
    assert plan.risk_amount == plan.qty * (plan.limit_price - plan.stop_price)
    assert plan.risk_amount <= eq * Decimal("0.02")
    assert plan.qty > 0
    assert plan.qty % Decimal(lot) == 0
    assert plan.limit_price % Decimal(tick) == 0
    assert plan.stop_price < plan.limit_price
    assert core.committed("mb") <= eq * Decimal(repr(allocation))
    assert core.committed_total <= eq * Decimal("0.9")


@settings(max_examples=150, deadline=None)
@given(
    gaps=st.lists(st.integers(min_value=0, max_value=700), min_size=1, max_size=40),
    rate=st.integers(min_value=1, max_value=5),
    cap=st.none() | st.integers(min_value=100, max_value=3000),
)
def test_any_signal_stream_respects_order_rate_and_notional_limits(
    gaps: list[int], rate: int, cap: int | None
) -> None:
    core = loose(
        initial_capital=Decimal(1_000_000),
        max_position_fraction=0.001,  # 1,000 an entry: room for every signal
        max_orders_per_s=rate,
        max_order_notional=None if cap is None else Decimal(cap),
    )
    approved: list[int] = []
    t = NOON
    for n, gap in enumerate(gaps):
        t += gap
        decision = core.evaluate(sig_in(n, t), market_inst(n), None, t)
        if decision.approved:
            plan = plan_of(decision)
            approved.append(t)
            if cap is not None:
                assert plan.notional <= cap
        else:
            assert decision.rejected_by in (Gate.ORDER_RATE, Gate.ORDER_NOTIONAL)
    for end in approved:
        assert sum(1 for a in approved if end - 1000 < a <= end) <= rate
