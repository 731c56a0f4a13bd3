"""PortfolioCore sizing arithmetic pinned: notional and risk caps, lots and ticks, strength, Kelly."""

from __future__ import annotations

from decimal import Decimal

from actors.core.portfolio import PortfolioCore
from actors.core.portfolio_decisions import Gate
from actors.core.sizing import floor_context, on_grid
from config.models import ExitConfig
from tests.unit.core.portfolio_helpers import NOON, book, inst, make_core, open_position, plan_of, sig, strat


def test_default_sizing_notional_cap_binds_ten_units() -> None:
    decision = make_core().evaluate(sig(), inst(), None, NOON)
    plan = plan_of(decision)
    # risk 2% of 10,000 = 200 over 100 - 97 = 3 -> 66.66 units; 10% notional cap = 1,000 / 100 = 10.
    assert plan.qty == Decimal(10)
    assert plan.limit_price == Decimal(100)
    assert plan.stop_price == Decimal(97)
    assert plan.notional == Decimal(1000)
    assert plan.risk_amount == Decimal(30)
    assert "notional cap binds" in decision.gate(Gate.SIZE).detail


def test_loose_caps_risk_rule_binds_lot_rounded() -> None:
    core = make_core(max_position_fraction=1.0, cash_reserve=0.0, strategies=[strat(allocation=1.0)])
    plan = plan_of(core.evaluate(sig(), inst(lot="0.01"), None, NOON))
    assert plan.qty == Decimal("66.66")
    assert plan.risk_amount == Decimal("199.98")
    assert plan.notional == Decimal("6666")


def test_loose_caps_whole_lot_rounds_down_to_66() -> None:
    core = make_core(max_position_fraction=1.0, cash_reserve=0.0, strategies=[strat(allocation=1.0)])
    plan = plan_of(core.evaluate(sig(), inst(lot="1"), None, NOON))
    assert plan.qty == Decimal(66)
    assert plan.risk_amount == Decimal(198)


def test_half_strength_halves_size() -> None:
    plan = plan_of(make_core().evaluate(sig(strength=0.5), inst(), None, NOON))
    assert plan.qty == Decimal(5)
    assert plan.strength == 0.5


def test_scale_by_strength_off_full_size() -> None:
    plan = plan_of(make_core(scale_by_strength=False).evaluate(sig(strength=0.5), inst(), None, NOON))
    assert plan.qty == Decimal(10)


def test_odd_lot_size_rounds_qty_down_to_lot_multiple() -> None:
    plan = plan_of(make_core().evaluate(sig(), inst(lot="0.3"), None, NOON))
    assert plan.qty == Decimal("9.9")  # 10 / 0.3 = 33.3 lots -> 33 lots
    assert plan.qty % Decimal("0.3") == 0


def test_off_tick_signal_price_rounds_limit_down() -> None:
    plan = plan_of(make_core().evaluate(sig(price=100.037), inst(tick="0.05"), None, NOON))
    assert plan.limit_price == Decimal("100.00")
    assert plan.stop_price == Decimal("97.00")


def test_stop_off_tick_floored_so_risk_not_understated() -> None:
    core = make_core()
    plan = plan_of(core.evaluate(sig(price=0.55), inst(tick="0.01", lot="1"), None, NOON))
    assert plan.stop_price == Decimal("0.53")  # 0.55 * 0.97 = 0.5335
    assert plan.qty == Decimal(1818)  # notional cap 1,000 / 0.55 = 1818.18
    assert plan.risk_amount == Decimal(1818) * Decimal("0.02")


def test_book_present_limit_is_best_ask() -> None:
    plan = plan_of(make_core().evaluate(sig(price=99.0), inst(), book(ask="100.5", bid="100.4"), NOON))
    assert plan.limit_price == Decimal("100.5")
    assert plan.qty == Decimal(9)  # 1,000 / 100.5 = 9.95


def test_equity_after_profit_sizes_larger() -> None:
    core = make_core()
    open_position(core, "p0", market="binance:ETH/USDT", strategy="mb", notional="500")
    core.on_position_closed("p0", Decimal(1000))
    assert core.equity == Decimal(11000)
    plan = plan_of(core.evaluate(sig(), inst(), None, NOON))
    assert plan.qty == Decimal(11)


def test_below_min_size_rejected_by_size() -> None:
    decision = make_core().evaluate(sig(), inst(min_size="11"), None, NOON)
    assert not decision.approved
    assert decision.rejected_by is Gate.SIZE
    assert "below min size 11" in decision.gate(Gate.SIZE).detail


def test_zero_strength_rejected_by_size() -> None:
    decision = make_core().evaluate(sig(strength=0.0), inst(), None, NOON)
    assert decision.rejected_by is Gate.SIZE


def test_price_below_tick_rejected_by_size() -> None:
    decision = make_core().evaluate(sig(price=0.004), inst(tick="0.01"), None, NOON)
    assert decision.rejected_by is Gate.SIZE
    assert "rounds to 0" in decision.gate(Gate.SIZE).detail


