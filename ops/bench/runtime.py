"""Runtime benchmark: tick-to-order latency, feed throughput, recovery time, memory, profile.

    python ops/bench/runtime.py [--out ops/bench/results/runtime.json] [--quick]

Everything runs on one local Ray instance started here (``address="local"``, 2 CPUs, no
dashboard, 100 MiB object store), each system in its own Ray namespace and state directory
(a temporary directory, removed at the end), on slices of the bundled real BTC/USDT 1m data,
exactly as the runtime tests run it. Every actor is killed and Ray is shut down at the end;
the process tree Ray started is checked for survivors. Sections (each writes one key of the
JSON; ``method`` fields say exactly how each figure was obtained):

latency
    3 strategies (mean_reversion, ml_momentum, momentum_breakout) on binance:BTC/USDT at
    replay speed ``max``, ``feed_batch`` 16 (the default), plus 10 *held* positions: position
    records written to the store before start, each with a pending entry intent (0.001 BTC,
    marketable limit) and exits too wide to ever trigger (targets +90%/+100%, stop -90%, no
    time exit). The supervisor spawns their actors from the store, their constructors send
    the entries (the replay is paused until all 10 are at the venue), the paper venue fills
    them on the first candles, and from then on 10 open
    positions with armed exits (2 resting target orders each) take every candle. Exits of
    the strategies' own positions are tightened (stop 0.4%, targets 0.3%/0.6%, time exit
    30 min of data time) so that a short run makes enough round trips to measure.
    Samples: the runtime observes ``raytrader_tick_to_order_seconds`` in the paper venue's
    ``submit`` (venue wall clock minus the feed's ingest stamp carried in the order's origin).
    The venue actor's metric buffer is wrapped in place (``__ray_call__``, no runtime code
    changed) so every raw observation is also kept with its order's purpose; the histogram
    the supervisor serves at /metrics is scraped too and its bucketed estimate reported
    beside the exact percentiles. Only orders accepted after all 10 held positions were
    open are counted.

latency_nopool
    The latency set-up again, right after it in the same run (so on the same machine load),
    with ``runtime.position_pool = 0``: every entry starts its position actor in the signal's
    path, as before the pool. ``latency`` runs with the default pool of 2 pre-started
    position actors that entries are assigned to.

latency_paced (full run only)
    The same set-up with the feed paced at 50 events/s (replay speed 3000) and feed_batch 1,
    i.e. one event per delivery and spare time between events, closer to live operation
    than a saturated replay.

recovery
    On the same system after the replay: SIGKILL of one held position's worker process
    (round robin over the 10), Ray restarts the actor, its constructor rebuilds it from the
    store and reconciles with the venue. The driver polls the GCS actor table (it does not
    call the actor while it is down: a call in flight to a dead actor only fails after about
    1.5 s, which ``ray_floor`` measures on a trivial actor). Timed from ``os.kill`` to:
    ``init_started`` (the new incarnation's stamp), ``gcs_alive``, ``first_call``, ``ready``
    (``wait_ready()`` returned: feed re-subscribed, open orders reconciled with the venue by
    client id, portfolio told) and ``first_event``, the *recovery time*: a probe candle at
    the last price, sent after ready, has been processed by the restored incarnation
    (``on_market`` returned). After each restore the position must still be open with its
    exits armed and the same orders.

memory
    VmRSS, Pss and USS (Private_Clean + Private_Dirty, from /proc/<pid>/smaps_rollup) of
    every position actor's process, and of the other actors and Ray's own processes; then
    more held positions are added through the store (the supervisor spawns them) and the
    node's MemAvailable drop per added position is measured. The estimate of positions per
    24 GiB node divides what is left under Ray's memory monitor threshold (95%) after the
    fixed part (Ray + static actors) by the per-position figure.

throughput
    One feed, 3 strategies, no held positions, default exits, speed ``max``, on the bundled
    data repeated 3x (92,700 bars), for feed_batch 1, 16 and 256: a fresh system each. The
    feed actor's delivery function is wrapped in place to log (ingest, done, events) of every
    batch; events/s = events delivered in a steady window / window length, lag = done -
    ingest of each batch (the runtime's ``raytrader_feed_lag_seconds``). CPU seconds per
    process class are read from /proc over the window. The feed awaits every consumer of a
    batch before the next one, so strategies always keep up; what is measured is how fast
    they let the feed go.

feed_stall (full run only)
    3 held positions, feed paced at 20 events/s, feed_batch 1: one held position is
    SIGKILLed and the per-batch feed lag around it is recorded.

profile
    py-spy (sampling, ``--nonblocking``, event-loop thread only) of the busy actors for a few
    seconds of the feed_batch 16 (and, full run, 256) throughput runs, summarised as text:
    share of samples by component and the top functions; plus the CPU accounting (/proc) of
    the latency and throughput runs, including how much CPU *other* processes on the machine
    used meanwhile (the figures are only comparable between runs on an equally quiet box).

log_evidence
    Counts of telling lines in the actors' logs (supervisor re-creating actors, the feed
    failing a delivery, positions missing prices, ...) per section.

The sections live in ``runtime_sections`` (with ``runtime_system``: one system and the shared
helpers; ``runtime_proc``: /proc; ``runtime_probes``: what runs inside the actors;
``runtime_profile``: py-spy and the logs); this script plans, runs and reports them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import ray  # noqa: E402

from ops.bench.runtime_proc import _read_stat, descendants, machine  # noqa: E402
from ops.bench.runtime_profile import scan_logs  # noqa: E402
from ops.bench.runtime_sections import (  # noqa: E402
    section_feed_stall,
    section_latency,
    section_memory,
    section_recovery,
    section_throughput,
)
from ops.bench.runtime_system import init_local_ray, kill_namespace  # noqa: E402

DEFAULT_OUT = ROOT / "ops/bench/results/runtime.json"
log = logging.getLogger("bench.runtime")


@dataclass(frozen=True)
class Plan:
    """How big each section is (the full run; ``quick()`` for --quick)."""

    latency_bars: int = 3000
    latency_timeout_s: float = 180.0
    paced_bars: int = 1200
    paced_timeout_s: float = 90.0
    kills: int = 50
    extra_positions: int = 20
    throughput_batches: tuple[int, ...] = (1, 16, 256)
    throughput_window_s: float = 15.0
    profile_s: float = 5.0
    profile_batches: tuple[int, ...] = (16, 256)
    feed_stall: bool = True
    latency_paced: bool = True

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            latency_bars=600,
            latency_timeout_s=40.0,
            kills=10,
            extra_positions=0,
            throughput_batches=(16, 256),
            throughput_window_s=8.0,
            profile_s=3.0,
            profile_batches=(16,),
            feed_stall=False,
            latency_paced=False,
        )


def latency_alone(
    tmp: Path, rows: int, timeout_s: float, name: str, extra: tuple[str, ...], pause: bool = True
) -> dict[str, Any]:
    """A latency section on a system of its own, stopped afterwards (no recovery nor memory on it)."""
    value, system = section_latency(tmp, rows, timeout_s, name=name, extra=extra, pause=pause)
    system.stop()
    return value


def summary_lines(result: dict[str, Any]) -> Iterator[str]:
    for key in ("latency", "latency_nopool", "latency_paced"):
        lat = result.get(key)
        if not lat:
            continue
        a, e, x = lat["all_orders"], lat["entry_orders"], lat["exit_orders"]
        yield (
            f"{key}: all p50 {a['p50_ms']} ms p99 {a['p99_ms']} ms (n={a['count']}); "
            f"entries p50 {e['p50_ms']} p99 {e['p99_ms']} (n={e['count']}); "
            f"exits p50 {x['p50_ms']} p99 {x['p99_ms']} (n={x['count']}); "
            f"bucketed p50 {lat['bucketed_estimate']['p50_ms']} p99 {lat['bucketed_estimate']['p99_ms']}"
        )
    tp = result.get("throughput")
    if tp:
        for run in tp["runs"]:
            yield (
                f"throughput feed_batch {run['feed_batch']:>3}: {run['events_per_s']} events/s "
                f"(polled {run['events_per_s_polled_position']}), lag p99 {run['batch_lag']['p99_ms']} ms, "
                f"max {run['batch_lag']['max_ms']} ms, entries {run['entries_approved_in_window']}"
            )
    rec = result.get("recovery")
    if rec:
        r = rec["recovery_time_first_event"]
        yield (
            f"recovery ({rec['kills']} kills): p50 {r['p50_ms']} ms p99 {r['p99_ms']} ms max {r['max_ms']} ms"
        )
    mem = result.get("memory")
    if mem:
        p = mem["position_actor"]
        est = mem["estimate_24gib_node"]
        yield (
            f"memory per position actor: RSS {p['rss']['mean_mib']} MiB, PSS {p['pss']['mean_mib']} MiB, "
            f"USS {p['uss']['mean_mib']} MiB -> ~{est['positions_by_pss']} positions per 24 GiB node (by PSS)"
        )
    stall = result.get("feed_stall")
    if stall and "max_batch_lag_during_restart_s" in stall:
        lag = stall["max_batch_lag_during_restart_s"]
        yield f"feed stall while a position restarts: max batch lag {lag} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--quick", action="store_true", help="smaller runs, under 2 minutes")
    parser.add_argument(
        "--sections",
        default="latency,latency_nopool,recovery,memory,throughput,profile,latency_paced,feed_stall",
        help="comma-separated subset (recovery and memory run on the latency system)",
    )
    parser.add_argument(
        "--throughput-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config override of every throughput run (repeatable), e.g. runtime.feed_checkpoint_batches=1",
    )
    parser.add_argument(
        "--latency-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config override of the latency sections (repeatable), e.g. runtime.quiet_bands=false",
    )
    parser.add_argument(
        "--position-pool",
        type=int,
        default=None,
        help="runtime.position_pool of the latency section (default: the config's, 2)",
    )
    args = parser.parse_args(argv)
    pool = () if args.position_pool is None else (f"runtime.position_pool={args.position_pool}",)
    pool = (*pool, *args.latency_set)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sections = set(args.sections.split(","))
    quick = args.quick
    plan = Plan.quick() if quick else Plan()
    wall0 = time.time()
    result: dict[str, Any] = {
        "benchmark": "runtime",
        "quick": quick,
        "plan": asdict(plan),
        "machine": machine(),
    }
    tmp = Path(tempfile.mkdtemp(prefix="raytrader-bench-"))
    init_local_ray()
    survivors: dict[int, str] = {}

    windows: dict[str, tuple[float, float]] = {}

    def run(key: str, fn: Callable[[], Any]) -> Any:
        """One section; a failure is recorded in the JSON and the next section still runs."""
        t = time.time()
        try:
            value = fn()
        except Exception as exc:
            log.exception("section %s failed", key)
            result.setdefault("errors", {})[key] = f"{type(exc).__name__}: {exc}"[:2000]
            value = None
        windows[key] = (t, time.time())
        print(f"[{key} done in {time.time() - t:.0f}s]", flush=True)
        return value

    try:
        if sections & {"latency", "recovery", "memory"}:
            pair = run(
                "latency", lambda: section_latency(tmp, plan.latency_bars, plan.latency_timeout_s, extra=pool)
            )
            if pair is not None:
                result["latency"], system = pair
                try:
                    if "recovery" in sections:
                        result["recovery"] = run("recovery", lambda: section_recovery(system, plan.kills))
                    if "memory" in sections:
                        result["memory"] = run("memory", lambda: section_memory(system, plan.extra_positions))
                finally:
                    system.stop()
        if "latency_nopool" in sections:
            no_pool = ("runtime.position_pool=0",)
            result["latency_nopool"] = run(
                "latency_nopool",
                lambda: latency_alone(
                    tmp, plan.latency_bars, plan.latency_timeout_s, "latency-nopool", no_pool
                ),
            )
        if "throughput" in sections:
            profile_batches = plan.profile_batches if "profile" in sections else ()
            result["throughput"] = run(
                "throughput",
                lambda: section_throughput(
                    tmp,
                    plan.throughput_batches,
                    plan.throughput_window_s,
                    profile_batches,
                    plan.profile_s,
                    tuple(args.throughput_set),
                ),
            )
            if profile_batches and result["throughput"]:
                profile: dict[str, Any] = {"cpu_latency_run": (result.get("latency") or {}).get("cpu")}
                for one in result["throughput"]["runs"]:
                    if one["feed_batch"] in profile_batches:
                        profile[f"py_spy_during_feed_batch_{one['feed_batch']}"] = one.pop("profile")
                        profile[f"cpu_throughput_feed_batch_{one['feed_batch']}"] = one["cpu"]
                    else:
                        one.pop("profile", None)
                result["profile"] = profile
        if "latency_paced" in sections and plan.latency_paced:
            paced = ("runtime.feed_batch=1", "replay.speed=3000", *args.latency_set)
            result["latency_paced"] = run(
                "latency_paced",
                lambda: latency_alone(
                    tmp, plan.paced_bars, plan.paced_timeout_s, "latency-paced", paced, pause=False
                ),
            )
        if "feed_stall" in sections and plan.feed_stall:
            result["feed_stall"] = run("feed_stall", lambda: section_feed_stall(tmp))
    finally:
        with contextlib.suppress(Exception):
            result["log_evidence"] = scan_logs(windows)
        ours = descendants(os.getpid())
        for name in ray.util.list_named_actors(all_namespaces=True):
            if isinstance(name, dict) and str(name.get("namespace", "")).startswith("rtbench-"):
                kill_namespace(str(name["namespace"]))
        ray.shutdown()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            survivors = {p: c for p, c in ours.items() if _read_stat(p) is not None}
            if not survivors:
                break
            time.sleep(0.5)
        for pid in survivors:  # processes this run started; by pid only
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(tmp, ignore_errors=True)
    result["processes_left_after_shutdown"] = {str(p): c[:120] for p, c in survivors.items()}
    result["wall_s"] = round(time.time() - wall0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    for line in summary_lines(result):
        print(line)
    print(f"wall {result['wall_s']} s; results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
