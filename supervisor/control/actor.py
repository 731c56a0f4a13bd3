"""The supervisor: one control loop that makes the actual system match the desired one.

Each tick compares the desired state (config: venues, feeds, strategies, the portfolio;
store: open positions, the orders they own) with the actual state (live actors and their
last heartbeats, the venues' open orders) and acts on the difference. Restarts, orphaned
orders and stuck positions are cases of that one loop, not three mechanisms:

- an actor with no fresh heartbeat is probed; a dead one is re-created from the store;
- an incarnation change in a heartbeat is a restart, counted against a budget per actor;
  a spent budget halts new entries and raises an alert metric;
- an open venue order owned by no live position is cancelled after a grace period;
- a position held in a transient state (entering, closing) past its timeout is re-driven,
  and escalated after repeated re-drives;
- a closed position's actor is reaped.

The decisions are :func:`supervisor.control.reconcile.reconcile`, a pure function; this actor
gathers the observation, pings the suspects, and carries the actions out. It also serves the
one Prometheus endpoint, built from the heartbeats' metric deltas.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any

import ray

from actors.domain.messages import PositionReleased
from actors.domain.names import PORTFOLIO, STORE, actor_key, market_venue, position_name, venue_name
from actors.domain.telemetry import Heartbeat
from actors.domain.topology import topology
from actors.shells.base import actor_options, remote, same_actor, try_actor, wall_ms
from actors.shells.feed import FeedActor
from actors.shells.portfolio import STOPPED, PortfolioActor
from actors.shells.position import PositionActor
from actors.shells.strategy import StrategyActor
from actors.shells.venue import VenueActor
from config.models import Mode, Settings
from supervisor.control.metrics import MetricsRegistry
from supervisor.control.notifier import (
    Notifier,
    SilenceWatch,
    halt_alert,
    no_activity_alert,
    orphan_alert,
    restart_budget_alert,
    stuck_alert,
    unreadable_position_alert,
)
from supervisor.control.reconcile import (
    Action,
    ActorView,
    CancelOrphan,
    ClearNoActivity,
    CountRestart,
    Desired,
    EscalateStuck,
    ExpectActor,
    ForgetActor,
    ForgetOrder,
    HaltBudgetSpent,
    NoteIncarnation,
    Observed,
    Policy,
    PositionEntry,
    RaiseNoActivity,
    ReapPosition,
    RecreateActor,
    RedrivePosition,
    ReleasePosition,
    RestartActor,
    VenueOrderView,
    WatchOrder,
    reconcile,
    shows_activity,
    suspects,
)
from supervisor.control.status import ActorRecord, status_snapshot
from supervisor.control.watchdog import HEALTH_KEY, HEALTH_KIND, health_record

log = logging.getLogger(__name__)

REDEMPTIONS_EVERY_S = 30.0


@ray.remote
class SupervisorActor:
    def __init__(self, settings: Settings) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.settings = settings
        self.registry = MetricsRegistry()
        self.notifier = Notifier(settings.notify)
        self.silence = SilenceWatch(settings.notify.silent_after_s)
        self.metrics_port = self.registry.serve(settings.metrics.host, settings.metrics.port)
        self.actors: dict[str, ActorRecord] = {}
        self.unowned_since: dict[str, float] = {}
        self.orphans: list[dict[str, Any]] = []
        self.stuck: list[dict[str, Any]] = []
        self.unreadable: dict[str, str] = {}
        self.redemptions: list[dict[str, Any]] = []
        """Live: winning shares of resolved Polymarket markets, to redeem on chain (read every 30 s)."""
        self.redemptions_read_wall = 0.0
        """Position actor name -> why its stored record does not decode (found at start)."""
        self.started = False
        self.reconciliation: dict[str, Any] = {}
        self.stopping = False
        self.frozen = False
        self.ticks = 0
        self.started_wall = time.time()
        self.last_activity_wall = self.started_wall
        """When something was last traded or evaluated (see reconcile.shows_activity)."""
        self.no_activity_since: float | None = None
        """While the no-activity alert is up: the wall time of the last activity before it."""
        self._handles: dict[str, Any] = {}
        self._loop_task: asyncio.Task[None] | None = None
        saved = ray.get(self._store().get.remote("portfolio", "supervisor")) or {}
        self.frozen = bool(saved.get("frozen", False))
        self.orphans = list(saved.get("orphans", []))
        self.stuck = list(saved.get("stuck", []))
        for name, counts in saved.get("actors", {}).items():
            record = self._expect(name, counts["kind"])
            record.restarts_total = int(counts["restarts"])
            record.recreated = int(counts.get("recreated", 0))
            record.incarnation = counts.get("incarnation")
        self._saved_digest = ""
        if saved.get("started"):
            self.started = True  # a restarted supervisor picks its loop back up
            self._loop_task = asyncio.get_event_loop().create_task(self._control_loop())

    # ------------------------------------------------------------------ plumbing

    def _store(self) -> Any:
        return ray.get_actor(STORE, namespace=self.settings.runtime.namespace)

    def _handle(self, name: str) -> Any | None:
        handle = self._handles.get(name)
        if handle is None:
            handle = try_actor(self.settings, name)
            if handle is not None:
                self._handles[name] = handle
        return handle

    def _expect(self, name: str, kind: str) -> ActorRecord:
        record = self.actors.get(name)
        if record is None:
            record = self.actors[name] = ActorRecord(name=name, kind=kind)
        return record

    def _record(self) -> dict[str, Any]:
        """What the supervisor must not forget across its own restart."""
        return {
            "started": self.started,
            "frozen": self.frozen,
            "orphans": self.orphans[-200:],
            "stuck": self.stuck[-200:],
            "actors": {
                r.name: {
                    "kind": r.kind,
                    "restarts": r.restarts_total,
                    "recreated": r.recreated,
                    "incarnation": r.incarnation,
                }
                for r in self.actors.values()
            },
        }

    async def _save(self) -> None:
        record = self._record()
        digest = json.dumps(record, sort_keys=True, default=str)
        if digest != self._saved_digest:
            await self._store().put.remote("portfolio", "supervisor", record)
            self._saved_digest = digest

    # ------------------------------------------------------------------ desired state

    def _static_actors(self) -> list[tuple[str, str]]:
        return [(a.name, a.kind) for a in topology(self.settings).supervised()]

    def _create(self, name: str, kind: str) -> Any:
        """Create one actor by its name; each class restores its own state from the store.

        Only small arguments (the settings, a name): Ray cannot restart an actor whose constructor
        arguments went to the object store once their owner, this process, has died; the venue and
        the portfolio learn the instruments themselves."""
        s = self.settings
        options = actor_options(s, name)
        if kind == "venue":
            return remote(VenueActor).options(**options).remote(s, actor_key(name))
        if kind == "portfolio":
            return remote(PortfolioActor).options(**options).remote(s)
        if kind == "strategy":
            return remote(StrategyActor).options(**options).remote(s, actor_key(name))
        if kind == "feed":
            return remote(FeedActor).options(**options).remote(s, actor_key(name))
        if kind == "position":
            return remote(PositionActor).options(**options).remote(s, actor_key(name))
        raise ValueError(f"unknown actor kind {kind!r}")

    async def _create_position(self, name: str, killed: Any | None = None) -> Any:
        """The actor of ``position:<id>``: the pooled actor its record names, if that one is alive
        (told to run it: idempotent), else a new actor of that name. A pooled actor gone for good
        never comes back, so this never makes two actors run one position.

        ``killed``: the handle this tick has just killed for good. Ray forgets its name only after
        the kill has gone through, so a lookup can still return it; handing it the position would
        leave the position without an actor for another round of grace periods."""
        record = await self._store().get.remote("position", actor_key(name)) or {}
        owner = record.get("actor")
        if owner and owner != name:
            handle = try_actor(self.settings, str(owner))
            if handle is not None and not same_actor(handle, killed):
                handle.assign.remote(actor_key(name))
                return handle
        return self._create(name, "position")

    async def start(self, clear_kill_switch: bool = False) -> dict[str, Any]:
        """Spawn every actor the config and the store call for (consumers before feeds).

        In live mode each venue is reconciled with the store before any feed starts: foreign
        open orders cancelled, intents refreshed, missing fills recorded.
        """
        for record in self.actors.values():  # a new run: its actors' first beats are not restarts
            record.incarnation = None
        self.last_activity_wall = time.time()  # a new run's silence counts from its start
        feeds: list[tuple[str, str]] = []
        for name, kind in self._static_actors():
            self._expect(name, kind)
            if kind == "feed":
                feeds.append((name, kind))
            elif self._handle(name) is None:
                self._handles[name] = self._create(name, kind)
        if self.settings.mode is Mode.LIVE:
            for venue in topology(self.settings).venues:
                handle = self._handle(venue_name(venue))
                if handle is not None:
                    self.reconciliation[venue] = await handle.reconcile_startup.remote()
        await self._fill_position_pool()
        for name, kind in feeds:
            if self._handle(name) is None:
                self._handles[name] = self._create(name, kind)
        if clear_kill_switch and self.frozen:
            log.warning("kill switch cleared at start by the operator")
            self.frozen = False
            portfolio = self._handle(PORTFOLIO)
            if portfolio is not None:
                await portfolio.resume.remote()
        await self._note_unreadable_positions()
        for pos in await self._store().position_index.remote():
            if PositionEntry.from_index(pos).needs_actor:
                name = position_name(pos["position_id"])
                self._expect(name, "position")
                if self._handle(name) is None:
                    self._handles[name] = await self._create_position(name)
                if pos.get("frozen") and not self.frozen:  # frozen only while the kill switch is latched
                    try:
                        await self._handles[name].freeze.remote(False)
                    except Exception as exc:  # it restarts from its record; the next start unfreezes it
                        log.error("position %s not unfrozen at start: %s", name, exc)
        self.started = True
        await self._save()
        if self._loop_task is None:
            self._loop_task = asyncio.get_event_loop().create_task(self._control_loop())
        return {
            "actors": sorted(self.actors),
            "kill_switch_latched": self.frozen,
            "metrics_port": self.metrics_port,
            "reconciliation": self.reconciliation,
        }

    async def _fill_position_pool(self, timeout_s: float = 60.0) -> None:
        """Pre-start the pooled position actors before the first event (``runtime.position_pool``):
        a slow start only delays the first entries, which then start an actor themselves."""
        portfolio = self._handle(PORTFOLIO)
        if self.settings.runtime.position_pool == 0 or portfolio is None:
            return
        try:
            ready = await asyncio.wait_for(portfolio.fill_pool.remote(), timeout=timeout_s)
        except Exception as exc:
            log.warning("position pool not filled before the feeds start (%s)", exc)
            return
        log.info("%d pooled position actors ready before the feeds start", ready)

    # ------------------------------------------------------------------ heartbeats

    async def heartbeat(self, beat: Heartbeat) -> None:
        """Record the beat; what it means (a restart, a stuck position) is decided each tick."""
        pool = beat.detail.get("pool") if beat.kind == "position" else None
        if pool and self.actors.pop(str(pool), None) is not None:  # a pooled actor now runs a position
            self._handles.pop(str(pool), None)
            self._forget_series("pool", str(pool))
        record = self._expect(beat.actor_id, beat.kind)
        record.last_beat_wall = time.time()
        self.silence.beat()
        if shows_activity(record.heartbeat, beat):
            self.last_activity_wall = record.last_beat_wall
        record.heartbeat = beat
        self.registry.apply(beat.metrics)

    # ------------------------------------------------------------------ the control loop

    async def _control_loop(self) -> None:
        interval = self.settings.supervision.heartbeat_interval_s
        while True:
            await asyncio.sleep(interval)
            if self.stopping:
                continue
            try:
                await self.tick()
            except Exception:
                log.exception("supervisor tick failed")
                self._handles.clear()

    async def tick(self) -> dict[str, Any]:
        """One reconciliation of desired and observed state; returns what it did.

        The decisions are :func:`supervisor.control.reconcile.reconcile` (pure); this method
        gathers the observation, pings the suspects, and carries the actions out.
        """
        self.ticks += 1
        done: dict[str, Any] = {"recreated": [], "orphans": [], "stuck": [], "reaped": []}
        policy = Policy.from_settings(self.settings)
        index = await self._store().position_index.remote()
        desired = Desired(
            actors=topology(self.settings).supervised(),
            positions=tuple(PositionEntry.from_index(p) for p in index),
        )
        answered = {
            name: await self._ping(name, policy)
            for name in suspects(desired, self._observe_actors(), time.time(), policy)
        }
        observed = replace(
            self._observe_actors(),
            venue_orders=await self._venue_open_orders(),
            answered=answered,
        )
        now = time.time()
        for action in reconcile(desired, observed, now, policy):
            await self._carry_out(action, now, policy, done)
        self._forget_old_restarts(now, policy)
        self._export_health(now, policy)
        silent = self.silence.check()
        if silent is not None:
            self.notifier.notify_soon(silent)
        await self._save()
        await self._write_health(now)
        return done

    async def _write_health(self, now: float, *, stopped: bool = False) -> None:
        """The record `raytrader watch` reads from outside Ray (supervisor.control.watchdog)."""
        if self.stopping and not stopped:
            return  # a tick that was under way when the stop came must not undo its record
        record = health_record(
            wall_ms=int(now * 1000),
            last_activity_ms=int(self.last_activity_wall * 1000),
            no_activity=self.no_activity_since is not None,
            kill_switch_latched=self.frozen,
            ticks=self.ticks,
            stopped=stopped,
        )
        await self._store().put.remote(HEALTH_KIND, HEALTH_KEY, record)

    async def _note_unreadable_positions(self) -> None:
        """Position records that do not decode get no actor: say so loudly (log, alert, metric,
        status) and keep their orders from the orphan hunt, since they may hold quantity."""
        bad = await self._store().unreadable_positions.remote()
        self.unreadable = {position_name(key): why for key, why in bad}
        self.registry.set("raytrader_unreadable_positions", float(len(self.unreadable)))
        for name, why in self.unreadable.items():
            self.actors.pop(name, None)  # never probed nor re-created: its actor could not restore
            log.critical("%s: its stored record does not decode (%s); not restored, orders kept", name, why)
            self.notifier.notify_soon(unreadable_position_alert(name, why))

    def _observe_actors(self) -> Observed:
        feeds = [r.heartbeat for r in self.actors.values() if r.kind == "feed"]
        return Observed(
            actors={name: self._view(record) for name, record in self.actors.items()},
            unowned_since=dict(self.unowned_since),
            started_wall=self.started_wall,
            last_activity_wall=self.last_activity_wall,
            no_activity_alerted=self.no_activity_since is not None,
            replay_done=bool(feeds) and all(b is not None and b.detail.get("done") for b in feeds),
            unreadable=frozenset(self.unreadable),
        )

    def _view(self, record: ActorRecord) -> ActorView:
        beat = record.heartbeat
        detail = beat.detail if beat is not None else {}
        since = detail.get("status_since_ms")
        return ActorView(
            name=record.name,
            kind=record.kind,
            created_wall=record.created_wall,
            last_beat_wall=record.last_beat_wall,
            incarnation=record.incarnation,
            beat_incarnation=beat.incarnation if beat is not None else None,
            status=detail.get("status"),
            status_since_ms=int(since) if since else None,
            unarmed_since_ms=detail.get("unarmed_since_ms"),
            ready=bool(detail.get("ready", True)),
            owned_orders=tuple(beat.owned_orders) if beat is not None else (),
            restarts=tuple(record.restarts),
            budget_spent=record.budget_spent,
            redrives=record.redrives,
            last_redrive_wall=record.last_redrive_wall,
            escalated=record.escalated,
        )

    async def _venue_open_orders(self) -> list[VenueOrderView]:
        """Every venue's open orders; a venue that does not answer is skipped this tick."""
        orders: list[VenueOrderView] = []
        for venue in topology(self.settings).venues:
            handle = self._handle(venue_name(venue))
            if handle is None:
                continue
            try:
                found = await handle.open_orders.remote()
            except Exception:
                continue
            orders += [VenueOrderView(o.client_id, o.market, o.position_id) for o in found]
        return orders

    async def _ping(self, name: str, policy: Policy) -> bool:
        """Does a suspect answer? No handle, an error or a timeout: it does not."""
        handle = self._handle(name)
        if handle is None:
            return False
        try:
            await asyncio.wait_for(handle.ping.remote(), timeout=max(2.0, policy.suspect_after_s))
        except Exception:
            return False
        return True

    def _forget_old_restarts(self, now: float, policy: Policy) -> None:
        """Restarts older than the budget window no longer count (bookkeeping, not a decision)."""
        cutoff = now - policy.restart_window_s
        for record in self.actors.values():
            while record.restarts and record.restarts[0] < cutoff:
                record.restarts.popleft()

    async def _carry_out(self, action: Action, now: float, policy: Policy, done: dict[str, Any]) -> None:
        """Carry out one decision of the reconciler."""
        match action:
            case ExpectActor(name, kind):
                self._expect(name, kind)
            case ReleasePosition(position_id, close):
                await self._release(position_id, close)
            case ReapPosition(name, kill):
                done["reaped"] += await self._reap(name, kill)
            case ForgetActor(name):
                self._forget_actor(name)
            case NoteIncarnation(name, incarnation):
                self.actors[name].incarnation = incarnation
            case CountRestart(name, kind, previous, incarnation):
                self._count_restart(name, kind, now)
                self.actors[name].incarnation = incarnation
                log.warning("%s restarted (incarnation %s -> %s)", name, previous, incarnation)
            case RecreateActor(name, kind):
                await self._recreate(name, kind, now)
                done["recreated"].append(name)
            case RestartActor(name):
                handle = self._handle(name)
                if handle is not None:
                    self._stuck(self.actors[name], "stale_heartbeat", {})
                    ray.kill(handle, no_restart=False)  # Ray restarts it; its constructor reconciles
            case HaltBudgetSpent(name, kind, restarts):
                self._halt_budget_spent(name, kind, restarts, policy)
            case RedrivePosition(name, status, held_ms):
                self._redrive(name, status, held_ms, now)
                done["stuck"].append(name)
            case EscalateStuck(name, status, redrives):
                self._escalate(name, status, redrives)
            case WatchOrder(client_id):
                self.unowned_since.setdefault(client_id, now)
            case ForgetOrder(client_id):
                self.unowned_since.pop(client_id, None)
            case CancelOrphan(client_id, market, owner):
                if await self._cancel_orphan(client_id, market, owner):
                    done["orphans"].append(client_id)
            case RaiseNoActivity(silent_s, since_wall):
                self._raise_no_activity(silent_s, since_wall, policy)
            case ClearNoActivity():
                self._clear_no_activity(policy)
            case _:
                raise TypeError(f"unknown supervisor action {action!r}")

    def _count_restart(self, name: str, kind: str, now: float) -> None:
        record = self.actors[name]
        record.restarts_total += 1
        record.restarts.append(now)
        self.registry.inc("raytrader_actor_restarts_total", {"kind": kind, "actor": name})

    async def _recreate(self, name: str, kind: str, now: float) -> None:
        """Kill what is left of a gone actor and create it again; it restores from the store."""
        record = self.actors[name]
        handle = self._handle(name)
        self._handles.pop(name, None)
        if handle is not None:
            with contextlib.suppress(Exception):
                ray.kill(handle, no_restart=True)
        log.error(
            "%s is gone (last heartbeat %s s ago): re-creating it from the store",
            name,
            None if record.last_beat_wall is None else now - record.last_beat_wall,
        )
        if kind == "position":
            self._handles[name] = await self._create_position(name, killed=handle)
        else:
            self._handles[name] = self._create(name, kind)
        record.recreated += 1
        self._count_restart(name, kind, now)
        record.last_beat_wall = time.time()  # give the new actor a full grace period

    def _halt_budget_spent(self, name: str, kind: str, restarts: int, policy: Policy) -> None:
        self.actors[name].budget_spent = True
        self.registry.inc("raytrader_restart_budget_spent_total", {"kind": kind})
        log.error(
            "%s spent its restart budget (%d in %.0fs): halting entries",
            name,
            restarts,
            policy.restart_window_s,
        )
        self.notifier.notify_soon(restart_budget_alert(name, kind, restarts, policy.restart_window_s))
        portfolio = self._handle(PORTFOLIO)
        if portfolio is not None:
            portfolio.halt.remote(f"restart budget spent by {name}")

    def _stuck(self, record: ActorRecord, cause: str, detail: dict[str, Any]) -> None:
        entry = {"position": record.name, "cause": cause, "at_ms": wall_ms(), **detail}
        self.stuck.append(entry)
        self.registry.inc("raytrader_stuck_positions_total", {"cause": cause})
        self.notifier.notify_soon(stuck_alert(record.name, cause, **detail))
        log.warning("stuck position %s (%s): re-driving %s", record.name, cause, detail)

    def _redrive(self, name: str, status: str, held_ms: int, now: float) -> None:
        """Ask a position held in a transient state to reconcile with the venue again."""
        record = self.actors[name]
        record.last_redrive_wall = now
        record.redrives += 1
        self._stuck(record, "transient_timeout", {"status": status, "held_ms": held_ms})
        handle = self._handle(name)
        if handle is not None:
            handle.redrive.remote()

    def _escalate(self, name: str, status: str, redrives: int) -> None:
        self.actors[name].escalated = True
        self.registry.inc("raytrader_stuck_positions_total", {"cause": "escalated"})
        self.notifier.notify_soon(
            stuck_alert(name, "transient_timeout", escalated=True, status=status, redrives=redrives)
        )
        log.error("position %s still %s after %d re-drives: escalated", name, status, redrives)

    async def _cancel_orphan(self, client_id: str, market: str, owner: str | None) -> bool:
        venue = market_venue(market)
        handle = self._handle(venue_name(venue))
        if handle is None:
            return False
        await handle.cancel.remote(client_id)
        self.unowned_since.pop(client_id, None)
        self.orphans.append({"client_id": client_id, "market": market, "owner": owner, "at_ms": wall_ms()})
        self.registry.inc("raytrader_orphan_orders_total")
        self.notifier.notify_soon(orphan_alert(client_id, market, owner))
        log.warning("orphaned order %s on %s (owner %s) cancelled", client_id, market, owner)
        return True

    async def _release(self, position_id: str, close: Mapping[str, Any]) -> None:
        """A closed position whose actor did not live to tell the portfolio: tell it, once."""
        portfolio = self._handle(PORTFOLIO)
        if portfolio is None:
            return
        await portfolio.on_position_report.remote(PositionReleased.from_record(position_id, dict(close)))
        await self._store().mark_released.remote(position_id)
        log.warning("released closed position %s to the portfolio on its actor's behalf", position_id)

    async def _reap(self, name: str, kill: bool = True) -> list[str]:
        """Forget a closed position's actor and kill it, unless it went back to the pool. The kill
        waits for the actor's consent (:meth:`PositionActor.retire`): this tick's observation may be
        old, and a pooled actor may meanwhile run a later position under another name."""
        record = self.actors.pop(name, None)
        handle = self._handles.pop(name, None)
        if kill and (handle := handle or try_actor(self.settings, name)) is not None:
            with contextlib.suppress(Exception):
                if await asyncio.wait_for(handle.retire.remote(actor_key(name)), timeout=5.0):
                    ray.kill(handle, no_restart=True)
        if record is not None:
            self._forget_series(record.kind, name)
        return [name]

    def _forget_series(self, kind: str, name: str) -> None:
        """An actor that is gone on purpose (reaped, a previous pool) has no health series left:
        at 0 they would raise RaytraderActorDown for ever."""
        labels = {"kind": kind, "actor": name}
        self.registry.forget("raytrader_actor_up", labels)
        self.registry.forget("raytrader_heartbeat_age_seconds", labels)

    def _forget_actor(self, name: str) -> None:
        record = self.actors.pop(name, None)
        self._handles.pop(name, None)
        if record is not None:
            self._forget_series(record.kind, name)
            log.info("%s forgotten: silent past the stale limit, replaced by the portfolio", name)

    def _raise_no_activity(self, silent_s: float, since_wall: float, policy: Policy) -> None:
        """Nothing traded nor evaluated for too long: the metric, the log, the notifier; once."""
        self.no_activity_since = since_wall
        self.registry.set("raytrader_no_activity", 1.0)
        limit = policy.no_activity_s or 0.0
        log.error("no trade and no evaluated signal for %.0fs (limit %.0fs)", silent_s, limit)
        self.notifier.notify_soon(no_activity_alert(silent_s, limit, int(since_wall * 1000)))

    def _clear_no_activity(self, policy: Policy) -> None:
        since = self.no_activity_since if self.no_activity_since is not None else self.last_activity_wall
        self.no_activity_since = None
        self.registry.set("raytrader_no_activity", 0.0)
        lasted = max(0.0, self.last_activity_wall - since) * policy.activity_clock_rate
        log.warning("activity resumed after %.0fs without a trade or an evaluated signal", lasted)
        alert = no_activity_alert(lasted, policy.no_activity_s or 0.0, int(since * 1000), resumed=True)
        self.notifier.notify_soon(alert)

    def _export_health(self, now: float, policy: Policy) -> None:
        fresh = self.settings.supervision.heartbeat_interval_s * self.settings.supervision.suspect_after_beats
        activity_age = max(0.0, now - self.last_activity_wall) * policy.activity_clock_rate
        self.registry.set("raytrader_activity_age_seconds", activity_age)
        for record in self.actors.values():
            labels = {"kind": record.kind, "actor": record.name}
            age = None if record.last_beat_wall is None else now - record.last_beat_wall
            self.registry.set("raytrader_actor_up", 1.0 if age is not None and age <= fresh else 0.0, labels)
            if age is not None:
                self.registry.set("raytrader_heartbeat_age_seconds", age, labels)

    # ------------------------------------------------------------------ operator commands

    async def _pending_redemptions(self, now: float) -> list[dict[str, Any]]:
        """What resolved in our favour and waits for an on-chain redemption this project cannot
        send (live only: paper books the payout as cash), with its metric."""
        if self.settings.mode is Mode.LIVE and now - self.redemptions_read_wall >= REDEMPTIONS_EVERY_S:
            self.redemptions_read_wall = now
            try:
                self.redemptions = await self._store().pending_redemptions.remote()
            except Exception as exc:  # the store restarting: keep the last list
                log.warning("pending redemptions not read: %s", exc)
            total = sum((Decimal(r["usdc"]) for r in self.redemptions), Decimal(0))
            self.registry.set("raytrader_pending_redemptions_usdc", float(total))
        return self.redemptions

    async def status(self) -> dict[str, Any]:
        now = time.time()
        return status_snapshot(
            self.actors.values(),
            now,
            started=self.started,
            frozen=self.frozen,
            metrics_port=self.metrics_port,
            orphans=self.orphans,
            stuck=self.stuck,
            unreadable=self.unreadable,
            redemptions=await self._pending_redemptions(now),
            ticks=self.ticks,
        )

    async def kill_switch(self, reason: str = "kill switch", flatten: bool = False) -> dict[str, Any]:
        """Halt entries, freeze positions (no new orders), cancel every open order; within a second.

        The kill switch is latched: it survives restarts and stops until an operator clears it
        (``raytrader resume``, or ``raytrader run --clear-kill-switch``). With ``flatten``, once
        everything is cancelled every open position closes at market within its slippage cap
        (:meth:`PositionActor.flatten`): those positions are unfrozen to let their closes out,
        the latch (no entries) stays.
        """
        self.frozen = True
        await self._save()
        cancelled, failed = await self._quiesce(reason, latched=True)
        result: dict[str, Any] = {
            "halted": reason,
            "cancelled": cancelled,
            "cancel_failed": failed,
            "latched": True,
        }
        if flatten:
            result.update(await self._flatten())
        log.warning(
            "kill switch: entries halted, %d orders cancelled (failed at %s), flattened %s, failed %s",
            cancelled,
            failed or "no venue",
            result.get("flattened"),
            result.get("flatten_failed"),
        )
        shown = ("cancelled", "cancel_failed", "flattened", "flatten_failed")
        details = {k: v for k, v in result.items() if k in shown}
        self.notifier.notify_soon(halt_alert(reason, **details))
        return result

    async def _flatten(self) -> dict[str, Any]:
        """Ask every open position of the store to close now (one whose actor is gone is created
        first: it restores from the store); each one's status after its call, and what failed."""
        index = await self._store().position_index.remote()
        handles: dict[str, Any] = {}
        for name in (position_name(p["position_id"]) for p in index if p["open"]):
            self._expect(name, "position")
            handle = self._handle(name)
            if handle is None:
                handle = self._handles[name] = await self._create_position(name)
            handles[name] = handle
        answers = await asyncio.gather(
            *(h.flatten.remote() for h in handles.values()), return_exceptions=True
        )
        flattened: dict[str, str] = {}
        failed: dict[str, str] = {}
        for name, answer in zip(handles, answers, strict=True):
            if isinstance(answer, BaseException):
                failed[name] = f"{type(answer).__name__}: {answer}"
            else:
                flattened[name] = str(answer["status"])
        return {"flattened": flattened, "flatten_failed": failed}

    async def _quiesce(self, reason: str, *, latched: bool) -> tuple[int, list[str]]:
        """Halt entries, freeze every position and cancel every open order: how many were cancelled,
        and the venues whose cancel failed (a venue down must not keep the others' orders open)."""
        portfolio = self._handle(PORTFOLIO)
        calls = [portfolio.halt.remote(reason, latched)] if portfolio is not None else []
        for record in self.actors.values():
            if record.kind == "position":
                handle = self._handle(record.name)
                if handle is not None:
                    calls.append(handle.freeze.remote(True, latched))
        await asyncio.gather(*calls, return_exceptions=True)
        cancelled = 0
        failed: list[str] = []
        for venue in topology(self.settings).venues:
            name = venue_name(venue)
            handle = self._handle(name)
            if handle is None:
                failed.append(venue)
                continue
            try:
                cancelled += len(await handle.cancel_all.remote())
            except Exception as exc:
                failed.append(venue)
                self._handles.pop(name, None)  # it may come back under its name: look it up again
                log.error("%s: %s could not cancel its open orders (%s)", reason, name, exc)
                continue
            try:  # what filled before the cancel reaches its positions before the actors go
                await handle.sync.remote()
            except Exception as exc:
                log.warning(
                    "%s: %s's last fill poll failed (%s); positions catch up when restored", reason, name, exc
                )
        return cancelled, failed

    async def resume(self) -> dict[str, Any]:
        """Clear the kill switch: entries allowed again, positions unfrozen (they re-arm their exits)."""
        was = self.frozen
        self.frozen = False
        await self._save()
        portfolio = self._handle(PORTFOLIO)
        calls = [portfolio.resume.remote()] if portfolio is not None else []
        for record in self.actors.values():
            if record.kind == "position":
                handle = self._handle(record.name)
                if handle is not None:
                    calls.append(handle.freeze.remote(False))
        results = await asyncio.gather(*calls, return_exceptions=True)
        failed = [str(r) for r in results if isinstance(r, BaseException)]
        log.warning("kill switch cleared (was latched: %s)", was)
        return {"was_latched": was, "unfrozen_positions": len(calls) - 1 - len(failed), "failed": failed}

    async def stop(self, cancel_orders: bool = True) -> dict[str, Any]:
        """Pause the feeds, flush strategy state, and (by default) cancel every open order.

        A stop is not a kill switch: the pause it puts on entries and positions is not
        persisted, so the next run on the same state resumes trading and re-arms every exit.
        """
        calls = []
        for name, kind in self._static_actors():
            handle = self._handle(name)
            if handle is None:
                continue
            if kind == "feed":
                calls.append(handle.pause.remote(True))
            elif kind == "strategy":
                calls.append(handle.checkpoint.remote())
        await asyncio.gather(*calls, return_exceptions=True)
        result: dict[str, Any] = {"cancelled": 0}
        if cancel_orders:
            reason = "kill switch" if self.frozen else STOPPED
            cancelled, failed = await self._quiesce(reason, latched=self.frozen)
            result = {"cancelled": cancelled, "cancel_failed": failed}
        self.stopping = True
        for record in self.actors.values():  # the next run's actors are new ones, not restarts
            record.incarnation = None
        self.started = False  # and the next run's supervisor waits for its start
        await self._save()
        await self._write_health(time.time(), stopped=True)  # `raytrader watch`: silent on purpose
        await self.notifier.close()
        return result

    async def pid(self) -> int:
        import os

        return os.getpid()

    async def ping(self) -> str:
        return "supervisor"

    async def metrics_text(self) -> str:
        from prometheus_client import generate_latest

        return generate_latest(self.registry.registry).decode()

    async def shutdown_metrics(self) -> None:
        self.registry.shutdown()
