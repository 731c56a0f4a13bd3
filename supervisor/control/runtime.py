"""Starting, watching and stopping the Ray runtime from a driver process (the CLI).

The driver owns nothing durable: the Store actor owns the state, the Supervisor the
actors. So a driver can die and a new one re-attach (`--address`), and `status`/`stop` work
from any process that can reach the cluster.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import ray

from actors.domain.market_groups import conditions_of, count_by_market
from actors.domain.model import Fill, Instrument, Order, RoundTrip
from actors.domain.names import STORE, SUPERVISOR
from actors.shells.base import actor_options, remote, try_actor
from actors.shells.feed import known_instruments
from actors.shells.store import StoreActor, store_path
from config.loader import env_var
from config.models import Settings

log = logging.getLogger(__name__)

STORE_RESOURCE = "raytrader_store"
HEAD_RESOURCE = "raytrader_head"

RAY_SYSTEM_CONFIG: Mapping[str, int] = MappingProxyType({"timeout_ms_task_wait_for_death_info": 100})
"""Ray settings of every instance the system starts (``ops/ray/cluster.yaml`` passes the same).

A call in flight to an actor whose process died fails only once its caller has waited for the
actor's death info, 1 s by default: a feed's batch, and the first call of a caller that had not
heard of the restart yet, stalled that long (recovery p99 2.25 s against 0.83 s with 100 ms,
``ops/bench/results/recovery-death-info.json``). Every such error is an actor failure to our
callers either way (died or unavailable: at most once, client ids make a retry safe).
Read-only: ``ray.init`` adds its own keys to the dict it is given, so each start gets a copy."""


def connect(address: str | None, settings: Settings) -> None:
    """Join a cluster (``--address``) or start a small local Ray instance for this run."""
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, namespace=settings.runtime.namespace, logging_level=logging.WARNING)
    else:
        ray.init(
            address="local",
            namespace=settings.runtime.namespace,
            include_dashboard=False,
            logging_level=logging.WARNING,
            log_to_driver=False,
            _system_config=dict(RAY_SYSTEM_CONFIG),
        )


def startup_instruments(settings: Settings) -> list[Instrument]:
    """Every market the configured feeds will trade, known before their listing events."""
    return known_instruments(settings)


def paper_trade_counts(paper_state_dir: Path) -> dict[str, int]:
    """Completed paper round trips made on live data, per strategy, in a paper run's store.

    Replay trades (and stored ones without a ``data`` mark, which predate it) prove nothing
    about live conditions, so they do not count towards ``live.min_paper_trades``."""
    from actors.store.lmdb_store import StateStore
    from config.loader import resolve_path

    path = resolve_path(paper_state_dir) / "store"
    if not path.exists():
        return {}
    counts: dict[str, int] = {}
    with StateStore(path, readonly=True) as db:
        for _seq, trade in db.trades():
            if trade.get("exit_reason") != "unfilled" and trade.get("data", "replay") == "live":
                counts[trade["strategy"]] = counts.get(trade["strategy"], 0) + 1
    return counts


def paper_trade_progress(settings: Settings) -> dict[str, Any]:
    """Each enabled strategy's live-data paper trades against the minimum before going live."""
    counts = paper_trade_counts(Path(settings.live.paper_state_dir))
    return {
        "minimum": settings.live.min_paper_trades,
        "live_data": {s.name: counts.get(s.name, 0) for s in settings.strategies if s.enabled},
    }


def live_problems(settings: Settings, *, confirmed: bool) -> list[str]:
    """Why live trading may not start, each naming what is missing; empty when it may."""
    live = settings.live
    problems: list[str] = []
    if not (live.confirm or confirmed):
        problems.append("live trading is not confirmed: pass --confirm-live or set live.confirm = true")
    problems += [f"missing {name} (set {env_var(name)})" for name in settings.missing_live_secrets()]
    if not live.override_paper_minimum:
        counts = paper_trade_counts(Path(live.paper_state_dir))
        for strategy in (s for s in settings.strategies if s.enabled):
            done = counts.get(strategy.name, 0)
            if done < live.min_paper_trades:
                problems.append(
                    f"strategy {strategy.name} has {done} completed paper trades on live data "
                    f"in {live.paper_state_dir}, "
                    f"needs {live.min_paper_trades} (or set live.override_paper_minimum = true)"
                )
    return problems


