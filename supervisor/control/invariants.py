"""The invariants of ARCHITECTURE.md, checked against the venue's ground truth and the store.

Tests and chaos runs call :func:`check_invariants` after the system has settled; each result
names the ids of any violation, so a failing chaos seed points at the orders involved.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from actors.core.position import PositionCore
from actors.domain.model import ZERO, ExitStatus, Fill, Instrument, Order, Side
from actors.domain.names import market_venue
from config.models import ExitConfig, Settings

RISK_TOLERANCE = Decimal("1.05")
"""Entries fill up to 1% above the sized price (price protection), with room to spare."""


@dataclass
class InvariantResult:
    number: int
    name: str
    ok: bool
    violations: list[str] = field(default_factory=list)
    checked: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "invariant": self.number,
            "name": self.name,
            "ok": self.ok,
            "checked": self.checked,
            "violations": self.violations[:50],
        }


def _core(record: dict[str, Any]) -> PositionCore:
    instrument = Instrument.model_validate(record["instrument"])
    exits = ExitConfig.model_validate(record["exits"])
    return PositionCore.from_state(record["core"], instrument, exits)


def check_invariants(
    settings: Settings,
    positions: Iterable[tuple[str, dict[str, Any]]],
    trades: Iterable[dict[str, Any]],
    venue_orders: Iterable[Order],
    venue_fills: Iterable[Fill],
    *,
    store_orders: Iterable[Order] = (),
    settled: bool = True,
    kill_switch_latched: bool = False,
) -> list[InvariantResult]:
    """All seven invariants; ``settled`` means no order may be open without a live owner.

    Invariant 5 also holds that no position is frozen unless the kill switch is latched: a
    frozen position places no exit, so a freeze that outlives its latch strands the position.
    """
    records = dict(positions)
    cores = {pid: _core(rec) for pid, rec in records.items()}
    orders = list(venue_orders)
    fills = list(venue_fills)
    trade_list = list(trades)
    return [
        _no_double_submit(orders, list(store_orders)),
        _no_orphans(orders, cores, settled),
        _fills_in_one_position(fills, cores),
        _one_position_per_market(cores),
        _exits_armed(cores, records, kill_switch_latched),
        _books_reconcile(settings, cores, fills, trade_list),
        _risk_limits(settings, cores, trade_list),
        _trade_log_complete(records, trade_list),
    ]


def exits_at_venue(
    positions: Iterable[tuple[str, dict[str, Any]]], venue_orders: Iterable[Order]
) -> InvariantResult:
    """Every open position's exit orders rest at the venue, not just as intents in the store.

    Checked while the system runs (a stop cancels them), against the venue's ground truth.
    """
    result = InvariantResult(5, "every open position has its exit orders at the venue", True)
    open_at_venue = {o.client_id for o in venue_orders if o.is_open}
    for pid, record in positions:
        if not record.get("open"):
            continue
        core = _core(record)
        if core.position.status not in (ExitStatus.OPEN, ExitStatus.HALF_CLOSED):
            continue
        result.checked += 1
        if not core.exits_armed():
            result.violations.append(f"position {pid} is not armed")
        exits = [o.client_id for o in core.open_orders() if o.purpose != "entry"]
        missing = [cid for cid in exits if cid not in open_at_venue]
        result.violations += [f"position {pid}: exit {cid} is not open at the venue" for cid in missing]
    result.ok = not result.violations
    return result


def _trade_log_complete(records: dict[str, dict[str, Any]], trades: list[dict[str, Any]]) -> InvariantResult:
    """Every closed round trip is in the trade log exactly once (and nothing else is)."""
    result = InvariantResult(8, "every closed round trip in the trade log exactly once", True)
    logged = Counter(str(t.get("position_id")) for t in trades)
    result.violations += [f"position {pid} logged {n} times" for pid, n in logged.items() if n > 1]
    for pid, record in records.items():
        close = record.get("close")
        if record.get("open") or not close or close.get("unfilled"):
            continue
        result.checked += 1
        if pid not in logged:
            result.violations.append(f"position {pid} closed but has no trade")
    result.ok = not result.violations
    return result


def _no_double_submit(orders: list[Order], store_orders: list[Order]) -> InvariantResult:
    result = InvariantResult(1, "no order submitted twice (one venue order per client id)", True)
    counts = Counter(o.client_id for o in orders)
    venue_ids = Counter((market_venue(o.market), o.venue_order_id) for o in orders if o.venue_order_id)
    result.violations += [f"client id {cid} has {n} venue orders" for cid, n in counts.items() if n > 1]
    result.violations += [f"{v} order id {vid} used {n} times" for (v, vid), n in venue_ids.items() if n > 1]
    by_client = {o.client_id: o for o in orders}
    for stored in store_orders:
        seen = by_client.get(stored.client_id)
        if seen is not None and stored.venue_order_id and seen.venue_order_id != stored.venue_order_id:
            result.violations.append(
                f"{stored.client_id}: store says {stored.venue_order_id}, venue {seen.venue_order_id}"
            )
    result.checked = len(orders)
    result.ok = not result.violations
    return result


def _no_orphans(orders: list[Order], cores: dict[str, PositionCore], settled: bool) -> InvariantResult:
    result = InvariantResult(2, "no open order stays orphaned", True)
    owned = {
        o.client_id
        for core in cores.values()
        if core.position.status is not ExitStatus.CLOSED
        for o in core.open_orders()
    }
    open_orders = [o for o in orders if o.is_open]
    if settled:
        result.violations = [
            f"{o.client_id} on {o.market} open at the venue, owned by no open position"
            for o in open_orders
            if o.client_id not in owned
        ]
    result.checked = len(open_orders)
    result.ok = not result.violations
    return result


def _fills_in_one_position(fills: list[Fill], cores: dict[str, PositionCore]) -> InvariantResult:
    result = InvariantResult(3, "every venue fill is in exactly one position; positions equal fills", True)
    owners: dict[str, list[str]] = defaultdict(list)
    for pid, core in cores.items():
        for fid in core.seen_fill_ids():
            owners[fid].append(pid)
    for fill in fills:
        holders = owners.get(fill.fill_id, [])
        if len(holders) != 1:
            result.violations.append(f"fill {fill.fill_id} ({fill.client_id}) is in {len(holders)} positions")
    venue_ids = {f.fill_id for f in fills}
    result.violations += [
        f"position {p} accounts fill {fid} the venue does not have"
        for fid, ps in owners.items()
        if fid not in venue_ids
        for p in ps
    ]
    by_client: dict[str, list[Fill]] = defaultdict(list)
    for fill in fills:
        by_client[fill.client_id].append(fill)
    for pid, core in cores.items():
        bought = sum(
            (
                f.credited_qty  # what the venue credited: a commission taken in base is not held
                for o in core.orders.values()
                if o.side is Side.BUY
                for f in by_client[o.client_id]
            ),
            ZERO,
        )
        if bought != core.position.entry_qty:
            result.violations.append(
                f"position {pid}: holds entry {core.position.entry_qty}, venue filled {bought}"
            )
    result.checked = len(fills)
    result.ok = not result.violations
    return result


def _one_position_per_market(cores: dict[str, PositionCore]) -> InvariantResult:
    result = InvariantResult(4, "at most one open position per market", True)
    per_market = Counter(
        c.position.market for c in cores.values() if c.position.status is not ExitStatus.CLOSED
    )
    result.violations = [f"{m}: {n} open positions" for m, n in per_market.items() if n > 1]
    result.checked = sum(per_market.values())
    result.ok = not result.violations
    return result


def _exits_armed(
    cores: dict[str, PositionCore], records: dict[str, dict[str, Any]], kill_switch_latched: bool
) -> InvariantResult:
    result = InvariantResult(5, "every open position has its exits armed (and is not frozen)", True)
    live = [c for c in cores.values() if c.position.status in (ExitStatus.OPEN, ExitStatus.HALF_CLOSED)]
    result.violations = [
        f"position {c.position.position_id} ({c.position.status.value}) is not armed"
        for c in live
        if not c.exits_armed()
    ]
    if not kill_switch_latched:
        result.violations += [
            f"position {pid} is frozen but the kill switch is not latched"
            for pid, rec in records.items()
            if rec.get("open") and rec.get("frozen")
        ]
    result.checked = len(live)
    result.ok = not result.violations
    return result


def _books_reconcile(
    settings: Settings, cores: dict[str, PositionCore], fills: list[Fill], trades: list[dict[str, Any]]
) -> InvariantResult:
    """Cash from the venue's fills plus marked positions equals capital plus P&L, to the cent."""
    result = InvariantResult(
        6, "cash + marked positions = capital + realised + unrealised (fees inside)", True
    )
    cash = settings.portfolio.initial_capital
    for fill in fills:
        cash += fill.cash_flow
    payouts = ZERO
    for core in cores.values():
        if core.exit_trigger is not None and core.exit_trigger.value == "settlement":
            sold_on_venue = sum(
                (f.qty * f.price for f in fills if f.side is Side.SELL and f.client_id in core.orders), ZERO
            )
            payouts += core.position.sale_proceeds - sold_on_venue
    cash += payouts
    marked = sum(
        (c.position.mark_value for c in cores.values() if c.position.status is not ExitStatus.CLOSED), ZERO
    )
    closed_pnl = sum((Decimal(str(t["pnl"])) for t in trades), ZERO)
    open_pnl = sum(
        (
            c.position.realized_pnl + c.position.unrealized_pnl
            for c in cores.values()
            if c.position.status is not ExitStatus.CLOSED
        ),
        ZERO,
    )
    expected = settings.portfolio.initial_capital + closed_pnl + open_pnl
    difference = (cash + marked - expected).quantize(Decimal("0.01"))
    if difference != 0:
        result.violations.append(f"cash {cash} + marked {marked} - expected {expected} = {difference}")
    result.checked = len(fills)
    result.ok = not result.violations
    return result


