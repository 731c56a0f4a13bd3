"""What the portfolio decides: gate names and verdicts, entry plans, and the risk book's holdings.

Kept apart from :mod:`actors.core.portfolio` (the rules) so the shells, the backtest driver and
the position runner can speak these types without importing the rules that produce them.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from pydantic import Field

from actors.domain.model import Frozen, Signal


class Gate(StrEnum):
    """Gate names, in evaluation order: the first failing one is ``Decision.rejected_by``."""

    STRATEGY = "strategy"
    REPLAYED = "replayed"
    DAILY_LOSS = "daily_loss"
    ONE_PER_MARKET = "one_per_market"
    MAX_CONCURRENT = "max_concurrent"
    CORRELATION = "correlation"
    OPEN_ORDERS = "open_orders"
    ORDER_RATE = "order_rate"
    MARKET_AGE = "market_age"
    PEAK_HOURS = "peak_hours"
    LIQUIDITY = "liquidity"
    ALLOCATION = "allocation"
    CASH_RESERVE = "cash_reserve"
    ORDER_NOTIONAL = "order_notional"
    SIZE = "size"


PRE_TRADE_LIMITS = frozenset({Gate.DAILY_LOSS, Gate.OPEN_ORDERS, Gate.ORDER_RATE, Gate.ORDER_NOTIONAL})
"""The gates that are pre-trade limits (``PortfolioConfig.max_*``); see the module docstring."""


class DecisionKind(StrEnum):
    ENTRY = "entry"
    EXIT = "exit"


class GateResult(Frozen):
    """One gate's verdict; ``passed=None`` = skipped for missing data (e.g. no book in a candle backtest)."""

    gate: Gate
    passed: bool | None
    detail: str


class EntryPlan(Frozen):
    """What the shell should place: a lot-aligned BUY limit, sized against ``stop_price``."""

    position_id: str = Field(description="deterministic from strategy, market and signal ts")
    strategy: str
    market: str
    correlation_group: str = Field(description="the group the position counts in (market id if none)")
    qty: Decimal = Field(gt=0, description="multiple of the instrument's lot size")
    limit_price: Decimal = Field(gt=0, description="tick-aligned (down) best ask, or signal price")
    stop_price: Decimal = Field(ge=0, description="the stop the size was computed against")
    notional: Decimal = Field(gt=0, description="qty * limit_price")
    risk_amount: Decimal = Field(ge=0, description="qty * (limit_price - stop_price): lost at the stop")
    strength: float = Field(ge=0.0, le=1.0)
    signal_ts_ms: int
    decided_ms: int


class Decision(Frozen):
    """The portfolio's answer to one signal: every gate's result, and a plan if approved.

    ``approved`` is about entries only; an exit decision is never approved, and is refused
    (``rejected_by`` ``replayed``, naming no position) only when it predates the strategy's entry.
    """

    signal: Signal
    kind: DecisionKind = DecisionKind.ENTRY
    approved: bool
    gates: tuple[GateResult, ...] = ()
    plan: EntryPlan | None = None
    rejected_by: Gate | None = None
    exit_position_id: str | None = Field(default=None, description="exit signals: the position it closes")
    limits: tuple[Gate, ...] = Field(
        default=(), description="pre-trade limits that bit: failed (rejecting), or sized the entry down"
    )

    @property
    def failed(self) -> tuple[GateResult, ...]:
        return tuple(g for g in self.gates if g.passed is False)

    def gate(self, name: Gate | str) -> GateResult:
        for result in self.gates:
            if result.gate == name:
                return result
        raise KeyError(name)


class Holding(Frozen):
    """A position (or a pending entry) as the risk book sees it: who, where, how much committed."""

    position_id: str
    strategy: str
    market: str
    notional: Decimal = Field(ge=0, description="cost committed: entry fills so far, or the planned notional")
    correlation_group: str
    pending: bool = Field(description="entry approved but not yet confirmed filled")
    pair: str = Field(
        default="", description="binary markets: the condition the Up and Down tokens share (one market)"
    )


def fmt(value: Decimal) -> str:
    """Short display form of a Decimal for gate details (the arithmetic stays exact)."""
    text = f"{value:.8f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def pct(value: Decimal) -> str:
    return f"{fmt(value * 100)}%"
