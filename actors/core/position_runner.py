"""Glue every position shell shares, in-process or in a Ray actor: venue updates into the core,
and a closed core into a round-trip record. One place, so backtest, paper and live agree."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from actors.core.position import PositionCore
from actors.domain.messages import OrderUpdate, UpdateKind
from actors.domain.model import ZERO, Command, ExitReason, Instrument, PositionClosed, RoundTrip, Side
from config.models import ExitConfig

if TYPE_CHECKING:  # a type only: a position actor's worker need not import the portfolio's decisions
    from actors.core.portfolio_decisions import EntryPlan

ENTRY_SLIPPAGE_ALLOWANCE = Decimal("0.01")
"""With no book to price against (a candle market), an entry is a marketable limit this far above
the reference: it fills at the next open unless the market gaps beyond it (price protection
instead of a blind market order)."""


def open_position(
    plan: EntryPlan, instrument: Instrument, exits: ExitConfig, *, has_book: bool, now_ms: int
) -> tuple[PositionCore, list[Command]]:
    """A new position core from an approved plan, and its entry order command."""
    limit = plan.limit_price
    if not has_book:
        limit = instrument.round_price(limit * (1 + ENTRY_SLIPPAGE_ALLOWANCE), Side.BUY)
    return PositionCore.enter(
        position_id=plan.position_id,
        strategy=plan.strategy,
        instrument=instrument,
        qty=plan.qty,
        limit_price=limit,
        signal_strength=plan.strength,
        now_ms=now_ms,
        config=exits,
    )


def apply_update(core: PositionCore, update: OrderUpdate) -> list[Command]:
    """Feed one venue update to the core: the fill first (if any), then the order's new status."""
    if update.kind is UpdateKind.UNCHANGED:
        return []
    cmds: list[Command] = []
    if update.fill is not None:
        cmds += core.on_fill(update.fill)
    order = update.order
    cmds += core.on_order_update(
        order.client_id, order.status, order.filled_qty, update.ts_ms, venue_order_id=order.venue_order_id
    )
    return cmds


def trade_record(trip: RoundTrip) -> dict[str, object]:
    """A round trip as the store's trade log keeps it (``ts_ms`` = close time)."""
    return {**trip.model_dump(mode="json"), "ts_ms": trip.exit_time_ms}


def round_trip(core: PositionCore, closed: PositionClosed, *, data: str = "replay") -> RoundTrip | None:
    """The trade-log record of a closed position; ``None`` for an entry that bought nothing.
    ``data`` says whether its prices came from a replay or the live feeds."""
    pos = core.position
    if closed.exit_reason is ExitReason.UNFILLED or pos.entry_qty <= 0:
        return None
    sold = pos.sold_qty if pos.sold_qty > 0 else pos.entry_qty
    exit_price = pos.sale_proceeds / sold if pos.sold_qty > 0 else ZERO
    return RoundTrip(
        position_id=pos.position_id,
        strategy=pos.strategy,
        market=pos.market,
        side=Side.BUY,
        qty=pos.entry_qty,
        entry_time_ms=pos.entry_ms,
        exit_time_ms=closed.ts_ms,
        entry_price=pos.entry_price,
        exit_price=exit_price.quantize(Decimal("1e-10")) if exit_price else ZERO,
        exit_reason=closed.exit_reason,
        fees=closed.fees,
        pnl=closed.realized_pnl,
        data=data,
    )