def _risk_limits(
    settings: Settings, cores: dict[str, PositionCore], trades: list[dict[str, Any]]
) -> InvariantResult:
    """No entry committed more than the notional cap of the equity it could have had then.

    Entries are sized on booked equity (open gains left out, see ``PortfolioCore.sizing_equity``),
    so equity at an entry is bounded by capital plus every gain that could have been booked
    before it. Within one venue that is every gain closed at or before the entry's time. Two
    venues' clocks do not compare (a replay of each venue's own data can be years apart), so a
    gain on another venue may have been booked first whatever its time says: it counts.
    """
    result = InvariantResult(7, "risk limits hold (notional cap per position)", True)
    cap_fraction = Decimal(str(settings.portfolio.max_position_fraction))
    gains = [
        (market_venue(str(t["market"])), int(t["exit_time_ms"]), max(ZERO, Decimal(str(t["pnl"]))))
        for t in trades
    ]
    for pid, core in cores.items():
        venue, entry_ms = market_venue(core.position.market), core.position.entry_ms
        earlier = (g for v, t, g in gains if v != venue or t <= entry_ms)
        bound = settings.portfolio.initial_capital + sum(earlier, ZERO)
        notional = core.position.entry_price * core.position.entry_qty
        if notional > cap_fraction * bound * RISK_TOLERANCE:
            result.violations.append(f"position {pid}: notional {notional} over {cap_fraction} of {bound}")
    result.checked = len(cores)
    result.ok = not result.violations
    return result
