"""Shared by the PositionCore tests: instruments, an entered or opened core, command filters, fills."""

from __future__ import annotations

import itertools
from decimal import Decimal

from actors.core.position import PositionCore
from actors.domain.model import (
    CancelOrder,
    Command,
    ExitStatus,
    Fill,
    Instrument,
    MarketKind,
    PlaceOrder,
    PositionClosed,
)
from config.models import ExitConfig

D = Decimal
CFG = ExitConfig()
BINARY = Instrument(
    venue="polymarket",
    symbol="tok-up",
    kind=MarketKind.BINARY,
    tick_size=D("0.01"),
    lot_size=D("1"),
    min_size=D("5"),
)
SPOT = Instrument(venue="binance", symbol="BTC/USDT", tick_size=D("0.01"), lot_size=D("0.001"))
T0 = 1_700_000_000_000
_fill_ids = itertools.count()


def places(cmds: list[Command]) -> list[PlaceOrder]:
    return [c for c in cmds if isinstance(c, PlaceOrder)]


def cancels(cmds: list[Command]) -> list[CancelOrder]:
    return [c for c in cmds if isinstance(c, CancelOrder)]


def closed(cmds: list[Command]) -> list[PositionClosed]:
    return [c for c in cmds if isinstance(c, PositionClosed)]


def fill(
    core: PositionCore, client_id: str, price: str, qty: str, fee: str = "0", ts: int = T0, fid: str = ""
) -> Fill:
    order = core.orders[client_id]
    return Fill(
        fill_id=fid or f"fill-{next(_fill_ids)}",
        client_id=client_id,
        market=order.market,
        side=order.side,
        price=D(price),
        qty=D(qty),
        fee=D(fee),
        ts_ms=ts,
    )


def enter(
    instrument: Instrument = BINARY, qty: str = "200", price: str = "0.45", config: ExitConfig = CFG
) -> tuple[PositionCore, str]:
    core, cmds = PositionCore.enter(
        position_id="p1",
        strategy="lag",
        instrument=instrument,
        qty=D(qty),
        limit_price=D(price),
        signal_strength=0.8,
        now_ms=T0,
        config=config,
    )
    return core, places(cmds)[0].order.client_id


def opened(
    instrument: Instrument = BINARY, qty: str = "200", price: str = "0.45", config: ExitConfig = CFG
) -> tuple[PositionCore, list[PlaceOrder]]:
    core, entry_id = enter(instrument, qty, price, config)
    cmds = core.on_fill(fill(core, entry_id, price, qty, fee="0.09"))
    return core, places(cmds)


def status(core: PositionCore) -> ExitStatus:
    """The status, read through a call so mypy does not narrow it between events."""
    return core.position.status


def target_ids(core: PositionCore) -> tuple[str, str]:
    ids = {o.purpose: o.client_id for o in core.orders.values()}
    return ids["target_one"], ids["target_two"]
