"""Expected value of the exit plan per trade: what a winner, a loser and the mix are worth.

Pinned example (Polymarket bot design, default :class:`ExitConfig`): entry 0.45 and a $100
stake buy 222.2 shares; half sold at +2% makes +$1.00, the other half at +5% makes +$2.50,
so a winner (both targets) makes +$3.50 and a loser (the stop on the whole position)
loses $3.00. At a 55% win rate the EV is 0.55*3.50 - 0.45*3.00 = +$0.575 per trade, and
the break-even win rate is 3/(3+3.5) = 46.2%.

The design document's own figures (+$0.90, +$2.25, +$3.15, EV +$0.38, "negative at 54%")
do not add up: they take the target legs from a $90 stake and the stop from a $100 one, and
even with those legs 54% is still positive (0.54*3.15 - 0.46*3.00 = +$0.32). This module
uses one stake throughout. Fees and slippage are left out, as in the design's example.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from pydantic import Field

from actors.domain.model import ONE, Frozen, to_decimal
from config.models import ExitConfig


class ExitPlanEV(Frozen):
    """Per-leg and per-trade P&L of the exit plan at one entry price, stake and win rate."""

    entry: Decimal = Field(gt=0)
    stake: Decimal = Field(gt=0)
    shares: Decimal = Field(description="stake / entry, unrounded: the plan, not a venue order")
    win_rate: float = Field(ge=0.0, le=1.0)
    target_one_fraction: Decimal
    target_one_price: Decimal
    target_two_price: Decimal
    stop_price: Decimal
    target_one_pnl: Decimal = Field(description="the first leg sold at target one")
    target_two_pnl: Decimal = Field(description="the rest sold at target two")
    winner_pnl: Decimal = Field(description="both targets hit")
    loser_pnl: Decimal = Field(description="stop hit on the whole position (negative)")
    ev_per_trade: Decimal
    break_even_win_rate: float = Field(description="win rate at which the EV is zero")


def exit_plan_ev(entry: Decimal, stake: Decimal, win_rate: float, config: ExitConfig) -> ExitPlanEV:
    """EV of one trade that either hits both targets or the stop; exact Decimal arithmetic.

    Leg P&L is computed as ``stake * share_of_position * pct`` (identical to
    ``shares * entry * ...`` but without the inexact ``stake / entry`` division).
    """
    if entry <= 0 or stake <= 0:
        raise ValueError(f"entry and stake must be positive, got {entry} and {stake}")
    if not 0.0 <= win_rate <= 1.0:
        raise ValueError(f"win_rate must be within [0, 1], got {win_rate}")
    fraction = to_decimal(config.target_one_fraction)
    pct_one, pct_two = to_decimal(config.target_one_pct), to_decimal(config.target_two_pct)
    stop = to_decimal(config.stop_pct)
    leg_one = stake * fraction * pct_one
    leg_two = stake * (ONE - fraction) * pct_two
    winner = leg_one + leg_two
    loser = -stake * stop
    p = to_decimal(win_rate)
    ev = p * winner + (ONE - p) * loser
    break_even = float(-loser / (winner - loser))
    return ExitPlanEV(
        entry=entry,
        stake=stake,
        shares=stake / entry,
        win_rate=win_rate,
        target_one_fraction=fraction,
        target_one_price=entry * (ONE + pct_one),
        target_two_price=entry * (ONE + pct_two),
        stop_price=entry * (ONE - stop),
        target_one_pnl=leg_one,
        target_two_pnl=leg_two,
        winner_pnl=winner,
        loser_pnl=loser,
        ev_per_trade=ev,
        break_even_win_rate=break_even,
    )


def _money(value: Decimal) -> str:
    """Signed dollars to the cent, or to a tenth of a cent when the cents would hide it (+$0.575)."""
    places = Decimal("0.01") if value == value.quantize(Decimal("0.01")) else Decimal("0.001")
    amount = value.quantize(places, rounding=ROUND_HALF_UP)
    sign = "-" if amount < 0 else "+"
    return f"{sign}${abs(amount):,}"


def _price(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.0001'), rounding=ROUND_HALF_UP).normalize():f}"


def format_ev(ev: ExitPlanEV) -> str:
    """A small fixed-width table for the CLI."""
    one = ev.target_one_fraction
    rows = [
        (f"target one ({one:.0%})", _price(ev.target_one_price), _money(ev.target_one_pnl)),
        (f"target two ({ONE - one:.0%})", _price(ev.target_two_price), _money(ev.target_two_pnl)),
        ("winner (both targets)", "", _money(ev.winner_pnl)),
        ("loser (stop, all)", _price(ev.stop_price), _money(ev.loser_pnl)),
        (f"EV per trade at {ev.win_rate:.1%}", "", _money(ev.ev_per_trade)),
        ("break-even win rate", "", f"{ev.break_even_win_rate:.1%}"),
    ]
    shares = ev.shares.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    header = f"Exit plan: entry {_price(ev.entry)}, stake {_money(ev.stake)[1:]} ({shares} shares)"
    width = max(len(r[0]) for r in rows)
    lines = [header, f"{'leg':<{width}}  {'price':>8}  {'P&L':>10}"]
    lines += [f"{name:<{width}}  {price:>8}  {pnl:>10}" for name, price, pnl in rows]
    return "\n".join(lines)
