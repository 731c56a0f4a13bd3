"""The position actor: one per open position, running its exit state machine against a venue.

Its constructor is its recovery: it rebuilds the core from the store, then reconciles every
order it has not seen finish with the venue, by client id. A write-ahead intent the venue
never saw is sent; one it did see is adopted with its fills; cancels that were requested but
never confirmed are sent again. Only then does it take new events. Every event is handled
under one lock, and the core's state is committed before any order leaves. A pooled one
(``runtime.position_pool``) starts idle and is assigned its position later (:meth:`assign`);
once that position has closed and the portfolio has booked it, it goes idle again and rejoins
the pool (``runtime.position_pool_reuse``), so a steady flow of entries starts no new process.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import Any

import ray

from actors.core.position import PositionCore
from actors.core.position_quiet import PositionPriced, QuietBand, QuietNotice
from actors.core.position_runner import apply_update, round_trip, trade_record
from actors.domain.messages import (
    AppendTrade,
    DeleteRecord,
    OrderUpdate,
    PositionMarked,
    PositionReleased,
    PutRecord,
    RecordIntent,
    StoreOp,
)
from actors.domain.model import (
    CancelOrder,
    Candle,
    Command,
    ExitStatus,
    Instrument,
    MarketEvent,
    Order,
    OrderBook,
    OrderStatus,
    PlaceOrder,
    PositionClosed,
    Settlement,
    to_decimal,
)
from actors.domain.names import POOL, PORTFOLIO, feed_name, position_name, venue_name
from actors.domain.topology import data_source, feed_of_market
from actors.shells.base import ActorShell, register_alias, wall_ms
from config.models import ExitConfig, Settings

log = logging.getLogger(__name__)


def position_record(
    core: PositionCore, exits: ExitConfig, *, origin_ns: int | None = None, actor: str | None = None
) -> dict[str, Any]:
    """What the store keeps of a position: enough to rebuild its actor anywhere. ``actor``: the Ray
    name of the actor that runs it (a pooled ``pool:<n>``); ``None``: ``position:<id>``."""
    pos = core.position
    return {
        "core": core.state(),
        "instrument": core.instrument.model_dump(mode="json"),
        "exits": exits.model_dump(mode="json"),
        "strategy": pos.strategy,
        "market": pos.market,
        "status": pos.status.value,
        "open": pos.status is not ExitStatus.CLOSED,
        "status_since_ms": wall_ms(),
        "origin_ns": origin_ns,
        "actor": actor,
    }


def _keep_closes(queue: list[Command]) -> list[Command]:
    """After a reconciliation, only the closes of a stale queue still need carrying out: the core
    emits a close once, and reconciling does not emit it again."""
    return [c for c in queue if isinstance(c, PositionClosed)]


@ray.remote
class PositionActor(ActorShell):
    kind = "position"

    def __init__(self, settings: Settings, position_id: str | None = None, pool: str | None = None) -> None:
        """``position_id``: run that position, as the actor named ``position:<id>``. ``pool``: a
        pre-started actor of that Ray name (``pool:<n>``), idle until :meth:`assign`; after a Ray
        restart it runs the position the store says it was assigned (``portfolio/pool:<n>``)."""
        self.ray_name = pool if pool is not None else position_name(str(position_id))
        self._shell_init(self.ray_name, settings)
        self.pool = pool
        self.position_id = ""
        self.loaded = False
        self.lock = asyncio.Lock()
        self.assigning = asyncio.Lock()
        self.ready = asyncio.Event()
        self.idle = asyncio.Event()
        """Set while a pooled actor runs no position: the portfolio assigns only idle ones."""
        self.retired = False
        """The supervisor is about to kill it for good (:meth:`retire`): it never rejoins the pool."""
        if pool is not None:
            self.kind = POOL  # until it runs a position: listed by the supervisor, never re-created by it
        self._shell_start()
        if position_id is None and pool is not None:
            assigned = ray.get(self.store.get.remote("portfolio", pool))
            if assigned is None:
                self.idle.set()
                self._spawn(self._idle_loop())
                return
            position_id = str(assigned["position_id"])
        assert position_id is not None
        if self._claim(position_id, ray.get(self.store.get.remote("position", position_id))):
            self._spawn(self._startup())

    def _claim(self, position_id: str, record: dict[str, Any] | None) -> bool:
        """Take the position over from its record; a pooled actor only if the record names it its
        owner (a position whose pooled actor died for good is run by a named one from then on)."""
        if record is None:
            raise RuntimeError(f"position {position_id} has no record in the store")
        if self.pool is not None and record.get("actor") != self.pool:
            log.error(
                "%s: position %s is owned by %s, not run here", self.pool, position_id, record.get("actor")
            )
            return False
        self.position_id = position_id
        self.actor_id = position_name(position_id)
        if self.pool is not None:
            register_alias(self.settings, self.actor_id, self.pool)
        self.instrument = Instrument.model_validate(record["instrument"])
        self.exits = ExitConfig.model_validate(record["exits"])
        self.core = PositionCore.from_state(record["core"], self.instrument, self.exits)
        self.origin_ns: int | None = record.get("origin_ns")
        self.status_since_ms = int(record.get("status_since_ms") or wall_ms())
        self.closed = self.core.position.status is ExitStatus.CLOSED
        self.redrives = 0
        self.frozen = bool(record.get("frozen", False))
        """No new orders leave while frozen; they stay intents in the core until unfrozen."""
        self.frozen_latched = self.frozen
        """Only the kill switch's freeze is persisted: a stop's freeze ends with the run."""
        self.unarmed_since_ms: int | None = None
        """Since when (wall ms) this open position's exits are not all at the venue."""
        close = record.get("close")
        self.close_info: PositionReleased | None = (
            None if close is None else PositionReleased.from_record(position_id, close)
        )
        self.released = bool(record.get("released", False))
        self.pool_returned = bool(record.get("pool_returned", False))
        """Released back to the pool: the supervisor forgets the position's name, never kills it."""
        self.quiet_sent: QuietBand | None = None
        """The quiet band the feed was last told (its subscribe on start forgets any older one)."""
        self.loaded = True
        self.idle.clear()
        self.kind = "position"
        return True

    def _unload(self) -> None:
        """Let the closed and booked position go: idle again, like a freshly started pooled actor.
        Calls still addressed to the old position find ``position_id`` changed and are dropped."""
        self.position_id = ""
        self.actor_id = self.ray_name
        self.kind = POOL
        self.loaded = False
        self.closed = False
        self.ready.clear()
        self.last_event_ms = None
        self._handles.clear()
        self.idle.set()

    async def assign(self, position_id: str, fresh: bool = False) -> str:
        """Run ``position_id`` (a pooled actor; idempotent); returns once its orders are at the venue.

        ``fresh``: the portfolio has just written the record, whose entry intent no venue has seen:
        it is sent without a venue lookup (its client id still guards against a second send)."""
        async with self.assigning:
            if not self.loaded:
                record = await self.store_call("get", "position", position_id)
                if not self._claim(position_id, record):
                    raise RuntimeError(f"{self.ray_name} does not own position {position_id}")
                self._spawn(self._startup(fresh))
        if self.position_id != position_id:
            raise RuntimeError(f"{self.ray_name} runs position {self.position_id}, not {position_id}")
        return await self.wait_ready()

    async def retire(self, position_id: str) -> bool:
        """May the supervisor kill this actor, whose ``position_id`` is closed? Only if it still runs
        that position and has not gone back to the pool; once it says yes it never will, so a
        pooled actor already running a later position is never killed for an earlier one."""
        if not self.loaded or self.position_id != position_id or self.pool_returned:
            return False
        self.retired = True
        return True

    async def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """True once this pooled actor runs no position (a fresh one at once, one rejoining the pool
        once it has let its position go); False if it still runs one after ``timeout_s``."""
        try:
            await asyncio.wait_for(self.idle.wait(), timeout=timeout_s)
        except TimeoutError:
            return False
        return True

    async def _back_to_pool(self, position_id: str) -> None:
        """Rejoin the pool once the call that closed ``position_id`` has let go of the lock."""
        async with self.assigning, self.lock:
            if not self.loaded or self.position_id != position_id:
                return
            self._unload()
        log.info("%s: position %s released, idle in the pool again", self.pool, position_id)
        await self.beat()
        self._spawn(self._idle_loop())

    async def _idle_loop(self) -> None:
        await self._every("pool assignment", lambda: self.settings.runtime.position_timer_s, self._idle_turn)

    async def _idle_turn(self) -> bool:
        """An idle pooled actor takes up an assignment the portfolio wrote but did not deliver (it
        died in between); True once it runs a position or cannot."""
        if self.loaded or self.pool is None:
            return True
        assigned = await self.store_call("get", "portfolio", self.pool)
        if assigned is None:
            return False
        try:
            await self.assign(str(assigned["position_id"]))
        except RuntimeError:
            log.exception("%s: assignment not taken up", self.pool)
        return True

    # ------------------------------------------------------------------ reports

    def owned_orders(self) -> tuple[str, ...]:
        return tuple(o.client_id for o in self.core.open_orders()) if self.loaded else ()

    def digest_source(self) -> Any:
        return self.core.state() if self.loaded else None

    def heartbeat_detail(self) -> dict[str, Any]:
        if not self.loaded:
            return {"idle": True}
        pos = self.core.position
        armed = self.core.exits_armed() and not self._unsent_exits()
        if armed or self.frozen or pos.status not in (ExitStatus.OPEN, ExitStatus.HALF_CLOSED):
            self.unarmed_since_ms = None
        elif self.unarmed_since_ms is None:
            self.unarmed_since_ms = wall_ms()
        working = [o for o in self.core.open_orders() if o.purpose != "entry"]
        oldest_exit = min((o.created_ms for o in working), default=None)
        return {
            "status": pos.status.value,
            "status_since_ms": self.status_since_ms,
            "market": pos.market,
            "strategy": pos.strategy,
            "armed": armed,
            "unarmed_since_ms": self.unarmed_since_ms,
            "frozen": self.frozen,
            "open_qty": str(pos.open_qty),
            "mark_value": str(pos.mark_value),
            "stop_price": str(pos.stop_price),
            "close_blocked": self.core.close_blocked,
            "realized_pnl": str(pos.realized_pnl),
            "unrealized_pnl": str(pos.unrealized_pnl),
            "oldest_exit_order_ms": oldest_exit,
            "fills": self.core.seen_fill_ids(),
            "ready": self.ready.is_set(),
            "redrives": self.redrives,
            "pool": self.pool,
        }

    def _unsent_exits(self) -> list[str]:
        """Exit intents the venue has not acknowledged: an intent protects nothing until it is there."""
        return [
            o.client_id
            for o in self.core.orders.values()
            if o.purpose != "entry" and o.status is OrderStatus.PENDING
        ]

    async def wait_ready(self) -> str:
        """Returns once the actor has reconciled and its pending orders are at the venue."""
        await self.ready.wait()
        return self.core.position.status.value

    async def snapshot(self) -> dict[str, Any]:
        return {"position_id": self.position_id, **self.heartbeat_detail(), "orders": self.owned_orders()}

    # ------------------------------------------------------------------ startup and recovery

    @property
    def venue(self) -> Any:
        return self.handle(venue_name(self.instrument.venue))

    @property
    def feed(self) -> Any:
        return self.handle(feed_name(feed_of_market(self.instrument.market_id)))

    async def _startup(self, fresh: bool = False) -> None:
        """Subscribe and reconcile; a ``fresh`` entry (see :meth:`assign`) is sent first instead."""
        try:
            if fresh:
                async with self.lock:
                    await self._execute(self._unsent_entries(), self.origin_ns)
                    await self._report()
            feed = self.feed
            if feed is not None and not self.closed:
                await feed.subscribe.remote(self.actor_id, self.instrument.market_id)
            if not fresh:
                async with self.lock:
                    await self._reconcile()
        except Exception:
            self._handles.clear()  # the venue or feed may have been re-created under its name
            log.exception("position %s: startup failed; the supervisor will re-drive it", self.position_id)
        finally:
            self.ready.set()
        self._spawn(self._timer_loop())

    def _unsent_entries(self) -> list[Command]:
        """A fresh position's entry intents: what reconciling would send, without asking the venue."""
        return [
            PlaceOrder(order=o.model_copy())
            for o in self.core.orders.values()
            if o.status is OrderStatus.PENDING
        ]

    async def _reconcile(self) -> None:
        """Bring the core in line with the venue, by client id; never re-send blindly."""
        venue = self.venue
        commands: list[Command] = []
        missing = set(self.core.awaiting_fills())
        for order in [o for o in self.core.orders.values() if o.is_open or o.client_id in missing]:
            seen = await venue.order.remote(order.client_id)
            if seen is None:
                if order.status is OrderStatus.PENDING:
                    commands.append(PlaceOrder(order=order.model_copy()))
                else:  # acknowledged once, unknown now: treat as gone, the core re-plans
                    commands += self.core.on_order_update(
                        order.client_id, OrderStatus.CANCELLED, order.filled_qty, self._now()
                    )
                continue
            commands += await self._adopt(seen)
        for client_id in self.core.unconfirmed_cancels():
            commands.append(
                CancelOrder(client_id=client_id, market=self.instrument.market_id, reason="re-sent")
            )
        unfinished = self.core.close_command() if self.close_info is None else None
        if unfinished is not None:  # saved closed, died before logging and booking it: do it now
            commands.append(unfinished)
        await self._checkpoint()
        await self._execute(commands, self.origin_ns)
        await self._report()

    def _now(self) -> int:
        return self.last_event_ms or self.core.position.entry_ms

    # ------------------------------------------------------------------ events

    async def on_updates(self, updates: Sequence[OrderUpdate]) -> None:
        """Order updates the venue pushed (fills of resting orders); only this position's: a
        pooled actor that ran another one may still be reached under that one's name."""
        if not self.loaded:
            return
        await self.ready.wait()
        async with self.lock:
            commands: list[Command] = []
            for update in updates:
                if update.order.position_id == self.position_id:
                    commands += apply_update(self.core, update)
            await self._commit_and_execute(commands, None)
            await self._report()
            await self._publish_quiet()

    async def on_market(self, events: Sequence[MarketEvent], ingest_ns: int) -> PositionPriced | None:
        """Prices and settlements of this position's market (a call meant for a position this
        pooled actor ran before is dropped: ``position_id`` changed while it waited); the answer
        carries the mark and the quiet band the feed skips this position's prices within."""
        position_id = self.position_id
        if not self.loaded:
            return None
        await self.ready.wait()
        async with self.lock:
            if self.closed or self.position_id != position_id:
                return None
            market = self.instrument.market_id
            commands: list[Command] = []
            marker = self.core.progress_marker()
            for event in events:
                if getattr(event, "market", market) != market:
                    continue
                if isinstance(event, Candle):
                    now = event.ts_ms + event.interval_ms
                    for price in (event.low, event.high, event.close):
                        commands += self.core.on_price(to_decimal(price), now)
                elif isinstance(event, OrderBook):
                    now = event.ts_ms
                    if event.best_bid is not None:
                        commands += self.core.on_price(event.best_bid, now)
                elif isinstance(event, Settlement):
                    now = event.ts_ms
                    commands += self.core.on_settlement(event.payout, now)
                else:
                    continue
                self.progressed(now)
            if commands:
                await self._commit_and_execute(commands, ingest_ns)
            elif self.core.progress_marker() != marker:  # a risen trailing stop is durable too
                await self._checkpoint()
            notice = self._quiet_notice()
            self.quiet_sent = notice.band
            # the feed forwards every position's mark to the portfolio at once
            return PositionPriced(mark=self._mark(), notice=notice)

    async def on_exit_signal(
        self, ts_ms: int, ingest_ns: int | None = None, position_id: str | None = None
    ) -> None:
        """A strategy's exit for ``position_id`` (None: whatever this actor runs)."""
        expected = self.position_id if position_id is None else position_id
        if not self.loaded or expected != self.position_id:
            return
        await self.ready.wait()
        async with self.lock:
            if self.position_id != expected:
                return
            commands = self.core.on_exit_signal(max(ts_ms, self._now()))
            await self._commit_and_execute(commands, ingest_ns)
            await self._publish_quiet()

    async def freeze(self, frozen: bool = True, latched: bool = True) -> None:
        """Place no new orders (kill switch: ``latched``; a clean stop: not latched)."""
        if not self.loaded:
            return
        async with self.lock:
            self.frozen = frozen
            self.frozen_latched = frozen and (latched or self.frozen_latched)  # a stop keeps a latch
            await self._checkpoint()
            if not frozen:
                await self._reconcile()
            await self._publish_quiet()

    async def flatten(self) -> dict[str, Any]:
        """The kill switch's flatten: close now at the capped price (:meth:`PositionCore.flatten`).

        Its closes must leave, so the position is unfrozen (the portfolio's latched halt keeps
        entries off). Intents a freeze held back and the venue never saw are dropped; orders the
        kill switch cancelled at the venue behind the core's back are learnt by reconciling,
        which frees their quantity to sell.
        """
        if not self.loaded:
            return self.heartbeat_detail()
        await self.ready.wait()
        async with self.lock:
            if not self.closed:
                pending = [o.client_id for o in self.core.orders.values() if o.status is OrderStatus.PENDING]
                unsent = [cid for cid in pending if await self.venue.order.remote(cid) is None]
                self.frozen = self.frozen_latched = False
                commands = self.core.flatten(self._now(), unsent)
                await self._checkpoint()
                await self._execute(commands, None)
                await self._reconcile()
                await self._publish_quiet()
        return self.heartbeat_detail()

    async def redrive(self) -> dict[str, Any]:
        """The supervisor found this position stuck: reconcile with the venue and re-run timers."""
        if not self.loaded:
            return self.heartbeat_detail()
        self.redrives += 1
        self._handles.clear()  # re-drives follow failures: never trust a cached handle here
        async with self.lock:
            await self._reconcile()
            commands = self.core.on_timer(self._now())
            if self.core.close_blocked is not None:  # one more attempt per re-drive, never a burst
                commands += self.core.retry_close(self._now())
            commands += self.core.retry_targets(self._now())  # a leg dropped until its attempts ran out
            await self._checkpoint()
            await self._execute(commands, None)
            await self._publish_quiet()
        return self.heartbeat_detail()

    async def _timer_loop(self) -> None:
        position_id = self.position_id
        await self._every(
            "exit timers",
            lambda: self.settings.runtime.position_timer_s,
            lambda: self._timer_turn(position_id),
        )

    async def _timer_turn(self, position_id: str) -> bool:
        """Time-based exits (time exit, entry timeout); True once ``position_id`` is closed (or let go)."""
        async with self.lock:
            if self.closed or self.position_id != position_id:
                return True
            commands = self.core.on_timer(self._now())
            if commands:
                await self._checkpoint()
                await self._execute(commands, None)
                await self._publish_quiet()
            return self.closed

    # ------------------------------------------------------------------ commands

    async def _checkpoint(self, extra: Sequence[StoreOp] = ()) -> list[Any]:
        """The position's record (and ``extra`` ops first) in one transaction; each op's result."""
        record = position_record(self.core, self.exits, origin_ns=self.origin_ns)
        record["status_since_ms"] = self.status_since_ms
        record["frozen"] = self.frozen_latched
        record["close"] = None if self.close_info is None else self.close_info.to_record()
        record["released"] = self.released
        record["pool_returned"] = self.pool_returned
        record["actor"] = self.ray_name
        results: list[Any] = await self.store_call(
            "batch", [*extra, PutRecord("position", self.position_id, record)]
        )
        return results

    async def _commit_and_execute(self, commands: list[Command], origin_ns: int | None) -> None:
        """Commit the core's state, then carry out its commands. When the first command places an
        order, its intent's commit carries the record in the same transaction: one fsync fewer on
        the order's path, and still nothing leaves before the state that sent it is durable."""
        if not (commands and isinstance(commands[0], PlaceOrder) and not self.frozen):
            await self._checkpoint()
        await self._execute(commands, origin_ns)

    async def _execute(self, commands: list[Command], origin_ns: int | None) -> None:
        """Carry out the core's commands; an order's intent is durable before the venue sees it.

        Consecutive commands of one kind go together: a run of places is one commit of all their
        intents, then every submit at once; a run of cancels is sent at once. The core emits a
        run's commands for orders independent of each other (a close sells only what no working
        order reserves), so only the answers' order matters: they reach the core in the run's
        order, and what they lead to waits for the whole run, as it waited for each command."""
        queue = list(commands)
        while queue:
            head = queue.pop(0)
            status_before = self.core.position.status
            if isinstance(head, PositionClosed):
                await self._closed(head)
            elif isinstance(head, (PlaceOrder, CancelOrder)):
                run: list[Command] = [head]
                while queue and type(queue[0]) is type(head):
                    run.append(queue.pop(0))
                if isinstance(head, PlaceOrder):
                    followups, failed = await self._place_run(
                        [c for c in run if isinstance(c, PlaceOrder)], origin_ns
                    )
                else:
                    calls = [(c.client_id,) for c in run if isinstance(c, CancelOrder)]
                    followups, failed = await self._venue_run("cancel", calls)
                queue += followups
                if failed:  # the venue failed and the position reconciled: the venue
                    queue = _keep_closes(queue)  # commands left here are stale, a close is not
            if self.core.position.status is not status_before:
                self.status_since_ms = wall_ms()
        if commands:
            await self._checkpoint()

    async def _place_run(self, places: list[PlaceOrder], origin_ns: int | None) -> tuple[list[Command], bool]:
        """Record every intent in one commit, then submit those no venue may have seen, together."""
        if self.frozen:
            for place in places:
                log.warning("position %s frozen: order %s held back", self.position_id, place.order.client_id)
            return [], False
        first_times = await self._checkpoint([RecordIntent(p.order) for p in places])
        followups: list[Command] = []
        to_send: list[tuple[Any, ...]] = []
        for place, first_time in zip(places, first_times, strict=False):
            if not first_time:  # recorded before: it may be at the venue already, never send twice
                adopted = await self._adopt_if_seen(place.order.client_id)
                if adopted is not None:
                    followups += adopted
                    continue
            to_send.append((place.order, origin_ns))
        sent, failed = await self._venue_run("submit", to_send)
        return followups + sent, failed

    async def _adopt_if_seen(self, client_id: str) -> list[Command] | None:
        """An order the venue already knows, adopted with its fills; ``None`` if it never saw it."""
        seen = await self.venue.order.remote(client_id)
        return None if seen is None else await self._adopt(seen)

    async def _adopt(self, seen: Order) -> list[Command]:
        """The venue's view of one of our orders, with its fills, taken into the core."""
        commands: list[Command] = []
        for fill in await self.venue.fills_for.remote(seen.client_id):
            commands += self.core.on_fill(fill)
        commands += self.core.on_order_update(
            seen.client_id, seen.status, seen.filled_qty, self._now(), venue_order_id=seen.venue_order_id
        )
        return commands

    async def _venue_run(self, method: str, calls: Sequence[tuple[Any, ...]]) -> tuple[list[Command], bool]:
        """Venue calls sent together; every answer that came is fed to the core in the calls' order
        and the commands it leads to returned. If one failed mid-call its answer is unknown: wait
        for the venue to come back and reconcile by client id (never re-send blindly); the flag
        then says the reconciliation has re-derived and sent everything still to do, so the
        caller's queue of commands is stale and must be dropped."""
        if not calls:
            return [], False

        async def call(args: tuple[Any, ...]) -> list[OrderUpdate]:
            updates: list[OrderUpdate] = await getattr(self.venue, method).remote(*args)
            return updates

        answers = await asyncio.gather(*(call(args) for args in calls), return_exceptions=True)
        commands: list[Command] = []
        failure: BaseException | None = None
        for answer in answers:
            if isinstance(answer, BaseException):
                failure = failure or answer
                continue
            for update in answer:
                commands += apply_update(self.core, update)
        if failure is None:
            return commands, False
        self.metrics.inc(
            "raytrader_venue_errors_total", {"venue": self.instrument.venue, "error": type(failure).__name__}
        )
        log.warning("position %s: venue %s failed (%s); reconciling", self.position_id, method, failure)
        self.forget(venue_name(self.instrument.venue))
        await self.call_with_retry(venue_name(self.instrument.venue), "ping")
        await self._reconcile()
        return commands, True

    async def _closed(self, closed: PositionClosed) -> None:
        """Log the round trip and the close in one commit, then release the portfolio's slot.

        The record says what the portfolio must book (``close``) and whether it has
        (``released``): if this actor dies in between, the supervisor releases it instead.
        """
        if self.close_info is not None:
            return  # already logged and booked: a close is carried out once
        self.closed = True
        trip = round_trip(self.core, closed, data=data_source(self.settings))
        self.close_info = PositionReleased(
            position_id=self.position_id,
            realized_pnl=closed.realized_pnl,
            fees=closed.fees,
            unfilled=trip is None,
        )
        ops: list[StoreOp] = [AppendTrade(trade_record(trip))] if trip is not None else []
        await self._checkpoint(ops)
        if trip is not None:
            self.metrics.inc(
                "raytrader_trades_total", {"strategy": trip.strategy, "exit_reason": trip.exit_reason.value}
            )
        pool = None if self.retired else self.pool  # a pooled actor asks to rejoin the pool
        rejoin = await self.call_with_retry(
            PORTFOLIO, "on_position_report", dataclasses.replace(self.close_info, pool=pool)
        )
        self.released = True
        self.pool_returned = pool is not None and rejoin is True and not self.retired
        # the assignment goes with the release: restarted from here on, this actor is idle
        await self._checkpoint([DeleteRecord("portfolio", str(self.pool))] if self.pool_returned else [])
        feed = self.feed
        if feed is not None:
            await feed.unsubscribe.remote(self.actor_id)
        await self.beat()  # closed: the supervisor reaps the position's actor (or only its name)
        if self.pool_returned:
            self._spawn(self._back_to_pool(self.position_id))

    def _quiet_notice(self) -> QuietNotice:
        """The band within which this position's prices need not reach it: none while frozen (a
        freeze holds orders back, the shell must see what it would have done) or closed."""
        band = None if self.frozen or self.closed else self.core.quiet_band()
        return QuietNotice(band=band, at_ns=time.time_ns())

    async def _publish_quiet(self) -> None:
        """Tell the feed a band that changed other than by its prices, before this call returns:
        the calls that change it are awaited along the feed's own delivery (a paper fill, an exit
        signal), so its next batch already sees the new band."""
        notice = self._quiet_notice()
        if notice.band == self.quiet_sent:
            return
        feed = self.feed
        try:
            if feed is not None:
                await feed.quiet.remote(self.actor_id, notice)
            self.quiet_sent = notice.band
        except Exception as exc:  # a restarting feed holds no band: it sends every price again
            self._handles.clear()
            log.warning("position %s: quiet band not told to the feed (%s)", self.position_id, exc)

    async def _report(self) -> None:
        """Tell the portfolio what this position costs and is worth now."""
        mark = self._mark()
        portfolio = self.handle(PORTFOLIO)
        if mark is not None and portfolio is not None:
            await portfolio.on_position_report.remote(mark)

    def _mark(self) -> PositionMarked | None:
        """What this position costs and is worth now; None once closed (its release says it)."""
        if self.closed:
            return None
        pos = self.core.position
        return PositionMarked(
            position_id=self.position_id,
            notional=pos.entry_price * pos.entry_qty,
            entry_qty=pos.entry_qty,
            status=pos.status.value,
            realized_pnl=pos.realized_pnl,
            unrealized_pnl=pos.unrealized_pnl,
            mark_value=pos.mark_value,
            at_ns=time.time_ns(),
        )
