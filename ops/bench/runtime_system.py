"""One raytrader system for the runtime benchmark (``System``: its own Ray namespace and state
directory, on a slice of the bundled data), its held positions, and the small helpers every
section shares (distributions in ms, waiting, the data slices, Prometheus histograms).
"""

from __future__ import annotations

import contextlib
import csv
import logging
import os
import re
import statistics
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import ray

from actors.core.position import PositionCore
from actors.data.replay import BINANCE_BTCUSDT
from actors.domain.names import SUPERVISOR, position_name
from actors.shells.base import get_actor, try_actor
from actors.shells.position import position_record
from actors.shells.store import store_path
from actors.store.lmdb_store import StateStore
from config.loader import load_settings
from config.models import ExitConfig, Settings
from supervisor.control import runtime
from supervisor.research.performance import percentile as pct  # the one quantile rule

ROOT = Path(__file__).resolve().parents[2]
DATA_1M = ROOT / "ops/data/binance/BTCUSDT-1m-2024-03-01_2024-03-22.csv"
STRATEGIES = ("mean_reversion", "ml_momentum", "momentum_breakout")
HOLD_STRATEGY = "bench_hold"
HOLD_QTY = Decimal("0.001")
# exits of the held positions: armed (targets rest at the venue) but never reached
HOLD_EXITS = ExitConfig(
    target_one_pct=0.9,
    target_two_pct=1.0,
    stop_pct=0.9,
    time_exit_s=10**9,
    trailing_activate_pct=1.0,
    trailing_lock_pct=0.5,
    entry_timeout_s=10**9,  # the entry waits (in data time) until the replay reaches it
)
TIGHT_EXITS = (
    "exits.stop_pct=0.004",
    "exits.target_one_pct=0.003",
    "exits.target_two_pct=0.006",
    "exits.time_exit_s=1800",
)
ACTOR_ERRORS: tuple[type[BaseException], ...] = (
    ray.exceptions.RayActorError,
    ray.exceptions.ActorUnavailableError,
    ray.exceptions.GetTimeoutError,
)
log = logging.getLogger("bench.runtime")


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def dist_ms(values_s: list[float]) -> dict[str, Any]:
    """count, p50, p90, p99, max, mean of values given in seconds, reported in ms."""
    ms = [v * 1000 for v in values_s]
    return {
        "count": len(ms),
        "p50_ms": _r(pct(ms, 0.5)),
        "p90_ms": _r(pct(ms, 0.9)),
        "p99_ms": _r(pct(ms, 0.99)),
        "max_ms": _r(max(ms) if ms else None),
        "mean_ms": _r(statistics.fmean(ms) if ms else None),
    }


def init_local_ray() -> None:
    """The benchmarks' Ray: local, 2 CPUs, no dashboard, a 100 MiB object store (as the tests'), with
    the Ray settings ``raytrader run`` starts its instance with (``RAY_SYSTEM_CONFIG``; the
    environment's ``RAYTRADER_BENCH_RAY_DEFAULTS=1`` leaves Ray's defaults, to compare)."""
    local: dict[str, Any] = {"address": "local", "num_cpus": 2, "include_dashboard": False}
    if os.environ.get("RAYTRADER_BENCH_RAY_DEFAULTS") != "1":
        local["_system_config"] = dict(runtime.RAY_SYSTEM_CONFIG)
    ray.init(**local, object_store_memory=100 * 2**20, log_to_driver=False, logging_level=logging.WARNING)


def wait_until(what: str, condition: Callable[[], Any], timeout_s: float, poll_s: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(poll_s)
    raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}; last {last!r}")


def write_data(out: Path, rows: int | None = None, copies: int = 1) -> Path:
    """The first ``rows`` bars of the bundled 1m data, ``copies`` times back to back (shifted in time)."""
    with DATA_1M.open() as src:
        reader = csv.reader(src)
        header = next(reader)
        body = [row for n, row in enumerate(reader) if rows is None or n < rows]
    span = int(body[-1][0]) - int(body[0][0]) + 60_000
    with out.open("w", newline="") as dst:
        writer = csv.writer(dst)
        writer.writerow(header)
        for k in range(copies):
            for row in body:
                writer.writerow([str(int(row[0]) + k * span), *row[1:]])
    return out


def first_bar(path: Path) -> tuple[int, Decimal]:
    with path.open() as f:
        next(f)
        row = next(f).split(",")
    return int(row[0]), Decimal(row[4])


def last_bar(path: Path) -> list[str]:
    with path.open() as f:
        lines = f.read().strip().splitlines()
    return lines[-1].split(",")


