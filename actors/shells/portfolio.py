"""The portfolio actor: gates and sizes every signal, opens positions, keeps the books.

Opening a position is write-ahead: the position's record (its core, already holding the
entry order's intent), the portfolio's reservation and, when a pre-started position actor is
ready (``runtime.position_pool``), its assignment are committed in one transaction before the
actor is told; a crash in between leaves a record the assigned actor (or the supervisor)
takes up. Without a ready pooled actor the position's actor is created as before. A pooled
actor whose position has closed asks, with its close report, to rejoin the pool; it is taken
back while the pool holds fewer than ``runtime.position_pool`` plus the most positions open at
once, so a steady flow of entries and exits starts no new process. Entries
stop while trading is halted (kill switch, restart budget, loss limit); exits never stop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import ray

from actors.core.portfolio import PortfolioCore
from actors.core.portfolio_decisions import Decision, DecisionKind
from actors.core.portfolio_marks import MarkBook
from actors.core.position_runner import open_position
from actors.domain.messages import PositionMarked, PositionReport, PutRecord
from actors.domain.model import ZERO, Candle, Instrument, MarketEvent, OrderBook, Signal
from actors.domain.names import PORTFOLIO, pool_name, position_name
from actors.shells.base import ActorShell, actor_options, remote
from actors.shells.feed import known_instruments
from actors.shells.position import PositionActor, position_record
from config.models import Settings

log = logging.getLogger(__name__)

STOPPED = "stopped"
"""The halt reason of a clean stop: a pause for the end of a run, never persisted as a latch."""


@ray.remote
class PortfolioActor(ActorShell):
    kind = "portfolio"

    def __init__(self, settings: Settings, instruments: Sequence[Instrument] | None = None) -> None:
        self._shell_init(PORTFOLIO, settings)
        saved = ray.get(self.store.get.remote("portfolio", "main"))
        if saved is not None:
            self.core = PortfolioCore.from_state(
                settings.portfolio, settings.exits, settings.strategies, saved["core"]
            )
            self.halted: str | None = saved.get("halted")
            if self.halted == STOPPED:  # written by older versions: a stop is never a latch
                self.halted = None
        else:
            self.core = PortfolioCore(settings.portfolio, settings.exits, settings.strategies)
            self.halted = None
        self.halt_latched = self.halted is not None
        known = known_instruments(settings) if instruments is None else instruments  # never big arguments
        self.instruments: dict[str, Instrument] = {i.market_id: i for i in known}
        self.books: dict[str, OrderBook] = {}
        self.marks = MarkBook()
        self.peak_equity = self.core.equity
        self.decisions = 0
        self.approved = 0
        pool = (saved or {}).get("pool") or {}
        self.pool_names: list[str] = list(pool.get("idle", []))
        """Pooled position actors created (or about to be) and not yet assigned."""
        self.pool_next = int(pool.get("next", 0))
        self.pool_ready: list[str] = []
        """Those of ``pool_names`` that answered: an entry is assigned to the first one."""
        self.pool_lock = asyncio.Lock()
        self.pool_event = asyncio.Event()
        """Set when a pooled actor becomes ready: an entry that found the pool empty waits on it."""
        self._shell_start()
        self._spawn(self._fill_pool())

    # ------------------------------------------------------------------ reports

    @property
    def equity(self) -> Decimal:
        """Booked capital plus every open position's running P&L (fees included)."""
        return self.core.initial_capital + self.core.realized_pnl + self.marks.running_pnl

    def heartbeat_detail(self) -> dict[str, Any]:
        equity = self.equity
        self.peak_equity = max(self.peak_equity, equity)
        drawdown = (self.peak_equity - equity) / self.peak_equity if self.peak_equity > 0 else ZERO
        unrealized = self.marks.unrealized_pnl
        self.metrics.set("raytrader_equity", float(equity))
        self.metrics.set("raytrader_realized_pnl", float(self.core.realized_pnl))
        self.metrics.set("raytrader_unrealized_pnl", float(unrealized))
        self.metrics.set("raytrader_drawdown_ratio", float(drawdown))
        self.metrics.set("raytrader_open_positions", len(self.core.holdings))
        self.metrics.set("raytrader_halted", 1.0 if self.halted else 0.0)
        return {
            "equity": str(equity),
            "realized_pnl": str(self.core.realized_pnl),
            "unrealized_pnl": str(unrealized),
            "drawdown": float(drawdown),
            "holdings": len(self.core.holdings),
            "halted": self.halted,
            "decisions": self.decisions,
            "approved": self.approved,
        }

    async def snapshot(self) -> dict[str, Any]:
        return {
            **self.heartbeat_detail(),
            "committed": {k: str(v) for k, v in self.core.committed_by_strategy.items()},
            "positions": sorted(h.position_id for h in self.core.holdings),
            "sizing_equity": str(self.core.sizing_equity),
        }

    async def _checkpoint(self) -> None:
        await self.store_call("put", "portfolio", "main", self._record())

    def _record(self) -> dict[str, Any]:
        """The checkpoint: a halt is kept only while it is latched (a stop's pause is not); the
        pooled actors' names (idle ones, and the next number: a name is never reused)."""
        return {
            "core": self.core.state(),
            "halted": self.halted if self.halt_latched else None,
            "pool": {"idle": list(self.pool_names), "next": self.pool_next},
        }

    # ------------------------------------------------------------------ control

    async def halt(self, reason: str, latched: bool = True) -> None:
        """Stop new entries (exits go on). A latched halt (kill switch, spent restart budget)
        survives restarts until an operator resumes; an unlatched one (a stop) ends with the run."""
        if self.halt_latched and not latched:
            return  # a stop does not replace a latched halt (kill switch, restart budget)
        if self.halted != reason:
            log.warning("portfolio halted: %s", reason)
        self.halted = reason
        self.halt_latched = latched
        await self._checkpoint()

    async def resume(self) -> None:
        self.halted = None
        self.halt_latched = False
        await self._checkpoint()

    # ------------------------------------------------------------------ events

    async def on_market(self, events: Sequence[MarketEvent]) -> None:
        for event in events:
            if isinstance(event, Instrument):
                self.instruments[event.market_id] = event
            elif isinstance(event, OrderBook):
                self.books[event.market] = event
            elif isinstance(event, Candle):
                self.core.on_candle(event)

    async def on_signals(self, signals: Sequence[Signal], ingest_ns: int) -> int:
        """Gate and size each signal; approved entries become position actors."""
        opened = 0
        for signal in signals:
            instrument = self.instruments.get(signal.market)
            if instrument is None:
                log.warning("signal for unknown market %s from %s", signal.market, signal.strategy)
                self.metrics.inc(
                    "raytrader_gate_rejections_total", {"strategy": signal.strategy, "gate": "market"}
                )
                continue
            if signal.is_entry and self.halted:
                self.metrics.inc(
                    "raytrader_gate_rejections_total", {"strategy": signal.strategy, "gate": "halted"}
                )
                continue
            decision = self.core.evaluate(signal, instrument, self.books.get(signal.market), signal.ts_ms)
            self.decisions += 1
            self.progressed(signal.ts_ms)
            if decision.kind is DecisionKind.EXIT:
                if decision.rejected_by is not None:  # a replayed exit older than the entry since
                    self.metrics.inc(
                        "raytrader_gate_rejections_total",
                        {"strategy": signal.strategy, "gate": str(decision.rejected_by)},
                    )
                await self._exit(decision, ingest_ns)
            elif decision.approved and decision.plan is not None:
                await self._open(decision, instrument, ingest_ns)
                opened += 1
            else:
                gate = str(decision.rejected_by or "unknown")
                self.metrics.inc(
                    "raytrader_gate_rejections_total", {"strategy": signal.strategy, "gate": gate}
                )
        return opened

    async def _exit(self, decision: Decision, ingest_ns: int) -> None:
        position_id = decision.exit_position_id
        if position_id is None:
            return
        try:
            await self.call_with_retry(
                position_name(position_id),
                "on_exit_signal",
                decision.signal.ts_ms,
                ingest_ns,
                position_id,
                deadline_s=30.0,
            )
        except Exception as exc:  # a position closing or restarting: its own plan still runs
            log.warning("exit signal for %s not delivered (%s); it may be closing", position_id, exc)

    async def _open(self, decision: Decision, instrument: Instrument, ingest_ns: int) -> None:
        plan = decision.plan
        assert plan is not None
        exits = self.core.exits_for(self.settings.strategy(plan.strategy))
        core, _entry = open_position(
            plan, instrument, exits, has_book=plan.market in self.books, now_ms=decision.signal.ts_ms
        )
        pooled = await self._take_pooled()
        record = position_record(core, exits, origin_ns=ingest_ns, actor=pooled)
        ops = [PutRecord("position", plan.position_id, record)]
        if pooled is not None:  # the assignment is durable with the intent: a restart of either finds it
            self.pool_names.remove(pooled)
            ops.append(PutRecord("portfolio", pooled, {"position_id": plan.position_id}))
        try:
            await self.store_call("batch", [*ops, PutRecord("portfolio", "main", self._record())])
        except Exception:
            if pooled is not None:  # not assigned after all: still idle
                self.pool_names.append(pooled)
                self.pool_ready.append(pooled)
            raise
        self.approved += 1
        if pooled is not None:
            handle = self.handle(pooled)
            ready = handle.assign.remote(plan.position_id, True) if handle is not None else None
            self._spawn(self._fill_pool())
        else:
            handle = (
                remote(PositionActor)
                .options(**actor_options(self.settings, position_name(plan.position_id)))
                .remote(self.settings, plan.position_id)
            )
            ready = handle.wait_ready.remote()
        # Wait until the entry is at the venue before acknowledging the signal: the feed waits on
        # this call, so the venue sees the order before the next events (as in a backtest).
        try:
            if ready is None:
                raise LookupError(f"pooled actor {pooled} not found")
            await asyncio.wait_for(ready, timeout=30.0)
        except Exception as exc:  # the record is durable: the supervisor brings the actor up
            log.error(
                "position %s did not start in time (%s); the supervisor takes over", plan.position_id, exc
            )

    # ------------------------------------------------------------------ the pool

    async def fill_pool(self) -> int:
        """Fill the pool now; returns how many pooled actors are ready. The supervisor awaits this
        before any feed starts, so the first entries of a run meet actors already running."""
        await self._fill_pool()
        return len(self.pool_ready)

    async def _take_pooled(self, wait_s: float = 10.0) -> str | None:
        """A ready pooled actor. While the pool refills, the first one to come up: it has a head
        start on any actor this entry could start itself. None without a pool, or if none comes."""
        if self.settings.runtime.position_pool == 0:
            return None
        try:
            while not self.pool_ready:
                self.pool_event.clear()
                self._spawn(self._fill_pool())  # one refill at a time (pool_lock); a no-op when full
                await asyncio.wait_for(self.pool_event.wait(), timeout=wait_s)
        except TimeoutError:
            log.warning("no pooled position actor came up in %.0fs: starting one for this entry", wait_s)
            return None
        return self.pool_ready.pop(0)

    async def _fill_pool(self) -> None:
        """Keep ``runtime.position_pool`` pre-started position actors ready for entries.

        Each one's name is in the portfolio's record before it is created (creation by name is
        idempotent), so a restarted portfolio finds the ones it made instead of leaking them."""
        async with self.pool_lock:
            while len(self.pool_names) < self.settings.runtime.position_pool:
                self.pool_names.append(pool_name(self.pool_next))
                self.pool_next += 1
            await self._checkpoint()
            waiting = [n for n in self.pool_names if n not in self.pool_ready]
            await asyncio.gather(*(self._until_idle(name) for name in waiting))

    async def _until_idle(self, name: str) -> None:
        """Start the pooled actor ``name`` if it does not exist; ready once it runs no position."""
        handle = self.handle(name) or (
            remote(PositionActor)
            .options(**actor_options(self.settings, name))
            .remote(self.settings, None, name)
        )
        try:
            idle = await handle.wait_idle.remote()
        except Exception as exc:  # gone for good: a fresh name takes its place next time
            log.warning("pooled position actor %s did not start (%s)", name, exc)
            idle = False
        if not idle:  # dead, or still running a position after the wait: no longer the pool's
            if name in self.pool_names:
                self.pool_names.remove(name)
            self.forget(name)
        elif name in self.pool_names and name not in self.pool_ready:
            self.pool_ready.append(name)
            self.pool_event.set()

    def _rejoin(self, name: str) -> bool:
        """May the pooled actor ``name``, whose position has just closed, rejoin the pool? Up to the
        pool's size plus the most positions open at once: churn starts no process, idle memory stays
        bounded (an actor turned away is reaped by the supervisor, as without reuse)."""
        if name in self.pool_names:  # a repeated report
            return True
        runtime = self.settings.runtime
        if not runtime.position_pool_reuse or runtime.position_pool == 0:
            return False
        if len(self.pool_names) >= runtime.position_pool + self.settings.portfolio.max_concurrent_positions:
            return False
        self.pool_names.append(name)
        return True

    async def on_marks(self, marks: Sequence[PositionMarked]) -> None:
        """The marks of a batch's prices, all positions' at once: the feed forwards what each
        position's ``on_market`` returned, before the batch reaches the strategies."""
        for mark in marks:
            self._marked(mark)
        self.core.on_equity(self.equity)  # sizing and the daily-loss limit see the batch's marks

    def _marked(self, report: PositionMarked) -> None:
        """Take a position's cost and running P&L; an older mark than the one held (a feed's
        forward overtaken by a fill's report), or one of a position no longer held, is dropped."""
        position_id = report.position_id
        holding = next((h for h in self.core.holdings if h.position_id == position_id), None)
        if holding is None or not self.marks.take(
            position_id, report.at_ns, report.realized_pnl, report.unrealized_pnl
        ):
            return
        if report.entry_qty > 0:
            instrument = self.instruments.get(holding.market)
            group = instrument.correlation_group if instrument is not None else holding.correlation_group
            self.core.on_position_opened(
                position_id,
                holding.strategy,
                holding.market,
                report.notional,
                group,
                entry_working=report.status == "entering",
            )

    async def on_position_report(self, report: PositionReport) -> bool:
        """Positions report their cost and marks, and their close. True answers a pooled actor's
        close report (``pool``): it is taken back into the pool, durably, before it goes idle."""
        position_id = report.position_id
        if isinstance(report, PositionMarked):
            self._marked(report)
            self.core.on_equity(self.equity)
            return False
        self.marks.drop(position_id)
        if report.unfilled:
            self.core.on_entry_cancelled(position_id)
            self.core.on_position_closed(position_id, Decimal(0))
        else:
            self.core.on_position_closed(position_id, report.realized_pnl)
        self.core.on_equity(self.equity)
        rejoins = report.pool is not None and self._rejoin(report.pool)
        await self._checkpoint()
        if rejoins:
            self._spawn(self._fill_pool())  # ready once it has let its position go
        return rejoins
