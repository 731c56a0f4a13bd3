"""The exit plan's expected value, pinned to the Polymarket bot design's example (corrected)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from actors.core.expected_value import exit_plan_ev, format_ev
from config.models import ExitConfig

CENT = Decimal("0.01")


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT)


def test_design_example_legs_pinned_to_the_cent() -> None:
    ev = exit_plan_ev(Decimal("0.45"), Decimal(100), 0.55, ExitConfig())
    assert ev.shares.quantize(Decimal("0.1")) == Decimal("222.2")
    assert cents(ev.target_one_pnl) == Decimal("1.00")
    assert cents(ev.target_two_pnl) == Decimal("2.50")
    assert cents(ev.winner_pnl) == Decimal("3.50")
    assert cents(ev.loser_pnl) == Decimal("-3.00")


def test_design_example_ev_is_0_575_at_55_percent() -> None:
    ev = exit_plan_ev(Decimal("0.45"), Decimal(100), 0.55, ExitConfig())
    assert ev.ev_per_trade == Decimal("0.575")


def test_design_example_break_even_is_3_over_6_5() -> None:
    ev = exit_plan_ev(Decimal("0.45"), Decimal(100), 0.55, ExitConfig())
    assert ev.break_even_win_rate == pytest.approx(3 / 6.5, abs=1e-12)
    assert f"{ev.break_even_win_rate:.4f}" == "0.4615"


def test_break_even_win_rate_gives_zero_ev() -> None:
    be = exit_plan_ev(Decimal("0.45"), Decimal(100), 0.55, ExitConfig()).break_even_win_rate
    ev = exit_plan_ev(Decimal("0.45"), Decimal(100), be, ExitConfig()).ev_per_trade
    assert abs(ev) < Decimal("1e-9")


def test_54_percent_win_rate_still_positive() -> None:
    """The design claims EV turns negative at 54%; with one stake it is +$0.51 (+$0.32 with mixed legs)."""
    ev = exit_plan_ev(Decimal("0.45"), Decimal(100), 0.54, ExitConfig())
    assert cents(ev.ev_per_trade) == Decimal("0.51")
    assert ev.ev_per_trade > 0


def test_design_mixed_stake_figures_reproduced() -> None:
    """The design's +$0.90/+$2.25/+$3.15 are the legs of a $90 stake, its EV +$0.38 mixes in a $100 stop."""
    ev = exit_plan_ev(Decimal("0.45"), Decimal(90), 0.55, ExitConfig())
    assert (cents(ev.target_one_pnl), cents(ev.target_two_pnl), cents(ev.winner_pnl)) == (
        Decimal("0.90"),
        Decimal("2.25"),
        Decimal("3.15"),
    )
    mixed = Decimal("0.55") * ev.winner_pnl - Decimal("0.45") * Decimal("3.00")
    assert cents(mixed) == Decimal("0.38")
    assert Decimal("0.54") * ev.winner_pnl - Decimal("0.46") * Decimal("3.00") > 0


def test_plan_prices_follow_the_config() -> None:
    ev = exit_plan_ev(Decimal("0.45"), Decimal(100), 0.55, ExitConfig())
    assert ev.target_one_price == Decimal("0.459")
    assert ev.target_two_price == Decimal("0.4725")
    assert ev.stop_price == Decimal("0.4365")


def test_uneven_fraction_weights_the_legs() -> None:
    ev = exit_plan_ev(Decimal("0.5"), Decimal(100), 0.5, ExitConfig(target_one_fraction=0.25))
    assert ev.target_one_pnl == Decimal("0.5")
    assert ev.target_two_pnl == Decimal("3.75")


@pytest.mark.parametrize(("entry", "stake", "win_rate"), [(0, 100, 0.5), (0.45, 0, 0.5), (0.45, 100, 1.5)])
def test_invalid_inputs_raise(entry: float, stake: int, win_rate: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        exit_plan_ev(Decimal(str(entry)), Decimal(stake), win_rate, ExitConfig())


def test_format_ev_table_shows_pinned_figures() -> None:
    text = format_ev(exit_plan_ev(Decimal("0.45"), Decimal(100), 0.55, ExitConfig()))
    for expected in ("222.2 shares", "+$1.00", "+$2.50", "+$3.50", "-$3.00", "+$0.575", "46.2%"):
        assert expected in text
