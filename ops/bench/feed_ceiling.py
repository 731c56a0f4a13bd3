"""Feed ceiling: how fast one feed actor delivers when its consumers cost nothing.

    python ops/bench/feed_ceiling.py [--out ops/bench/results/feed_ceiling.json] [--window 8] [--rounds 2]

The real ``FeedActor`` and the real ``StoreActor`` (LMDB, durable commits) on the bundled BTC/USDT
1m data repeated 5x, replay speed ``max``; the venue, the three strategies (mean_reversion,
ml_momentum, momentum_breakout) and the portfolio are sinks: async actors under their names that
answer at once. What is left is the feed's own path per batch: reading the source, sorting the
batch per consumer, the two awaited delivery hops (venue; strategies and portfolio together),
serialising the events, and its checkpoints. So this is an upper bound on a feed's throughput,
the part a faster feed can win; the end-to-end figure (real consumers) is ``runtime.py
--sections throughput``. Each feed_batch runs with the feed's checkpoint after every batch
(``runtime.feed_checkpoint_batches=1``, as before issue 13) and with the defaults, interleaved,
``rounds`` times, each on a fresh namespace and store; events/s = the feed's position over the
window (polled) / window wall time. Every actor is killed at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import ray  # noqa: E402

from actors.domain.names import PORTFOLIO, STORE, feed_name, strategy_name, venue_name  # noqa: E402
from actors.shells.base import actor_options, remote  # noqa: E402
from actors.shells.feed import FeedActor  # noqa: E402
from actors.shells.store import StoreActor, store_path  # noqa: E402
from ops.bench.runtime_proc import machine  # noqa: E402
from ops.bench.runtime_system import (  # noqa: E402
    STRATEGIES,
    System,
    init_local_ray,
    kill_namespace,
    write_data,
)

DEFAULT_OUT = ROOT / "ops/bench/results/feed_ceiling.json"
MARKET = "binance:BTC/USDT"
MODES = {"checkpoint_every_batch": ("runtime.feed_checkpoint_batches=1",), "defaults": ()}


@ray.remote
class Sink:
    """A consumer that costs nothing: the venue's, a strategy's and the portfolio's methods."""

    async def on_market(self, *_args: Any) -> int:
        return 0

    async def on_events(self, *_args: Any) -> int:
        return 0

    async def ping(self) -> str:
        return "sink"


def one_run(tmp: Path, data: Path, batch: int, mode: str, n: int, window_s: float) -> dict[str, Any]:
    name = f"rtbench-ceiling-{n}"
    settings = System(
        name, tmp / name, data, overrides=(f"runtime.feed_batch={batch}", *MODES[mode])
    ).settings
    store_path(settings).parent.mkdir(parents=True, exist_ok=True)
    try:
        store = remote(StoreActor).options(**actor_options(settings, STORE)).remote(settings)
        ray.get(store.ping.remote())
        sinks = [venue_name("binance"), PORTFOLIO, *(strategy_name(s) for s in STRATEGIES)]
        ray.get([remote(Sink).options(**actor_options(settings, s)).remote().ping.remote() for s in sinks])
        options = actor_options(settings, feed_name(MARKET))
        feed = remote(FeedActor).options(**options).remote(settings, MARKET)
        deadline = time.monotonic() + 60
        while ray.get(feed.status.remote())["position"] == 0:
            if time.monotonic() > deadline:
                raise TimeoutError("the feed delivered nothing in 60 s")
            time.sleep(0.05)
        time.sleep(1.0)
        t0, p0 = time.time(), ray.get(feed.status.remote())["position"]
        time.sleep(window_s)
        status = ray.get(feed.status.remote())
        t1, p1 = time.time(), status["position"]
    finally:
        kill_namespace(name)
    return {
        "feed_batch": batch,
        "mode": mode,
        "events_per_s": round((p1 - p0) / (t1 - t0), 1),
        "events": p1 - p0,
        "window_s": round(t1 - t0, 2),
        "finished": bool(status["done"]),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--window", type=float, default=8.0, help="seconds measured per run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batches", default="1,16,256")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    batches = [int(b) for b in args.batches.split(",")]
    result: dict[str, Any] = {"benchmark": "feed_ceiling", "machine": machine(), "window_s": args.window}
    tmp = Path(tempfile.mkdtemp(prefix="raytrader-ceiling-"))
    init_local_ray()
    runs: list[dict[str, Any]] = []
    try:
        data = write_data(tmp / "ceiling.csv", None, copies=5)
        n = 0
        for _round in range(args.rounds):
            for batch in batches:
                for mode in MODES:
                    n += 1
                    run = one_run(tmp, data, batch, mode, n, args.window)
                    print(json.dumps(run), flush=True)
                    runs.append(run)
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    summary = {}
    for batch in batches:
        for mode in MODES:
            rates = [r["events_per_s"] for r in runs if r["feed_batch"] == batch and r["mode"] == mode]
            median = statistics.median(rates)
            summary[f"batch_{batch}_{mode}"] = {"median_events_per_s": median, "runs": rates}
    result.update(
        {
            "method": __doc__,
            "runs": runs,
            "summary": summary,
            "aim_events_per_s": 20000,
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        }
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    for key, value in summary.items():
        print(f"{key}: {value['median_events_per_s']} events/s (runs {value['runs']})")
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