def start_system(settings: Settings, *, clear_kill_switch: bool = False) -> dict[str, Any]:
    """Create the Store and Supervisor actors (or find them) and let the supervisor spawn the rest.

    A latched kill switch stays latched (no entries, positions frozen) unless ``clear_kill_switch``.
    """
    from supervisor.control.actor import SupervisorActor

    store_path(settings).parent.mkdir(parents=True, exist_ok=True)
    store = try_actor(settings, STORE)
    if store is None:
        extra: dict[str, Any] = {}
        resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
        if resources.get(STORE_RESOURCE):
            extra["resources"] = {STORE_RESOURCE: 0.001}  # the LMDB file lives on the head node
            extra["scheduling_strategy"] = "DEFAULT"
        store = remote(StoreActor).options(**actor_options(settings, STORE, **extra)).remote(settings)
    head: dict[str, Any] = {}
    if ray.cluster_resources().get(HEAD_RESOURCE):  # type: ignore[no-untyped-call]
        head = {"resources": {HEAD_RESOURCE: 0.001}, "scheduling_strategy": "DEFAULT"}
    ray.get(store.ping.remote())
    supervisor = try_actor(settings, SUPERVISOR)
    if supervisor is None:
        supervisor = (
            remote(SupervisorActor)
            .options(**actor_options(settings, SUPERVISOR, **head))
            .remote(settings)  # small arguments only: Ray restarts it even after this driver is gone
        )
    result: dict[str, Any] = ray.get(supervisor.start.remote(clear_kill_switch))
    return result


def supervisor_handle(settings: Settings) -> Any:
    handle = try_actor(settings, SUPERVISOR)
    if handle is None:
        raise RuntimeError(
            f"no raytrader system is running in Ray namespace {settings.runtime.namespace!r} "
            "(start one with `raytrader run`, or pass --address to reach its cluster)"
        )
    return handle


def status(settings: Settings) -> dict[str, Any]:
    result: dict[str, Any] = ray.get(supervisor_handle(settings).status.remote(), timeout=10)
    return result


def quiescent(snapshot: dict[str, Any]) -> bool:
    """The replay is over and no position is mid-transition: a natural end for a paper run."""
    return bool(snapshot.get("feeds_done")) and snapshot.get("transient_positions", 0) == 0


@dataclass
class RunOutcome:
    reason: str
    snapshot: dict[str, Any]
    stop: dict[str, Any]


def watch(
    settings: Settings,
    *,
    duration_s: float | None,
    render: Callable[[dict[str, Any]], None],
    poll_s: float = 1.0,
) -> tuple[str, dict[str, Any]]:
    """Poll the supervisor until the duration passes, the replay ends quietly, or Ctrl-C."""
    started = time.monotonic()
    quiet_polls = 0
    snapshot: dict[str, Any] = {}
    try:
        while True:
            snapshot = status(settings)
            render(snapshot)
            if duration_s is not None and time.monotonic() - started >= duration_s:
                return "duration", snapshot
            quiet_polls = quiet_polls + 1 if quiescent(snapshot) else 0
            if quiet_polls >= 3:
                return "replay finished", snapshot
            time.sleep(poll_s)
    except KeyboardInterrupt:
        return "interrupted", snapshot


def stop_system(settings: Settings, *, cancel_orders: bool, teardown: bool) -> dict[str, Any]:
    """Stop trading cleanly: feeds paused, state flushed, orders cancelled unless kept."""
    supervisor = supervisor_handle(settings)
    result: dict[str, Any] = ray.get(supervisor.stop.remote(cancel_orders), timeout=60)
    if teardown:
        snapshot = ray.get(supervisor.status.remote(), timeout=10)
        ray.get(supervisor.shutdown_metrics.remote(), timeout=10)
        for actor in snapshot["actors"]:
            handle = try_actor(settings, actor["name"])
            if handle is not None:
                ray.kill(handle, no_restart=True)
        for name in (SUPERVISOR, STORE):
            handle = try_actor(settings, name)
            if handle is not None:
                ray.kill(handle, no_restart=True)
    return result