@dataclass
class System:
    """One raytrader system in its own namespace and state directory."""

    name: str
    root: Path
    data: Path
    overrides: tuple[str, ...] = ()
    strategies: tuple[str, ...] = STRATEGIES
    holds: int = 0
    settings: Settings = field(init=False)
    started: bool = False

    def __post_init__(self) -> None:
        overrides = [
            f'state_dir="{self.root / "state"}"',
            f'replay.candles={{"binance:BTC/USDT" = "{self.data}"}}',
            f'runtime.namespace="{self.name}"',
            "metrics.port=0",
            "supervision.restart_budget=1000",
            *self.overrides,
        ]
        settings = load_settings(None, env={}, overrides=overrides)
        one_market = {"market": BINANCE_BTCUSDT.market_id, "markets": (BINANCE_BTCUSDT.market_id,)}
        keep = [s.model_copy(update=one_market) for s in settings.strategies if s.name in self.strategies]
        self.settings = settings.model_copy(update={"strategies": keep})

    def hold_ids(self) -> list[str]:
        return [f"hold{i:03d}" for i in range(self.holds)]

    def write_holds(self) -> None:
        """Held positions as records with a pending entry intent, before the system starts."""
        store_path(self.settings).parent.mkdir(parents=True, exist_ok=True)
        ts, close = first_bar(self.data)
        with StateStore(store_path(self.settings)) as db:
            for pid in self.hold_ids():
                db.put("position", pid, hold_record(pid, ts, close))

    def start(self) -> float:
        if self.holds:
            self.write_holds()
        started = time.perf_counter()
        runtime.start_system(self.settings)
        self.started = True
        return time.perf_counter() - started

    def actor(self, name: str) -> Any:
        return get_actor(self.settings, name)

    def status(self) -> dict[str, Any]:
        return runtime.status(self.settings)

    def ready_holds(self) -> int:
        return sum(
            1
            for p in self.status()["positions"]
            if str(p["name"]).startswith(position_name("hold")) and p["detail"].get("ready")
        )

    def open_holds(self) -> int:
        return sum(
            1
            for p in self.status()["positions"]
            if str(p["name"]).startswith(position_name("hold")) and p["detail"].get("status") == "open"
        )

    def metrics_text(self) -> str:
        port = self.status()["metrics_port"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            body: bytes = resp.read()
        return body.decode()

    def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        try:
            runtime.stop_system(self.settings, cancel_orders=True, teardown=True)
        except Exception as exc:  # the safety net below still kills everything
            log.warning("stop_system(%s) failed: %s", self.name, exc)
        kill_namespace(self.name)


def hold_record(position_id: str, ts_ms: int, close: Decimal) -> dict[str, Any]:
    core, _entry = PositionCore.enter(
        position_id=position_id,
        strategy=HOLD_STRATEGY,
        instrument=BINANCE_BTCUSDT,
        qty=HOLD_QTY,
        limit_price=close * Decimal("1.01"),
        signal_strength=1.0,
        now_ms=ts_ms,
        config=HOLD_EXITS,
    )
    return position_record(core, HOLD_EXITS)


def kill_namespace(namespace: str) -> int:
    """Kill every named actor left in ``namespace`` (the safety net after a teardown)."""
    killed = 0
    for entry in ray.util.list_named_actors(all_namespaces=True):
        if isinstance(entry, dict) and entry.get("namespace") == namespace:
            with contextlib.suppress(Exception):
                ray.kill(ray.get_actor(entry["name"], namespace=namespace), no_restart=True)
                killed += 1
    return killed


def actor_pids(system: System) -> dict[str, int]:
    """Actor name -> worker pid, for every actor the supervisor knows, and the supervisor."""
    pids: dict[str, int] = {}
    names = [a["name"] for a in system.status()["actors"]] + [SUPERVISOR]
    refs = {}
    for name in names:
        handle = try_actor(system.settings, name)
        if handle is not None:
            refs[name] = handle.pid.remote()
    for name, ref in refs.items():
        with contextlib.suppress(Exception):
            pids[name] = int(ray.get(ref, timeout=10))
    return pids


QUIET_SKIPS = "raytrader_feed_quiet_skips_total"


def counter_total(text: str, metric: str) -> float:
    """The sum of a counter's series in a /metrics text (0 when absent)."""
    pattern = re.compile(rf"^{re.escape(metric)}(?:\{{[^}}]*\}})? (\S+)$", re.M)
    return sum(float(v) for v in pattern.findall(text))


def parse_histogram(text: str, metric: str) -> dict[str, Any]:
    """Cumulative buckets, count and sum of one unlabelled Prometheus histogram."""
    buckets: list[tuple[float, float]] = []
    count = total = 0.0
    for line in text.splitlines():
        if line.startswith(f"{metric}_bucket"):
            le = re.search(r'le="([^"]+)"', line)
            assert le is not None
            buckets.append((float(le.group(1)), float(line.rsplit(" ", 1)[1])))
        elif line.startswith(f"{metric}_count"):
            count = float(line.rsplit(" ", 1)[1])
        elif line.startswith(f"{metric}_sum"):
            total = float(line.rsplit(" ", 1)[1])
    return {"buckets": sorted(buckets), "count": count, "sum": total}


def bucket_quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """PromQL ``histogram_quantile``: linear interpolation inside the bucket holding the rank."""
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = q * buckets[-1][1]
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return prev_le
            if count == prev_count:
                return le
            return prev_le + (le - prev_le) * (rank - prev_count) / (count - prev_count)
        prev_le, prev_count = le, count
    return prev_le


def hist_delta(after: dict[str, Any], before: dict[str, Any] | None) -> list[tuple[float, float]]:
    if before is None:
        return list(after["buckets"])
    prior = dict(before["buckets"])
    return [(le, c - prior.get(le, 0.0)) for le, c in after["buckets"]]
