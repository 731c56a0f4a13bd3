"""Chaos runs: a live-mode portfolio against the sandbox venue on a multi-node local Ray
cluster, with faults injected on a seeded schedule, judged at the end by every invariant
against the venue's ground truth.

The schedule is a pure function of (seed, duration, kinds, rate), so a failing seed is
reproducible. The system is started by a child driver process (``raytrader run --address``),
so killing the driver is one of the faults: actors are detached, a new driver re-attaches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray

from actors.domain.model import Fill, Order
from actors.domain.names import STORE, SUPERVISOR
from actors.shells.store import store_path
from config.dump import dump_settings
from config.loader import load_settings
from config.models import Settings
from supervisor.control import runtime
from supervisor.control.invariants import InvariantResult, check_invariants, exits_at_venue

log = logging.getLogger(__name__)

ACTOR_FAULTS = ("sigkill", "ray_kill")
CLUSTER_FAULTS = ("driver_kill", "node_loss")
VENUE_FAULTS = ("venue_5xx", "venue_429", "venue_timeout", "lost_answer", "ws_drop")
FAULT_KINDS = ACTOR_FAULTS + CLUSTER_FAULTS + VENUE_FAULTS
ACTOR_KINDS = ("store", "supervisor", "venue", "feed", "strategy", "portfolio", "position")
WARMUP_S = 15.0
COOLDOWN_S = 20.0


@dataclass(frozen=True)
class FaultEvent:
    at_s: float
    kind: str
    target: str


def schedule(
    seed: int, duration_s: float, kinds: tuple[str, ...] = FAULT_KINDS, per_minute: float = 12.0
) -> list[FaultEvent]:
    """The fault schedule: exponential gaps, uniformly chosen kinds and targets; seeded, pure."""
    unknown = sorted(set(kinds) - set(FAULT_KINDS))
    if unknown:
        raise ValueError(f"unknown fault kinds {unknown}; known: {', '.join(FAULT_KINDS)}")
    rng = random.Random(seed)
    events: list[FaultEvent] = []
    t = WARMUP_S
    end = max(WARMUP_S, duration_s - COOLDOWN_S)
    while True:
        t += rng.expovariate(per_minute / 60.0)
        if t >= end:
            break
        kind = rng.choice(kinds)
        target = rng.choice(ACTOR_KINDS) if kind in ACTOR_FAULTS else ""
        events.append(FaultEvent(round(t, 3), kind, target))
    return events


@dataclass
class ChaosReport:
    seed: int
    duration_s: float
    faults: dict[str, int] = field(default_factory=dict)
    recoveries: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    invariants: list[InvariantResult] = field(default_factory=list)
    orders: int = 0
    fills: int = 0
    trades: int = 0
    restarts: int = 0

    @property
    def ok(self) -> bool:
        return bool(self.invariants) and all(r.ok for r in self.invariants)

    def as_dict(self) -> dict[str, Any]:
        times = sorted(r["seconds"] for r in self.recoveries if r.get("seconds") is not None)

        def pct(q: float) -> float | None:
            return None if not times else round(times[min(len(times) - 1, int(q * len(times)))], 3)

        return {
            "seed": self.seed,
            "duration_s": self.duration_s,
            "faults_injected": sum(self.faults.values()),
            "faults_by_kind": dict(sorted(self.faults.items())),
            "fault_kinds": len(self.faults),
            "recoveries": len(times),
            "recovery_s": {"p50": pct(0.5), "p99": pct(0.99), "max": times[-1] if times else None},
            "skipped": self.skipped,
            "orders": self.orders,
            "fills": self.fills,
            "trades": self.trades,
            "restarts_seen_by_supervisor": self.restarts,
            "invariants": [r.as_dict() for r in self.invariants],
            "ok": self.ok,
        }


def _http(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        return json.loads(response.read() or b"null")


def sandbox_ground_truth(base_url: str) -> tuple[list[Order], list[Fill]]:
    """Every order and fill the Binance sandbox holds, fill ids as the gateway reports them."""
    orders = [
        Order.model_validate({k: v for k, v in o.items() if k in Order.model_fields})
        for o in _http("GET", f"{base_url}/_sandbox/orders")["orders"]
    ]
    fills = []
    for raw in _http("GET", f"{base_url}/_sandbox/fills")["fills"]:
        data = {k: v for k, v in raw.items() if k in Fill.model_fields}
        data["fill_id"] = f"binance:BTCUSDT:{raw['trade_id']}"
        fills.append(Fill.model_validate(data))
    return orders, fills


class SandboxThread:
    """Both sandbox venues in a background thread with their own event loop."""

    def __init__(self, speed: float) -> None:
        from ops.sandbox.serve import serve_sandbox

        self.info: dict[str, Any] = {}
        self.loop = asyncio.new_event_loop()
        self._task: asyncio.Task[None] | None = None

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self._task = self.loop.create_task(
                serve_sandbox(
                    "127.0.0.1",
                    0,
                    0,
                    binance_key=None,
                    binance_secret=None,
                    usdt="10000",
                    speed=speed,
                    faults=None,
                    ready=asyncio.Event(),
                    info=self.info,
                )
            )
            with contextlib.suppress(asyncio.CancelledError):
                self.loop.run_until_complete(self._task)

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.info.get("binance"):
            if time.monotonic() > deadline:
                raise RuntimeError("the sandbox did not start")
            time.sleep(0.05)

    @property
    def binance_url(self) -> str:
        return str(self.info["binance"]["rest_url"])

    def stop(self) -> None:
        if self._task is not None:
            self.loop.call_soon_threadsafe(self._task.cancel)
        self.thread.join(timeout=10)


def chaos_settings(
    state_dir: Path, sandbox: SandboxThread, namespace: str
) -> tuple[Settings, dict[str, str]]:
    """A live portfolio of the Binance strategies against the sandbox, spread over the cluster."""
    binance = sandbox.info["binance"]
    env = {
        "RAYTRADER_SECRETS__BINANCE_API_KEY": binance["api_key"],
        "RAYTRADER_SECRETS__BINANCE_API_SECRET": binance["api_secret"],
    }
    overrides = [
        'mode="live"',
        "live.confirm=true",
        "live.override_paper_minimum=true",
        f'live.binance.url="{binance["rest_url"]}"',
        f'live.binance.ws_url="{binance["ws_url"]}"',
        f'state_dir="{state_dir}"',
        f'runtime.namespace="{namespace}"',
        "runtime.spread_actors=true",
        "runtime.venue_poll_s=0.3",
        "metrics.port=0",
        "supervision.heartbeat_interval_s=0.5",
        "supervision.orphan_grace_s=2.0",
        "supervision.restart_budget=1000",
        "strategies.polymarket_lag.enabled=false",
        "strategies.ml_momentum.enabled=false",
        "exits.target_one_pct=0.002",
        "exits.target_two_pct=0.004",
        "exits.stop_pct=0.003",
        "exits.trailing_activate_pct=0.01",
        "exits.trailing_lock_pct=0.003",
    ]
    return load_settings(None, env=env, overrides=overrides), env


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
    ) -> None:
        self.seed = seed
        self.duration_s = duration_s
        self.kinds = kinds
        self.work_dir = work_dir
        self.workers = workers
        self.events = schedule(seed, duration_s, kinds, per_minute)
        self.rng = random.Random(seed ^ 0x5EED)
        self.report = ChaosReport(seed=seed, duration_s=duration_s)
        self.driver: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ setup

    def _start_driver(self) -> None:
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
            "--confirm-live",
        ]
        env = {**os.environ, **self.env}
        self.driver = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def run(self) -> ChaosReport:
        from ray.cluster_utils import Cluster

        self.work_dir.mkdir(parents=True, exist_ok=True)
        sandbox = SandboxThread(speed=1200.0)
        cluster = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": 1,
                "resources": {runtime.STORE_RESOURCE: 1, runtime.HEAD_RESOURCE: 1},
                "include_dashboard": False,
                "object_store_memory": 100 * 2**20,
            },
        )
        self.nodes = [
            cluster.add_node(num_cpus=1, object_store_memory=100 * 2**20) for _ in range(self.workers)
        ]
        self.cluster = cluster
        self.address = cluster.address
        try:
            ray.init(address=cluster.address, logging_level=logging.WARNING, log_to_driver=False)
            self.settings, self.env = chaos_settings(self.work_dir / "state", sandbox, f"chaos-{self.seed}")
            self.config_path = self.work_dir / "chaos.toml"
            self.config_path.write_text(dump_settings(self.settings))
            self._start_driver()
            self._wait("the system to start", lambda: self._status() is not None, 120)
            self._drive(sandbox)
            self._finish(sandbox)
        finally:
            if self.driver is not None and self.driver.poll() is None:
                self.driver.kill()
            with contextlib.suppress(Exception):
                runtime.stop_system(self.settings, cancel_orders=True, teardown=True)
            ray.shutdown()
            cluster.shutdown()  # type: ignore[no-untyped-call]
            sandbox.stop()
        return self.report

    # ------------------------------------------------------------------ the schedule

    def _drive(self, sandbox: SandboxThread) -> None:
        started = time.monotonic()
        for event in self.events:
            wait = started + event.at_s - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                self._inject(event, sandbox)
            except Exception as exc:  # a fault that could not be injected is reported, not fatal
                self.report.skipped.append({"at_s": event.at_s, "kind": event.kind, "why": repr(exc)})
        rest = started + self.duration_s - time.monotonic()
        if rest > 0:
            time.sleep(rest)

    def _count(self, kind: str) -> None:
        self.report.faults[kind] = self.report.faults.get(kind, 0) + 1

    def _status(self) -> dict[str, Any] | None:
        try:
            return runtime.status(self.settings)
        except Exception:
            return None

    def _wait(self, what: str, condition: Any, timeout_s: float) -> float:
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

    def _inject(self, event: FaultEvent, sandbox: SandboxThread) -> None:
        kind = event.kind
        if kind in ACTOR_FAULTS:
            name = self._actor(event.target)
            if name is None:
                self.report.skipped.append(
                    {"at_s": event.at_s, "kind": kind, "why": f"no {event.target} actor"}
                )
                return
            handle = ray.get_actor(name, namespace=self.settings.runtime.namespace)
            pid = int(str(ray.get(handle.pid.remote(), timeout=10)))
            if kind == "sigkill":
                os.kill(pid, signal.SIGKILL)
            else:
                ray.kill(handle, no_restart=False)
            self._count(kind)
            seconds = self._wait(
                f"{name} back",
                lambda: (
                    ray.get(
                        ray.get_actor(name, namespace=self.settings.runtime.namespace).pid.remote(), timeout=5
                    )
                    != pid
                ),
                60,
            )
            self.report.recoveries.append({"kind": kind, "actor": name, "seconds": seconds})
        elif kind == "driver_kill":
            assert self.driver is not None
            self.driver.send_signal(signal.SIGKILL)
            self.driver.wait(timeout=10)
            self._count(kind)
            began = time.monotonic()
            self._start_driver()
            self._wait("the system after a driver kill", lambda: self._status() is not None, 60)
            self.report.recoveries.append(
                {"kind": kind, "actor": "driver", "seconds": time.monotonic() - began}
            )
        elif kind == "node_loss":
            node = self.nodes.pop(self.rng.randrange(len(self.nodes)))
            began = time.monotonic()
            self.cluster.remove_node(node, allow_graceful=False)
            self._count(kind)
            self.nodes.append(self.cluster.add_node(num_cpus=1, object_store_memory=100 * 2**20))
            self._wait("every actor up after a node loss", self._all_up, 120)
            self.report.recoveries.append(
                {"kind": kind, "actor": "node", "seconds": time.monotonic() - began}
            )
        else:
            base = sandbox.binance_url
            rules: dict[str, dict[str, Any]] = {
                "venue_5xx": {
                    "path": "/api/v3/*",
                    "method": "*",
                    "kind": "status",
                    "status": 503,
                    "when": {"first": 3},
                },
                "venue_429": {
                    "path": "/api/v3/*",
                    "method": "*",
                    "kind": "status",
                    "status": 429,
                    "retry_after_s": 0.3,
                    "when": {"first": 2},
                },
                "venue_timeout": {
                    "path": "/api/v3/*",
                    "method": "GET",
                    "kind": "timeout",
                    "duration_s": 12.0,
                    "when": {"first": 1},
                },
                "lost_answer": {
                    "path": "/api/v3/order",
                    "method": "POST",
                    "kind": "lose_answer",
                    "lose_mode": "504",
                    "when": {"first": 1},
                },
            }
            if kind == "ws_drop":
                _http("POST", f"{base}/_sandbox/faults/drop_ws", {"path": "*"})
            else:
                _http("POST", f"{base}/_sandbox/faults", rules[kind])
            self._count(kind)

    def _settle(self) -> None:
        """Let every open position reconcile with the venue once more before the verdict."""
        snapshot = self._status() or {}
        namespace = self.settings.runtime.namespace
        refs: list[Any] = []
        for actor in snapshot.get("positions", []):
            with contextlib.suppress(Exception):
                refs.append(ray.get_actor(actor["name"], namespace=namespace).redrive.remote())
        for ref in refs:
            with contextlib.suppress(Exception):
                ray.get(ref, timeout=60)

    def _all_up(self) -> bool:
        snapshot = self._status()
        if snapshot is None:
            return False
        fresh = (
            3 * self.settings.supervision.heartbeat_interval_s * self.settings.supervision.suspect_after_beats
        )
        return all(
            a["heartbeat_age_s"] is not None and a["heartbeat_age_s"] < fresh for a in snapshot["actors"]
        )

    # ------------------------------------------------------------------ the verdict

    def _running_checks(self, sandbox: SandboxThread) -> list[InvariantResult]:
        """Checks that hold only while the system runs (a stop cancels the orders they look at),
        each given one detection interval after the faults end to become true."""
        from actors.store.lmdb_store import StateStore

        def exits() -> InvariantResult:
            orders, _fills = sandbox_ground_truth(sandbox.binance_url)
            with StateStore(store_path(self.settings), readonly=True) as db:
                positions = list(db.items("position"))
            return exits_at_venue(positions, orders)

        def unfrozen() -> InvariantResult:
            snapshot = self._status() or {}
            frozen = [] if snapshot.get("kill_switch_latched") else list(snapshot.get("frozen_positions", []))
            return InvariantResult(
                9,
                "no position frozen unless the kill switch is latched",
                not frozen,
                [f"{name} is frozen" for name in frozen],
                len(snapshot.get("positions", [])),
            )

        interval = (
            self.settings.supervision.stuck_transient_s + 2 * self.settings.supervision.heartbeat_interval_s
        )
        results: list[InvariantResult] = []
        for check in (exits, unfrozen):
            deadline = time.monotonic() + interval
            result = check()
            while not result.ok and time.monotonic() < deadline:
                time.sleep(0.25)
                result = check()
            results.append(result)
        return results

    def _finish(self, sandbox: SandboxThread) -> None:
        from actors.store.lmdb_store import StateStore

        _http("DELETE", f"{sandbox.binance_url}/_sandbox/faults")
        snapshot = self._status() or {}
        self.report.restarts = int(snapshot.get("restarts", 0))
        running_checks = self._running_checks(sandbox)
        runtime.stop_system(self.settings, cancel_orders=True, teardown=False)
        self._settle()
        orders, fills = sandbox_ground_truth(sandbox.binance_url)
        ours = [o for o in orders if o.client_id.startswith("rt-")]
        our_fills = [f for f in fills if f.client_id.startswith("rt-")]
        with StateStore(store_path(self.settings), readonly=True) as db:
            positions = list(db.items("position"))
            trades = [t for _seq, t in db.trades()]
            store_orders = db.orders()
        self.report.orders, self.report.fills, self.report.trades = len(ours), len(our_fills), len(trades)
        self.report.invariants = check_invariants(
            self.settings, positions, trades, ours, our_fills, store_orders=store_orders
        )
        self.report.invariants += running_checks
        unsent = sorted({o.client_id for o in ours} - {o.client_id for o in store_orders})
        self.report.invariants.append(
            InvariantResult(
                0,
                "every venue order had a write-ahead intent",
                not unsent,
                [f"{c} reached the venue without an intent" for c in unsent],
                len(ours),
            )
        )
