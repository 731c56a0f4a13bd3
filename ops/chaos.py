"""Chaos runs: the default portfolio under faults injected on a seeded schedule, judged at the
end by every invariant against the paper venues' ground truth.

What runs is what ``raytrader run`` runs (config/default.toml: four strategies, 40/30/10/10, the
paper Binance venue and the Polymarket side on the bundled replay data), with a tighter exit plan
so that round trips complete within minutes, the fault hooks on (``runtime.fault_injection``,
refused in live mode), and the replay paced so that the shortest feed's market data (the
Polymarket day) lasts the run: at full speed it would end within minutes and leave the faults an
idle system. By default it runs on a multi-node local Ray
cluster started by a child driver process (``raytrader run --address``), so killing the driver
and losing a node are faults too; ``cluster=False`` runs in the caller's Ray instance instead,
this process being the driver (the tests).

The fault schedule and its kinds: :mod:`ops.chaos_schedule`; the report: :mod:`ops.chaos_report`.

Each fault's recovery is timed: an actor back (a new process), the system back with every actor
beating, the store's full map grown and the write done, a venue fault's aftermath healed (every
open position's exits at the venue again). The verdict: every invariant of
:func:`supervisor.control.invariants.check_invariants` after a final stop, and the checks that
hold only while the system runs (exits at the venue, nothing frozen without the latch), each
given one detection interval; plus what was seen during the run (the latch held across each
restart, exits back at the venue within one detection interval of each venue fault).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ray

from actors.data.replay import event_time
from actors.domain.model import Instrument, Order
from actors.domain.names import STORE, SUPERVISOR, strategy_name, venue_name
from actors.domain.topology import topology
from actors.shells.base import get_actor, try_actor
from actors.shells.feed import replay_source
from actors.shells.store import store_path
from actors.venues.faults import CALL_FAULTS, WINDOW_FAULTS
from config.dump import dump_settings
from config.loader import PROJECT_ROOT, load_settings
from config.models import Settings
from ops.chaos_report import ChaosReport
from ops.chaos_schedule import ACTOR_FAULTS, CLUSTER_FAULTS, SYSTEM_FAULTS, FaultEvent, schedule
from supervisor.control import runtime
from supervisor.control.invariants import InvariantResult, check_invariants, exits_at_venue

log = logging.getLogger(__name__)

REPLAY_DEPTH = 4
"""Strategy checkpoints kept, one per fault: a replay rewinds to the oldest."""
POLL_S = 0.25


def trading_span_s(settings: Settings) -> float:
    """The shortest feed's span of market data (listings aside), in seconds of data time."""
    spans: list[float] = []
    for feed in topology(settings).feeds:
        _known, events = replay_source(settings, feed)
        first: int | None = None
        last = 0
        for event in events:
            if not isinstance(event, Instrument):
                last = event_time(event)
                first = last if first is None else first
        if first is not None:
            spans.append((last - first) / 1000.0)
    return min(spans, default=0.0)


def chaos_settings(
    state_dir: Path, namespace: str, *, spread: bool = True, speed: float | str = "max"
) -> Settings:
    """The default portfolio (what ``raytrader run`` runs) with the fault hooks on, a tighter exit
    plan for the Binance strategies (round trips within minutes), no daily-loss halt (both venues
    keep trading), quick supervision, and the replay at ``speed``."""
    overrides = [
        f"replay.speed={json.dumps(speed)}",
        f"state_dir={json.dumps(str(state_dir))}",
        f"runtime.namespace={json.dumps(namespace)}",
        f"runtime.spread_actors={'true' if spread else 'false'}",
        "runtime.fault_injection=true",
        "metrics.port=0",
        "supervision.heartbeat_interval_s=0.5",
        "supervision.orphan_grace_s=2.0",
        "supervision.stuck_transient_s=10.0",
        "supervision.restart_budget=1000",
        # polymarket_lag loses its 5% of a day within the bundled day's first hours: the daily-loss
        # halt would then stop its entries for the rest of the run, and the faults would hit one venue
        "portfolio.max_daily_loss_fraction=1.0",
        "exits.target_one_pct=0.002",
        "exits.target_two_pct=0.004",
        "exits.stop_pct=0.003",
        "exits.trailing_activate_pct=0.01",
        "exits.trailing_lock_pct=0.003",
    ]
    return load_settings(None, env={}, overrides=overrides)


