"""Entry sizing: the 2% risk rule, the 10% notional cap, strength, and the rooms that size down.

A pure function of the signal, the instrument, the book and a snapshot of the risk book, so the
arithmetic (every rounding down, a cap never exceeded) is tested and read in one place.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from decimal import ROUND_FLOOR, Context, Decimal, localcontext
from typing import NamedTuple

from actors.core.config_decimals import config_decimal
from actors.core.portfolio_decisions import Gate, GateResult, fmt, pct
from actors.domain.model import ONE, ZERO, Instrument, OrderBook, Side, Signal, floor_to, to_decimal
from config.models import ExitConfig, PortfolioConfig, StrategyBase


class RiskBook(NamedTuple):
    """What sizing needs of the portfolio at one signal: its config and the books' figures now."""

    portfolio: PortfolioConfig
    exits: ExitConfig
    """The exits that will run the position (the strategy's own, or the portfolio's)."""
    equity: Decimal
    risk_fraction: Decimal
    committed_total: Decimal
    cash: Decimal
    committed_by_strategy: Decimal
    """Notional the signal's strategy has committed (open positions and pending entries)."""


class Sizing(NamedTuple):
    """Sizing's verdicts (allocation, cash reserve, order notional, size) and the planned order."""

    gates: tuple[GateResult, GateResult, GateResult, GateResult]
    qty: Decimal
    entry: Decimal
    stop: Decimal
    notional_bound: bool = False
    """``max_order_notional`` is what sized the entry down."""


_NO_MAX_NOTIONAL = GateResult(gate=Gate.ORDER_NOTIONAL, passed=True, detail="no max order notional")


def floor_context() -> AbstractContextManager[Context]:
    """Every rounding in sizing goes down, so a cap computed here is never exceeded."""
    return localcontext(rounding=ROUND_FLOOR)


def on_grid(value: Decimal, step: Decimal) -> Decimal:
    """Give an already step-aligned value the step's exponent, so it prints as 100.00, not 1E+2."""
    return value.quantize(step)  # a no-op on a value that already has the step's exponent


