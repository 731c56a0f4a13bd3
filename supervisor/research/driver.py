"""The in-process driver: every core of the runtime wired by direct calls, on the data's clock.

Backtests run here; so does the paper-vs-backtest parity check. It drives the very same
strategy, portfolio, position-exit and matching cores as the Ray actors, event by event:
a signal from a bar closing at T becomes an order submitted at T, which the matching engine
can fill no earlier than the next bar (no look-ahead).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from actors.core.fees import FeeModel
from actors.core.matching import MatchingEngine
from actors.core.portfolio import PortfolioCore
from actors.core.portfolio_decisions import Decision, DecisionKind
from actors.core.position import PositionCore
from actors.core.position_runner import apply_update, open_position, round_trip, trade_record
from actors.core.strategies import StrategyCore
from actors.core.strategies.book import StrategyBook
from actors.data.replay import event_time
from actors.domain.messages import OrderUpdate, UpdateKind
from actors.domain.model import (
    ZERO,
    CancelOrder,
    Candle,
    Command,
    ExitStatus,
    Fill,
    Instrument,
    MarketEvent,
    OrderBook,
    PlaceOrder,
    PositionClosed,
    RoundTrip,
    Settlement,
    Signal,
    to_decimal,
)
from actors.domain.topology import watches
from actors.store.lmdb_store import StateStore
from config.models import Settings

log = logging.getLogger(__name__)


@dataclass
class DriverCounters:
    signals: Counter[str] = field(default_factory=Counter)
    rejections: Counter[str] = field(default_factory=Counter)
    skipped_gates: Counter[str] = field(default_factory=Counter)
    orders: Counter[str] = field(default_factory=Counter)
    fills: int = 0
    events: int = 0


@dataclass(slots=True)
class EquityPoint:
    """Equity and exposure after an event (slots: a backtest makes one per bar)."""

    ts_ms: int
    equity: Decimal
    exposure: Decimal


class Driver:
    """Runs a portfolio of strategies over a stream of market events in one process."""

    def __init__(
        self,
        settings: Settings,
        instruments: Iterable[Instrument],
        *,
        store: StateStore | None = None,
        equity_market: str | None = None,
        on_trade: Callable[[RoundTrip], None] | None = None,
    ) -> None:
        self.settings = settings
        self.fees = FeeModel(settings.costs)
        self.instruments: dict[str, Instrument] = {}
        self.engine = MatchingEngine(self.fees)
        self.strategies: dict[str, StrategyCore[Any]] = {
            s.name: StrategyBook(s) for s in settings.strategies if s.enabled
        }
        self.portfolio = PortfolioCore(settings.portfolio, settings.exits, settings.strategies)
        self.store = store
        self.positions: dict[str, PositionCore] = {}
        self.owner: dict[str, str] = {}
        self.books: dict[str, OrderBook] = {}
        self.trips: list[RoundTrip] = []
        self.curve: list[EquityPoint] = []
        self.counters = DriverCounters()
        self.cash = settings.portfolio.initial_capital
        self.fees_paid = ZERO
        self.equity_market = equity_market
        self.on_trade = on_trade
        self.now_ms = 0
        self._peak_equity = self.cash
        self._watchers: dict[str, list[str]] = {}
        for instrument in instruments:
            self.add_instrument(instrument)

    def _watching(self, market: str) -> list[str]:
        """Strategy names that consume ``market`` (cached per market)."""
        names = self._watchers.get(market)
        if names is None:
            names = [n for n in self.strategies if watches(self.settings.strategy(n), market)]
            self._watchers[market] = names
        return names

    # ------------------------------------------------------------------ events

    def add_instrument(self, instrument: Instrument) -> None:
        self.instruments[instrument.market_id] = instrument
        if self.fees.trades_on(instrument.venue):
            self.engine.add_instrument(instrument)

    def run(self, events: Iterable[MarketEvent], progress: Callable[[int], None] | None = None) -> None:
        for n, event in enumerate(events):
            self.process(event)
            if progress is not None and n % 10_000 == 0:
                progress(n)

    def process(self, event: MarketEvent) -> None:
        """One market event, in the order a live system would see its consequences."""
        now = event_time(event)
        self.now_ms = max(self.now_ms, now)
        self.counters.events += 1
        if isinstance(event, Candle):
            self._on_candle(event, now)
        elif isinstance(event, OrderBook):
            self._on_book(event, now)
        elif isinstance(event, Instrument):
            self.add_instrument(event)
            for name in self._watching(event.market_id):
                self._signals(self.strategies[name].on_instrument(event), now)
        elif isinstance(event, Settlement):
            self._on_settlement(event, now)

    def _on_candle(self, candle: Candle, now: int) -> None:
        market = candle.market
        if self.engine.has_open_orders(market):
            self._route(self.engine.on_candle(candle, candle.ts_ms), now)
        held = [core for core in self.positions.values() if core.position.market == market]
        if held:
            # the engine's intrabar path: open -> low -> high -> close (adverse first for longs)
            for price in (candle.low, candle.high, candle.close):
                for core in held:
                    self._execute(core.on_price(to_decimal(price), now), now)
        for core in list(self.positions.values()):
            self._execute(core.on_timer(now), now)
        if self.equity_market is None or market == self.equity_market:
            self._mark(now)
        self.portfolio.on_candle(candle)
        for name in self._watching(market):
            self._signals(self.strategies[name].on_candle(candle), now)

    def _on_book(self, book: OrderBook, now: int) -> None:
        self.books[book.market] = book
        self._route(self.engine.on_book(book, now), now)
        bid = book.best_bid
        if bid is not None:
            for core in [c for c in self.positions.values() if c.position.market == book.market]:
                self._execute(core.on_price(bid, now), now)
        for name in self._watching(book.market):
            self._signals(self.strategies[name].on_book(book), now)

    def _on_settlement(self, settlement: Settlement, now: int) -> None:
        for core in [c for c in self.positions.values() if c.position.market == settlement.market]:
            held = core.position.open_qty
            commands = core.on_settlement(settlement.payout, now)
            self.cash += settlement.payout * held
            self._execute(commands, now)
        self._route(self.engine.cancel_all(settlement.market, now_ms=now), now)

    # ------------------------------------------------------------------ signals -> positions

    def _signals(self, signals: list[Signal], now: int) -> None:
        for signal in signals:
            self.counters.signals[f"{signal.strategy}:{signal.side.value}"] += 1
            instrument = self.instruments.get(signal.market)
            if instrument is None:
                log.warning("signal for unknown market %s from %s", signal.market, signal.strategy)
                continue
            decision = self.portfolio.evaluate(signal, instrument, self.books.get(signal.market), now)
            if decision.kind is DecisionKind.EXIT:
                self._exit_signal(decision, now)
            else:
                self._entry(decision, instrument, now)

    def _exit_signal(self, decision: Decision, now: int) -> None:
        core = self.positions.get(decision.exit_position_id or "")
        if core is not None:
            self._execute(core.on_exit_signal(now), now)

    def _entry(self, decision: Decision, instrument: Instrument, now: int) -> None:
        for gate in decision.gates:
            if gate.passed is None:
                self.counters.skipped_gates[gate.gate] += 1
        if not decision.approved or decision.plan is None:
            self.counters.rejections[f"{decision.signal.strategy}:{decision.rejected_by}"] += 1
            return
        plan = decision.plan
        exits = self.portfolio.exits_for(self.settings.strategy(plan.strategy))
        core, commands = open_position(
            plan, instrument, exits, has_book=plan.market in self.books, now_ms=now
        )
        self.positions[plan.position_id] = core
        self._execute(commands, now)

    # ------------------------------------------------------------------ commands and venue updates

    def _execute(self, commands: list[Command], now: int) -> None:
        for command in commands:
            if isinstance(command, PlaceOrder):
                order = command.order
                self.owner[order.client_id] = order.position_id or ""
                if self.store is not None:
                    self.store.record_intent(order)
                self._route(self.engine.submit(order, now), now)
            elif isinstance(command, CancelOrder):
                self._route(self.engine.cancel(command.client_id, now), now)
            elif isinstance(command, PositionClosed):
                self._closed(command)

    def _route(self, updates: list[OrderUpdate], now: int) -> None:
        for update in updates:
            self.counters.orders[update.kind.value] += 1
            if update.fill is not None:
                self._account(update.fill)
            if self.store is not None and update.kind is not UpdateKind.UNCHANGED:
                o = update.order
                self.store.record_answer(
                    o.client_id, o.status, o.venue_order_id, o.filled_qty, updated_ms=now
                )
                if update.fill is not None:
                    self.store.record_fill(update.fill)
            core = self.positions.get(self.owner.get(update.order.client_id, ""))
            if core is None:
                continue
            was_entering = core.position.status is ExitStatus.ENTERING
            commands = apply_update(core, update)
            pos = core.position
            if update.fill is not None and update.order.purpose == "entry":
                instrument = self.instruments[pos.market]
                self.portfolio.on_position_opened(
                    pos.position_id,
                    pos.strategy,
                    pos.market,
                    pos.entry_price * pos.entry_qty,
                    instrument.correlation_group,
                    entry_working=pos.status is ExitStatus.ENTERING,  # the rest stays reserved
                )
            if was_entering and pos.status is not ExitStatus.ENTERING and pos.entry_qty == 0:
                self.portfolio.on_entry_cancelled(pos.position_id)
            self._execute(commands, now)

    def _account(self, fill: Fill) -> None:
        self.counters.fills += 1
        self.fees_paid += fill.fee
        self.cash += fill.cash_flow

    def _closed(self, closed: PositionClosed) -> None:
        core = self.positions.pop(closed.position_id, None)
        if core is None:
            return
        self.portfolio.on_position_closed(closed.position_id, closed.realized_pnl)
        self.portfolio.on_entry_cancelled(closed.position_id)
        trip = round_trip(core, closed)
        if trip is not None:
            self.trips.append(trip)
            if self.store is not None:
                self.store.append_trade(trade_record(trip))
            if self.on_trade is not None:
                self.on_trade(trip)
        self._mark(closed.ts_ms)

    # ------------------------------------------------------------------ accounting

    @property
    def marked_positions(self) -> Decimal:
        return sum((c.position.mark_value for c in self.positions.values()), ZERO)

    @property
    def equity(self) -> Decimal:
        """Cash plus every open position at its last mark: what the account is worth now."""
        return self.cash + self.marked_positions

    def _mark(self, now: int) -> None:
        marked = self.marked_positions
        equity = self.cash + marked  # self.equity, with the positions summed once
        self.portfolio.on_equity(equity)
        exposure = marked / equity if equity > 0 else ZERO
        if self.curve and self.curve[-1].ts_ms == now:
            self.curve[-1] = EquityPoint(now, equity, exposure)
        else:
            self.curve.append(EquityPoint(now, equity, exposure))
        self._peak_equity = max(self._peak_equity, equity)

    def reconcile(self) -> dict[str, Decimal]:
        """Invariant 6: cash + marked positions = initial + realised + unrealised (fees inside P&L)."""
        realized_closed = sum((t.pnl for t in self.trips), ZERO)
        open_realized = sum((c.position.realized_pnl for c in self.positions.values()), ZERO)
        open_unrealized = sum((c.position.unrealized_pnl for c in self.positions.values()), ZERO)
        lhs = self.cash + self.marked_positions
        rhs = self.settings.portfolio.initial_capital + realized_closed + open_realized + open_unrealized
        return {"lhs": lhs, "rhs": rhs, "difference": lhs - rhs}
