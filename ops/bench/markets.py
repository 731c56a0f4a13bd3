"""A feed actor per market, measured: start-up of the default portfolio, memory per feed actor,
and how many markets one node holds by memory.

    python ops/bench/markets.py [--out FILE]

Starts the default paper portfolio (every strategy, every market of ``config/default.toml``) on a
local Ray instance in its own namespace and state directory, times ``start_system`` and the wait
until every feed has sent a heartbeat, reads RSS/PSS/USS of every actor's worker process from
/proc, and writes ops/bench/results/markets.json (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import ray  # noqa: E402

from actors.domain.names import parse_actor_name  # noqa: E402
from actors.domain.topology import topology  # noqa: E402
from config.loader import load_settings  # noqa: E402
from ops.bench.runtime_proc import meminfo, proc_memory  # noqa: E402
from ops.bench.runtime_system import actor_pids, kill_namespace, wait_until  # noqa: E402
from supervisor.control import runtime  # noqa: E402

DEFAULT_OUT = ROOT / "ops/bench/results/markets.json"
NAMESPACE = "bench-markets"


class _Running:
    """What ``actor_pids`` needs of a running system: its settings and status."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    def status(self) -> dict[str, Any]:
        return runtime.status(self.settings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    state = Path(tempfile.mkdtemp(prefix="raytrader-bench-markets-"))
    settings = load_settings(
        None, env={}, overrides=[f'state_dir="{state}"', f'runtime.namespace="{NAMESPACE}"', "metrics.port=0"]
    )
    feeds = topology(settings).feeds
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20)
    system = _Running(settings)
    try:
        t0 = time.perf_counter()
        runtime.start_system(settings)
        started_s = time.perf_counter() - t0

        def feeds_beating() -> bool:
            actors = system.status()["actors"]
            beating = {a["name"] for a in actors if a["kind"] == "feed" and a["heartbeat_age_s"] is not None}
            return len(beating) == len(feeds)

        wait_until("every feed's first heartbeat", feeds_beating, timeout_s=300)
        ready_s = time.perf_counter() - t0
        time.sleep(5.0)  # let every actor load its data and indicators before reading memory
        per_kind: dict[str, list[dict[str, int]]] = {}
        for name, pid in actor_pids(system).items():  # type: ignore[arg-type]  # the duck it needs
            mem = proc_memory(pid)
            if mem is not None:
                per_kind.setdefault(parse_actor_name(name).kind, []).append(mem)
    finally:
        runtime.stop_system(settings, cancel_orders=True, teardown=True)
        kill_namespace(NAMESPACE)
        ray.shutdown()

    def mib(values: list[int]) -> float:
        return round(statistics.fmean(values) / 2**20, 1)

    kinds = {
        kind: {"actors": len(mems), **{f"{k}_mib": mib([m[k] for m in mems]) for k in ("rss", "pss", "uss")}}
        for kind, mems in sorted(per_kind.items())
    }
    feed_pss = kinds.get("feed", {}).get("pss_mib") or 0.0
    fixed_pss = sum(v["pss_mib"] * v["actors"] for k, v in kinds.items() if k != "feed")
    node_mib = meminfo()["MemTotal"] / 2**20
    result = {
        "benchmark": "markets",
        "feeds": list(feeds),
        "start_system_s": round(started_s, 2),
        "all_feeds_beating_s": round(ready_s, 2),
        "actors": kinds,
        "node_mem_mib": round(node_mib),
        "markets_per_node_by_memory": int((node_mib - fixed_pss) // feed_pss) if feed_pss else None,
        "note": "one feed actor per Binance market; a strategy's per-market core lives in its strategy actor",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