def size_entry(
    signal: Signal,
    instrument: Instrument,
    book: OrderBook | None,
    config: StrategyBase | None,
    risk_book: RiskBook,
) -> Sizing:
    """Risk-based size, capped by notional, strength, allocation room and cash reserve; lot-aligned.

    qty = min(equity * risk / (entry - stop), equity * max_position_fraction / entry)
    * strength, then sized down to the allocation and reserve room, rounded down to a lot.
    """
    p = risk_book.portfolio
    ask = book.best_ask if book is not None else None
    entry = on_grid(
        instrument.round_price(ask if ask is not None else to_decimal(signal.price), Side.BUY),
        instrument.tick_size,
    )
    # Floored so the stop distance, and so the sized risk, is never understated. A plan
    # without a stop (unmanaged exits) can lose the whole entry: its stop is 0.
    exits = risk_book.exits
    stop_pct = config_decimal(exits.stop_pct) if exits.managed else ONE
    stop = on_grid(
        max(ZERO, floor_to(entry * (ONE - stop_pct), instrument.tick_size)),
        instrument.tick_size,
    )
    equity, risk = risk_book.equity, risk_book.risk_fraction
    strength = to_decimal(signal.strength) if p.scale_by_strength else ONE

    def skipped(why: str) -> tuple[GateResult, GateResult, GateResult]:
        return (
            GateResult(gate=Gate.ALLOCATION, passed=None, detail=why),
            GateResult(gate=Gate.CASH_RESERVE, passed=None, detail=why),
            GateResult(gate=Gate.ORDER_NOTIONAL, passed=None, detail=why),
        )

    if entry <= 0:
        why = f"price {fmt(to_decimal(signal.price))} rounds to 0 at tick {instrument.tick_size}"
        size = GateResult(gate=Gate.SIZE, passed=False, detail=why)
        return Sizing((*skipped("no entry price"), size), ZERO, entry, stop)
    if equity <= 0:
        size = GateResult(gate=Gate.SIZE, passed=False, detail=f"equity {fmt(equity)} is not positive")
        return Sizing((*skipped("no equity"), size), ZERO, entry, stop)

    with floor_context():
        risk_qty = equity * risk / (entry - stop) if risk > 0 else ZERO
        cap_qty = equity * config_decimal(p.max_position_fraction) / entry
        base = min(risk_qty, cap_qty) * strength
        reserve_room = min(
            equity * (ONE - config_decimal(p.cash_reserve)) - risk_book.committed_total, risk_book.cash
        )
        reserve_qty = max(ZERO, reserve_room) / entry
        if config is None:
            alloc_qty = None
            allocation = GateResult(gate=Gate.ALLOCATION, passed=None, detail="no strategy config")
        else:
            share = config_decimal(config.allocation)
            limit = equity * share
            committed = risk_book.committed_by_strategy
            alloc_qty = max(ZERO, limit - committed) / entry
            allocation = room_gate(
                Gate.ALLOCATION,
                f"allocation {pct(share)} = {fmt(limit)}, committed {fmt(committed)}",
                room_qty=alloc_qty,
                base=base,
                entry=entry,
                instrument=instrument,
            )
        reserve = room_gate(
            Gate.CASH_RESERVE,
            f"cash {fmt(risk_book.cash)}, committed {fmt(risk_book.committed_total)}, "
            f"reserve {pct(config_decimal(p.cash_reserve))} of equity {fmt(equity)}",
            room_qty=reserve_qty,
            base=base,
            entry=entry,
            instrument=instrument,
        )
        caps = [base, reserve_qty] if alloc_qty is None else [base, reserve_qty, alloc_qty]
        if p.max_order_notional is None:
            notional_qty = None
            order_notional = _NO_MAX_NOTIONAL
        else:
            notional_qty = p.max_order_notional / entry
            order_notional = room_gate(
                Gate.ORDER_NOTIONAL,
                f"max order notional {fmt(p.max_order_notional)}",
                room_qty=notional_qty,
                base=min(caps),
                entry=entry,
                instrument=instrument,
            )
        unbound = instrument.round_qty(min(caps))
        if notional_qty is not None:
            caps.append(notional_qty)
        qty = on_grid(instrument.round_qty(min(caps)), instrument.lot_size)
        notional_bound = qty < unbound

    binding = "risk" if risk_qty <= cap_qty else "notional cap"
    sized = (
        f"risk {pct(risk)} -> {fmt(risk_qty)}, notional cap -> {fmt(cap_qty)} ({binding} binds), "
        f"x strength {fmt(strength)} = {fmt(base)}"
    )
    if risk <= 0:
        size = GateResult(
            gate=Gate.SIZE,
            passed=False,
            detail=f"fractional Kelly {pct(risk)} <= 0: no edge at win rate {p.kelly_win_rate}",
        )
    elif qty <= 0 or qty < instrument.min_size:
        smallest = max(instrument.min_size, instrument.lot_size)
        size = GateResult(
            gate=Gate.SIZE,
            passed=False,
            detail=f"{sized}; qty {fmt(qty)} below min size {fmt(smallest)}",
        )
    else:
        size = GateResult(gate=Gate.SIZE, passed=True, detail=f"{sized}; qty {fmt(qty)} at {fmt(entry)}")
    return Sizing((allocation, reserve, order_notional, size), qty, entry, stop, notional_bound)


def room_gate(
    gate: Gate, context: str, *, room_qty: Decimal, base: Decimal, entry: Decimal, instrument: Instrument
) -> GateResult:
    """A cap that sizes down to its room, and rejects only when the room holds no tradable size."""
    fits = instrument.round_qty(room_qty)
    room = f"{context}: room {fmt(room_qty * entry)}"
    if fits <= 0 or fits < instrument.min_size:
        return GateResult(gate=gate, passed=False, detail=f"{room} fits no tradable size")
    if fits < instrument.round_qty(base):
        return GateResult(gate=gate, passed=True, detail=f"{room}: sized down to {fmt(fits)}")
    return GateResult(gate=gate, passed=True, detail=f"{room}: fits")