# --------------------------------------------------------------------------- after the run


def read_trades(settings: Settings) -> list[RoundTrip]:
    """The trade log from the store (read-only, from any process)."""
    from actors.store.lmdb_store import StateStore

    path = store_path(settings)
    if not path.exists():
        return []
    with StateStore(path, readonly=True) as db:
        return [
            RoundTrip.model_validate({k: v for k, v in record.items() if k != "ts_ms"})
            for _seq, record in db.trades()
        ]


def summary(
    settings: Settings, snapshot: dict[str, Any], reason: str, stop: dict[str, Any]
) -> dict[str, Any]:
    """The final figures of a run, as `--json` writes them. ``trades_by_market`` counts a Polymarket
    window's Up and Down tokens as one market (its condition, from the positions' instruments)."""
    from actors.store.lmdb_store import StateStore

    trips = read_trades(settings)
    orders: dict[str, int] = {}
    fills = 0
    conditions: dict[str, str] = {}
    path = store_path(settings)
    if path.exists():
        with StateStore(path, readonly=True) as db:
            for order in db.orders():
                orders[order.status.value] = orders.get(order.status.value, 0) + 1
            fills = len(db.fills())
            conditions = conditions_of(
                Instrument.model_validate(record["instrument"])
                for _key, record in db.items("position")
                if isinstance(record.get("instrument"), dict)
            )
    pnl = sum((t.pnl for t in trips), Decimal(0))
    by_strategy: dict[str, str] = {}
    for trip in trips:
        by_strategy[trip.strategy] = str(Decimal(by_strategy.get(trip.strategy, "0")) + trip.pnl)
    portfolio = snapshot.get("portfolio", {})
    return {
        "reason": reason,
        "mode": settings.mode.value,
        "trades": len(trips),
        "realized_pnl": str(pnl),
        "pnl_by_strategy": by_strategy,
        "trades_by_market": count_by_market((t.market for t in trips), conditions),
        "equity": portfolio.get("equity"),
        "fees": str(sum((t.fees for t in trips), Decimal(0))),
        "orders": orders,
        "fills": fills,
        "restarts": snapshot.get("restarts", 0),
        "orphans_found": len(snapshot.get("orphans", [])),
        "stuck_positions_found": len(snapshot.get("stuck", [])),
        "open_positions": len(snapshot.get("positions", [])),
        "cancelled_on_stop": stop.get("cancelled", 0),
        "state_dir": str(settings.state_dir),
    }


def paper_ground_truth(settings: Settings, db: Any) -> tuple[list[Order], list[Fill]]:
    """Every order and fill the paper venues hold, from their checkpoints in the store ``db``."""
    from actors.core.fees import FeeModel
    from actors.core.matching import MatchingEngine
    from actors.venues.paper import restore_venue_history

    orders: list[Order] = []
    fills: list[Fill] = []
    store_orders: list[Order] | None = None
    store_fills: list[Fill] = []
    for venue, saved in db.items("venue"):
        engine = MatchingEngine.from_state(saved["engine"], FeeModel(settings.costs))
        if saved["engine"].get("history") is False:  # a compact checkpoint: its history is in the store
            if store_orders is None:
                store_orders, store_fills = db.orders(), db.fills()
            restore_venue_history(engine, venue, store_orders, store_fills)
        orders += engine.orders()
        fills += engine.fills()
    return orders, fills


def verify_from_store(settings: Settings, *, settled: bool = True) -> list[Any]:
    """Check every invariant from the store alone (the paper venues' ground truth is in it too)."""
    from actors.store.lmdb_store import StateStore
    from supervisor.control.invariants import check_invariants

    with StateStore(store_path(settings), readonly=True) as db:
        positions = list(db.items("position"))
        latched = bool((db.get("portfolio", "supervisor") or {}).get("frozen", False))
        trades = [record for _seq, record in db.trades()]
        store_orders = db.orders()
        venue_orders, venue_fills = paper_ground_truth(settings, db)
    return check_invariants(
        settings,
        positions,
        trades,
        venue_orders,
        venue_fills,
        store_orders=store_orders,
        settled=settled,
        kill_switch_latched=latched,
    )