class ChaosRun:
    """One seeded chaos run; ``run()`` returns the report (``report.ok`` is the verdict)."""

    def __init__(
        self,
        seed: int,
        duration_s: float,
        kinds: tuple[str, ...],
        work_dir: Path,
        workers: int = 2,
        per_minute: float = 12.0,
        *,
        events: Sequence[FaultEvent] | None = None,
        cluster: bool = True,
        speed: float | str | None = None,
    ) -> None:
        self.seed = seed
        self.duration_s = duration_s
        self.kinds = kinds
        self.work_dir = work_dir
        self.workers = workers
        self.cluster = cluster
        self.speed = speed
        """The replay's speed; ``None``: paced so that the shortest feed's market data lasts the
        run (at full speed the bundled data would end long before it, and faults would hit an
        idle system)."""
        self.events = list(events) if events is not None else schedule(seed, duration_s, kinds, per_minute)
        if not cluster and any(e.kind in CLUSTER_FAULTS for e in self.events):
            raise ValueError(f"faults {', '.join(CLUSTER_FAULTS)} need the harness's own cluster")
        self.rng = random.Random(seed ^ 0x5EED)
        self.report = ChaosReport(seed=seed, duration_s=duration_s)
        self.driver: subprocess.Popen[bytes] | None = None
        self.drivers = 0
        self.settings: Settings | None = None
        self.address = ""
        self.nodes: list[Any] = []
        self.cluster_handle: Any = None
        self.checkpoints: dict[str, deque[dict[str, Any]]] = {}
        self.during: dict[str, list[str]] = {"latch": [], "exits": []}
        """What was seen wrong while the system ran, by check: the latch across each restart,
        exits back at the venue within one detection interval of each venue fault."""
        self.during_checked: dict[str, int] = {"latch": 0, "exits": 0}
        self._refused_banked = 0
        self._refused_seen = 0
        self.started = time.monotonic()

    @property
    def cfg(self) -> Settings:
        assert self.settings is not None, "the run has not started"
        return self.settings

    @property
    def namespace(self) -> str:
        return self.cfg.runtime.namespace

    # ------------------------------------------------------------------ setup

    def run(self) -> ChaosReport:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if self.cluster:
            self._start_cluster()
        try:
            namespace = f"chaos-{self.seed}-{os.getpid()}"
            state = self.work_dir / "state"
            speed = self.speed
            if speed is None:
                span = trading_span_s(chaos_settings(state, namespace))
                speed = round(max(1.0, span / max(1.0, self.duration_s)), 1)
            self.settings = chaos_settings(state, namespace, spread=self.cluster, speed=speed)
            self.config_path = self.work_dir / "chaos.toml"
            self.config_path.write_text(dump_settings(self.settings))
            self._start()
            self._wait("the system to start", self._all_up, 180)
            self._drive()
            self._finish()
        finally:
            self._stop_driver()
            if self.settings is not None:
                with contextlib.suppress(Exception):
                    runtime.stop_system(self.settings, cancel_orders=True, teardown=True)
            if self.cluster:
                ray.shutdown()
                self.cluster_handle.shutdown()
        return self.report

    def _start_cluster(self) -> None:
        from ray.cluster_utils import Cluster

        cluster = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": 1,
                "resources": {runtime.STORE_RESOURCE: 1, runtime.HEAD_RESOURCE: 1},
                "include_dashboard": False,
                "object_store_memory": 100 * 2**20,
                "_system_config": dict(runtime.RAY_SYSTEM_CONFIG),  # the nodes take the head's
            },
        )
        self.cluster_handle = cluster
        self.nodes = [
            cluster.add_node(num_cpus=1, object_store_memory=100 * 2**20) for _ in range(self.workers)
        ]
        self.address = cluster.address
        ray.init(address=cluster.address, logging_level=logging.WARNING, log_to_driver=False)

    def _start(self) -> None:
        """``raytrader run``: a driver process attached to the cluster, or (in-process) this one."""
        if not self.cluster:
            runtime.start_system(self.cfg)
            return
        self.drivers += 1
        cmd = [
            sys.executable,
            "-m",
            "supervisor.cli",
            "run",
            "--address",
            self.address,
            "-c",
            str(self.config_path),
            "--duration",
            "100000",
        ]
        with (self.work_dir / f"driver-{self.drivers}.log").open("wb") as out:
            self.driver = subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT)

    def _stop_driver(self) -> None:
        if self.driver is not None and self.driver.poll() is None:
            self.driver.kill()
            self.driver.wait(timeout=10)

    # ------------------------------------------------------------------ the schedule

    def _drive(self) -> None:
        started = self.started = time.monotonic()
        for event in self.events:
            wait = started + event.at_s - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # the schedule's clock: the fault is due then
            self._bank_refusals()
            self._remember_strategies()
            try:
                self._inject(event)
            except Exception as exc:  # a fault that could not be injected is reported, not fatal
                log.warning("chaos: %s at %.1fs not injected: %r", event.kind, event.at_s, exc)
                self._skip(event.kind, repr(exc))
        rest = started + self.duration_s - time.monotonic()
        if rest > 0:
            time.sleep(rest)

    def _count(self, kind: str) -> None:
        self.report.faults[kind] = self.report.faults.get(kind, 0) + 1

    def _clock_s(self) -> float:
        """Seconds since the schedule started (where each fault happened, in the report)."""
        return round(time.monotonic() - self.started, 3)

    def _recovered(self, kind: str, actor: str, seconds: float, **detail: Any) -> None:
        done = self._clock_s()
        self.report.recoveries.append(
            {"kind": kind, "actor": actor, "seconds": round(seconds, 3), "done_at_s": done, **detail}
        )

    def _skip(self, kind: str, why: str) -> None:
        self.report.skipped.append({"kind": kind, "at_s": self._clock_s(), "why": why})

    def _status(self) -> dict[str, Any] | None:
        try:
            return runtime.status(self.cfg)
        except Exception:
            return None

    def _wait(self, what: str, condition: Callable[[], Any], timeout_s: float) -> float:
        """Poll ``condition`` (other processes' state has no event to await) until it holds."""
        begun = time.monotonic()
        while time.monotonic() - begun < timeout_s:
            with contextlib.suppress(Exception):
                if condition():
                    return time.monotonic() - begun
            time.sleep(0.05)
        raise TimeoutError(f"chaos: {what} not within {timeout_s}s")

    def _actor(self, kind: str) -> str | None:
        if kind in (STORE, SUPERVISOR):
            return kind  # a singleton's name is its kind
        snapshot = self._status()
        names = sorted(a["name"] for a in (snapshot or {}).get("actors", []) if a["kind"] == kind)
        return self.rng.choice(names) if names else None

    def _handle(self, name: str) -> Any:
        """By the runtime's own lookup: ``position:<id>`` may be a pooled actor (``pool:<n>``)."""
        return get_actor(self.cfg, name)

    def _pid(self, name: str) -> int:
        return int(str(ray.get(self._handle(name).pid.remote(), timeout=5)))

    def _inject(self, event: FaultEvent) -> None:
        kind = event.kind
        if kind in ACTOR_FAULTS:
            self._kill_actor(kind, event.target)
        elif kind == "driver_kill":
            self._kill_driver()
        elif kind == "node_loss":
            self._lose_node()
        elif kind in SYSTEM_FAULTS:
            self._stop_and_resume(kind, kill_switch=kind == "kill_switch_resume")
        elif kind == "strategy_replay":
            self._replay_strategy()
        elif kind == "store_full":
            self._fill_store()
        elif kind in WINDOW_FAULTS:
            self._venue_window(kind, event.window_s)
        elif kind in CALL_FAULTS:
            self._venue_calls(kind)
        else:
            raise ValueError(f"unknown fault kind {kind!r}")

    # ------------------------------------------------------------------ actors and the cluster

    def _kill_actor(self, kind: str, target: str) -> None:
        name = self._actor(target)
        if name is None:
            self._skip(kind, f"no {target} actor")
            return
        handle = self._handle(name)
        pid = self._pid(name)
        if kind == "sigkill":
            os.kill(pid, signal.SIGKILL)
        else:
            ray.kill(handle, no_restart=False)
        self._count(kind)

        def back() -> bool:  # a position that closed meanwhile is reaped, not brought back
            return (target == "position" and self._reaped(name)) or self._pid(name) != pid

        seconds = self._wait(f"{name} back", back, 60)
        self._recovered(kind, name, seconds)

    def _reaped(self, name: str) -> bool:
        snapshot = self._status()
        return snapshot is not None and name not in {a["name"] for a in snapshot["actors"]}

    def _kill_driver(self) -> None:
        assert self.driver is not None
        self.driver.send_signal(signal.SIGKILL)
        self.driver.wait(timeout=10)
        self._count("driver_kill")
        began = time.monotonic()
        self._start()
        self._wait("the system after a driver kill", lambda: self._status() is not None, 60)
        self._recovered("driver_kill", "driver", time.monotonic() - began)

    def _on_node(self, node_id: str) -> dict[str, int]:
        """The actors running on a node, with their processes (the head's singletons never are)."""
        found: dict[str, int] = {}
        for actor in (self._status() or {}).get("actors", []):
            with contextlib.suppress(Exception):
                handle = self._handle(actor["name"])
                if ray.get(handle.node_id.remote(), timeout=5) == node_id:
                    found[actor["name"]] = self._pid(actor["name"])
        return found

    def _lose_node(self) -> None:
        node = self.nodes.pop(self.rng.randrange(len(self.nodes)))
        lost = self._on_node(node.node_id)
        began = time.monotonic()
        self.cluster_handle.remove_node(node, allow_graceful=False)
        self._count("node_loss")
        self.nodes.append(self.cluster_handle.add_node(num_cpus=1, object_store_memory=100 * 2**20))

        waiting: list[str] = []

        def back() -> bool:  # heartbeats stay fresh for a while: wait for the lost actors' new processes
            waiting[:] = [f"{name} (lost, not back)" for name in lost]
            for name, pid in lost.items():
                if not (name.startswith("position:") and self._reaped(name)) and self._pid(name) == pid:
                    waiting[:] = [f"{name} (lost, still pid {pid})"]
                    return False
            waiting[:] = self._stale()
            return not waiting

        try:
            self._wait("every actor up after a node loss", back, 120)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; waiting for {waiting[:10]}") from None
        self._recovered("node_loss", "node", time.monotonic() - began, actors=len(lost))

    def _all_up(self) -> bool:
        return not self._stale()

    def _stale(self) -> list[str]:
        """The actors not beating lately (with their heartbeat's age), or why none can be judged."""
        snapshot = self._status()
        if snapshot is None or not snapshot.get("started"):
            return ["the system (no status, or not started)"]
        s = self.cfg.supervision
        fresh = 3 * s.heartbeat_interval_s * s.suspect_after_beats
        return [
            f"{a['name']} (heartbeat age {a['heartbeat_age_s']})"
            for a in snapshot["actors"]
            if a["heartbeat_age_s"] is None or a["heartbeat_age_s"] >= fresh
        ]

    # ------------------------------------------------------------------ the whole system

    def _stop_and_resume(self, kind: str, *, kill_switch: bool) -> None:
        """``raytrader stop`` then ``raytrader run`` on the same state; with ``kill_switch``, the
        switch is thrown first, must still be latched after the restart, and is then cleared
        (``raytrader resume``) as an operator would."""
        began = time.monotonic()
        if kill_switch:
            ray.get(runtime.supervisor_handle(self.cfg).kill_switch.remote(), timeout=30)
        self._bank_refusals()
        self._stop_driver()
        runtime.stop_system(self.cfg, cancel_orders=True, teardown=True)
        self._count(kind)
        self._wait("the stopped system's actors gone", self._gone, 60)
        self._start()
        self._wait("the system back after a stop", lambda: (self._status() or {}).get("started"), 120)
        if kill_switch:
            self.during_checked["latch"] += 1
            snapshot = self._status() or {}
            if not snapshot.get("kill_switch_latched"):
                self.during["latch"].append(f"{kind}: the kill switch was not latched after the restart")
            ray.get(runtime.supervisor_handle(self.cfg).resume.remote(), timeout=60)
        self._wait("every actor up, nothing frozen", lambda: self._all_up() and not self._frozen(), 120)
        self._recovered(kind, "system", time.monotonic() - began)

    def _gone(self) -> bool:
        return all(try_actor(self.cfg, name) is None for name in (STORE, SUPERVISOR))

    def _frozen(self) -> list[str]:
        snapshot = self._status() or {}
        return list(snapshot.get("frozen_positions", []))

    # ------------------------------------------------------------------ state

    def _remember_strategies(self) -> None:
        """Keep each strategy's last few checkpoints: a replay rewinds one to the oldest."""
        store = self._handle(STORE)
        for name in topology(self.cfg).strategies:
            with contextlib.suppress(Exception):
                saved = ray.get(store.get.remote("strategy", name), timeout=10)
                history = self.checkpoints.setdefault(name, deque(maxlen=REPLAY_DEPTH))
                if saved is not None and (
                    not history or history[-1].get("last_event_ms") != saved.get("last_event_ms")
                ):
                    history.append(saved)

    def _replay_candidates(self) -> list[str]:
        """Strategies whose oldest kept checkpoint predates an entry acted on since: a replay
        from there re-emits a signal the portfolio has spent (all with history if none has)."""
        with_history = sorted(n for n, h in self.checkpoints.items() if h)
        saved = ray.get(self._handle(STORE).get.remote("portfolio", "main"), timeout=10) or {}
        acted: dict[str, int] = saved.get("core", {}).get("acted_until_ms", {})
        spent = [
            n
            for n in with_history
            if any(
                k.startswith(f"{n}|") and t > int(self.checkpoints[n][0].get("last_event_ms") or 0)
                for k, t in acted.items()
            )
        ]
        return spent or with_history

    def _replay_strategy(self) -> None:
        candidates = self._replay_candidates()
        if not candidates:
            self._skip("strategy_replay", "no strategy checkpoint yet")
            return
        name = self.rng.choice(candidates)
        rewound = self.checkpoints[name][0]
        actor = strategy_name(name)
        pid = self._pid(actor)
        began = time.monotonic()
        ray.kill(self._handle(actor), no_restart=True)  # gone for good: the supervisor re-creates it
        ray.get(self._handle(STORE).put.remote("strategy", name, rewound), timeout=30)
        self.checkpoints[name].clear()
        self._count("strategy_replay")
        # ml_momentum's re-creation restores and refits its forest from the rewound checkpoint: tens
        # of seconds on a busy 2-core machine (a fresh-clone CI run beside other work took > 90 s)
        self._wait(f"{actor} re-created", lambda: self._pid(actor) != pid, 240)
        self._recovered(
            "strategy_replay", actor, time.monotonic() - began, rewound_to_ms=rewound.get("last_event_ms")
        )

    def _fill_store(self) -> None:
        store = self._handle(STORE)
        before = ray.get(store.fill_map.remote(), timeout=30)
        self._count("store_full")
        began = time.monotonic()

        def grown() -> bool:
            status = ray.get(self._handle(STORE).map_status.remote(), timeout=5)
            return not status["held_full"]

        try:
            self._wait("a write to find the map full", grown, 60)
        except TimeoutError:
            self._skip("store_full", "no write within 60 s")
            return
        after = ray.get(self._handle(STORE).map_status.remote(), timeout=5)
        if after["map_full"] > before["map_full"]:
            self._strike("store_map_full")
            sizes = [before["map_size"], after["map_size"]]
            self._recovered("store_full", STORE, time.monotonic() - began, map_bytes=sizes)

    def _strike(self, what: str, n: int = 1) -> None:
        self.report.struck[what] = self.report.struck.get(what, 0) + n

    # ------------------------------------------------------------------ the venues' edge

    def _venues(self) -> list[Any]:
        return [self._handle(venue_name(v)) for v in topology(self.cfg).venues]

    def _venue_struck(self, kind: str) -> int:
        total = 0
        for venue in self._venues():
            with contextlib.suppress(Exception):
                total += int(ray.get(venue.fault_status.remote(), timeout=10)["struck"].get(kind, 0))
        return total

    def _venue_window(self, kind: str, seconds: float) -> None:
        before = self._venue_struck(kind)
        for venue in self._venues():
            ray.get(venue.inject_fault.remote(kind, seconds), timeout=10)
        self._count(kind)
        ends = time.monotonic() + seconds
        time.sleep(seconds)  # the window is the fault: it lasts this long
        self._strike(kind, max(0, self._venue_struck(kind) - before))
        self._await_exits(kind, ends)

    def _venue_calls(self, kind: str) -> None:
        """Arm a call fault at every venue; once one venue's calls have met all of it, disarm the
        rest (a venue that trades little would keep it armed for long)."""
        before = self._venue_struck(kind)
        venues = self._venues()
        for venue in venues:
            ray.get(venue.inject_fault.remote(kind), timeout=10)
        self._count(kind)

        def met() -> bool:
            return any(kind not in ray.get(v.fault_status.remote(), timeout=10)["armed"] for v in venues)

        try:
            self._wait(f"{kind} to be met", met, 30)
        except TimeoutError:
            self._skip(kind, "no venue call met it within 30 s")
        finally:
            for venue in venues:  # best effort: a venue re-created meanwhile has no faults armed
                with contextlib.suppress(Exception):
                    ray.get(venue.clear_faults.remote(), timeout=10)
        self._strike(kind, max(0, self._venue_struck(kind) - before))
        self._await_exits(kind, time.monotonic())

    def _detection_interval(self) -> float:
        s = self.cfg.supervision
        return s.stuck_transient_s + 2 * s.heartbeat_interval_s

    def _await_exits(self, kind: str, since: float) -> None:
        """After a venue fault: every open position's exits at the venue again, within one
        detection interval (the supervisor re-drives an unarmed position after that long)."""
        self.during_checked["exits"] += 1
        deadline = time.monotonic() + self._detection_interval()
        result = self._exits_check()
        while not result.ok and time.monotonic() < deadline:
            time.sleep(POLL_S)
            result = self._exits_check()
        if result.ok:
            self._recovered(kind, "venue", time.monotonic() - since)
        else:
            self.during["exits"] += [f"after {kind}: {v}" for v in result.violations[:5]]

    # ------------------------------------------------------------------ checks

    def _paper_orders(self) -> list[Order]:
        orders: list[Order] = []
        for venue in self._venues():
            orders += ray.get(venue.all_orders.remote(), timeout=30)
        return orders

    def _exits_check(self) -> InvariantResult:
        from actors.store.lmdb_store import StateStore

        try:
            orders = self._paper_orders()
            with StateStore(store_path(self.cfg), readonly=True) as db:
                positions = list(db.items("position"))
        except Exception as exc:  # mid-restart: not yet checkable
            return InvariantResult(5, "exit orders at the venue (not checkable now)", False, [repr(exc)])
        return exits_at_venue(positions, orders)

    def _unfrozen_check(self) -> InvariantResult:
        snapshot = self._status() or {}
        frozen = [] if snapshot.get("kill_switch_latched") else list(snapshot.get("frozen_positions", []))
        return InvariantResult(
            9,
            "no position frozen unless the kill switch is latched",
            bool(snapshot) and not frozen,
            [f"{name} is frozen" for name in frozen] or ([] if snapshot else ["no status"]),
            len(snapshot.get("positions", [])),
        )

    def _running_checks(self) -> list[InvariantResult]:
        """Checks that hold only while the system runs (a stop cancels the orders they look at),
        each given one detection interval after the faults end to become true."""
        results: list[InvariantResult] = []
        for check in (self._exits_check, self._unfrozen_check):
            deadline = time.monotonic() + self._detection_interval()
            result = check()
            while not result.ok and time.monotonic() < deadline:
                time.sleep(POLL_S)
                result = check()
            results.append(result)
        return results

    def _during_checks(self) -> list[InvariantResult]:
        return [
            InvariantResult(
                10,
                "the kill switch stays latched across a stop and run until resumed",
                not self.during["latch"],
                self.during["latch"],
                self.during_checked["latch"],
            ),
            InvariantResult(
                11,
                "exits at the venue again within one detection interval of each venue fault",
                not self.during["exits"],
                self.during["exits"],
                self.during_checked["exits"],
            ),
        ]

    def _refused_now(self) -> int:
        text = str(ray.get(runtime.supervisor_handle(self.cfg).metrics_text.remote(), timeout=10))
        total = 0.0
        for line in text.splitlines():
            if line.startswith("raytrader_gate_rejections_total{") and 'gate="replayed"' in line:
                total += float(line.rsplit(" ", 1)[1])
        return int(total)

    def _bank_refusals(self) -> None:
        """The supervisor's counters restart with it: bank what it counted before each fault."""
        with contextlib.suppress(Exception):
            now = self._refused_now()
            if now < self._refused_seen:
                self._refused_banked += self._refused_seen
            self._refused_seen = now
        self.report.replayed_signals_refused = self._refused_banked + self._refused_seen

    def _settle(self) -> None:
        """Let every open position reconcile with the venue once more before the verdict."""
        snapshot = self._status() or {}
        refs: list[Any] = []
        for actor in snapshot.get("positions", []):
            with contextlib.suppress(Exception):
                refs.append(self._handle(actor["name"]).redrive.remote())
        for ref in refs:
            with contextlib.suppress(Exception):
                ray.get(ref, timeout=60)

    def _finish(self) -> None:
        from actors.store.lmdb_store import StateStore

        try:  # the last fault's aftermath first: the checks' interval starts once all is up
            self._wait("every actor up before the verdict", self._all_up, 120)
            up = InvariantResult(12, "every actor up again after the last fault", True, checked=1)
        except TimeoutError as exc:
            up = InvariantResult(12, "every actor up again after the last fault", False, [str(exc)], 1)
        snapshot = self._status() or {}
        self.report.restarts = int(snapshot.get("restarts", 0))
        running_checks = [up, *self._running_checks()]
        self._bank_refusals()
        runtime.stop_system(self.cfg, cancel_orders=True, teardown=False)
        self._settle()
        with StateStore(store_path(self.cfg), readonly=True) as db:
            positions = list(db.items("position"))
            trades = [t for _seq, t in db.trades()]
            store_orders = db.orders()
            latched = bool((db.get("portfolio", "supervisor") or {}).get("frozen", False))
            orders, fills = runtime.paper_ground_truth(self.cfg, db)
        self.report.orders, self.report.fills, self.report.trades = len(orders), len(fills), len(trades)
        self.report.invariants = check_invariants(
            self.cfg, positions, trades, orders, fills, store_orders=store_orders, kill_switch_latched=latched
        )
        self.report.invariants += running_checks + self._during_checks()
        unsent = sorted({o.client_id for o in orders} - {o.client_id for o in store_orders})
        self.report.invariants.append(
            InvariantResult(
                0,
                "every venue order had a write-ahead intent",
                not unsent,
                [f"{c} reached the venue without an intent" for c in unsent],
                len(orders),
            )
        )