def test_non_positive_equity_rejected_by_size() -> None:
    core = make_core()
    core.on_equity(Decimal(0))
    decision = core.evaluate(sig(), inst(), None, NOON)
    assert decision.rejected_by is Gate.SIZE
    assert "not positive" in decision.gate(Gate.SIZE).detail


def test_open_gains_of_other_positions_do_not_grow_entry_size() -> None:
    core = make_core()
    open_position(core, "p1", market="binance:ETH/USDT", notional="1000")
    core.on_equity(Decimal(13000))  # +3,000 unrealised: sized on 10,000 booked, not 13,000 marked
    plan = plan_of(core.evaluate(sig(), inst(), None, NOON))
    assert plan.notional == Decimal(1000)
    assert core.sizing_equity == Decimal(10000)


def test_open_losses_of_other_positions_shrink_entry_size() -> None:
    core = make_core()
    open_position(core, "p1", market="binance:ETH/USDT", notional="1000")
    core.on_equity(Decimal(9000))  # -1,000 unrealised: 10% of 9,000 = 900 -> 9 units at 100
    plan = plan_of(core.evaluate(sig(), inst(), None, NOON))
    assert plan.qty == Decimal(9)


def test_realised_gains_grow_entry_size() -> None:
    core = make_core()
    open_position(core, "p1", market="binance:ETH/USDT", notional="1000")
    core.on_position_closed("p1", Decimal(2000))  # booked: capital 12,000 -> 10% = 1,200 -> 12 units
    plan = plan_of(core.evaluate(sig(), inst(), None, NOON))
    assert plan.qty == Decimal(12)


# --------------------------------------------------------------------------- Kelly


def kelly_exits() -> ExitConfig:
    """Payoff ratio b = 6% / 3% = 2 (both targets at 6%)."""
    return ExitConfig(target_one_pct=0.06, target_two_pct=0.06, stop_pct=0.03)


def kelly_core(kelly_fraction: float, win_rate: float) -> PortfolioCore:
    return make_core(
        exits=kelly_exits(),
        kelly_fraction=kelly_fraction,
        kelly_win_rate=win_rate,
        max_position_fraction=1.0,
        cash_reserve=0.0,
        strategies=[strat(allocation=1.0)],
    )


def test_kelly_tighter_than_two_percent_kelly_binds() -> None:
    core = kelly_core(0.04, 0.5)  # f* = (2 * 0.5 - 0.5) / 2 = 0.25; x 0.04 = 1%
    assert core.kelly_risk_fraction() == Decimal("0.01")
    assert core.risk_fraction == Decimal("0.01")
    plan = plan_of(core.evaluate(sig(), inst(), None, NOON))
    assert plan.qty == Decimal(33)  # 100 / 3 = 33.3
    assert plan.risk_amount == Decimal(99)


def test_kelly_looser_than_two_percent_rule_binds() -> None:
    core = kelly_core(0.5, 0.5)  # 0.125 > 0.02
    assert core.risk_fraction == Decimal("0.02")
    assert plan_of(core.evaluate(sig(), inst(), None, NOON)).qty == Decimal(66)


def test_kelly_negative_edge_rejected_by_size() -> None:
    core = kelly_core(0.5, 0.3)  # f* = (0.6 - 0.7) / 2 < 0
    decision = core.evaluate(sig(), inst(), None, NOON)
    assert decision.rejected_by is Gate.SIZE
    assert "no edge" in decision.gate(Gate.SIZE).detail


def test_kelly_default_exit_plan_blends_targets() -> None:
    core = make_core(kelly_fraction=1.0)  # b = (0.5*2% + 0.5*5%) / 3% = 7/6, p = 0.55 -> f* = 23/140
    kelly = core.kelly_risk_fraction()
    assert kelly is not None
    assert abs(kelly - Decimal(23) / Decimal(140)) < Decimal("1e-20")


def test_kelly_off_returns_none() -> None:
    assert make_core().kelly_risk_fraction() is None


def test_on_grid_gives_the_steps_exponent_and_leaves_an_aligned_value_as_it_is() -> None:
    assert str(on_grid(Decimal("1E+2"), Decimal("0.01"))) == "100.00"
    assert str(on_grid(Decimal("65432.1"), Decimal("0.01"))) == "65432.10"
    assert str(on_grid(Decimal("0.00120"), Decimal("0.00001"))) == "0.00120"
    assert str(on_grid(Decimal("0"), Decimal("0.001"))) == "0.000"
    with floor_context():
        assert str(on_grid(Decimal("12.34"), Decimal("0.01"))) == "12.34"


def test_repeated_rejections_report_equal_verdicts_gate_for_gate() -> None:
    core = make_core()
    first = core.evaluate(sig(ts=NOON), inst(), None, NOON)
    assert first.approved
    again = [core.evaluate(sig(ts=NOON + k * 60_000), inst(), None, NOON + k * 60_000) for k in (1, 2)]
    assert again[0].rejected_by is Gate.ONE_PER_MARKET
    assert [g.gate for g in again[0].gates] == [g.gate for g in first.gates]
    for a, b in zip(again[0].gates, again[1].gates, strict=True):
        if a.gate not in (Gate.DAILY_LOSS, Gate.ALLOCATION, Gate.CASH_RESERVE, Gate.SIZE):
            assert a == b
