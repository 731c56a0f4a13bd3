"""What a new position actor's worker imports, and what it costs, before and after a change.

    python ops/bench/worker_start.py [--before REV] [--runs N] [--out FILE]

A Ray worker that runs a ``PositionActor`` imports the actor's module, and, for every actor it
calls (the store, the supervisor it sends heartbeats to, its venue, its feed, the portfolio), that
actor's class module as well: Ray loads an actor's class in the calling process to make a handle
to it (``ray.get_actor``). Each run is a fresh interpreter that has already imported ``ray`` and
``pyarrow`` (every Ray worker has: Ray registers pyarrow's serializers when the worker first
(de)serializes an argument), so the timed import is this project's own share; the CPU seconds of
the whole process (interpreter, Ray, pyarrow and ours) are reported beside it. ``--before REV``
runs the same in a temporary ``git worktree`` of ``REV`` (runs alternated with the working tree's,
median of ``--runs``); the history of this checkout is not touched. ``now_bytecode_cached`` is
the working tree again with Python's bytecode cache on (in a temporary ``PYTHONPYCACHEPREFIX``,
warmed once): where ``PYTHONDONTWRITEBYTECODE`` is set and the tree has no ``__pycache__`` (an
editable install), every worker compiles the project's modules from source each time it starts.
Results go to ops/bench/results/worker_start.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

POSITION_MODULE = "actors.shells.position"
CALLED_ACTOR_MODULES = (
    "actors.shells.store",
    "supervisor.control.actor",
    "actors.shells.venue",
    "actors.shells.feed",
    "actors.shells.portfolio",
)
"""The class modules of the actors a position actor calls: Ray imports each to make its handle."""

POSITION_WORKER_MODULES = (POSITION_MODULE, *CALLED_ACTOR_MODULES)

HEAVY = (
    "aiohttp",
    "ccxt",
    "py_clob_client",
    "sklearn",
    "pandas",
    "matplotlib",
    "scipy",
    "typer",
    "rich",
    "actors.venues.binance",
    "actors.venues.polymarket",
    "supervisor.research",
    "supervisor.cli",
    "ops",
)
"""Packages a position actor never uses: a venue client, the research stack, the CLI, the tools."""

_PROBE = """
import importlib, json, resource, sys, time
import ray, pyarrow

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

modules, heavy = json.loads(sys.argv[1])
wall0, cpu0 = time.perf_counter(), cpu()
loaded = [importlib.import_module(m) for m in modules]
print(json.dumps({
    "import_s": time.perf_counter() - wall0,
    "import_cpu_s": cpu() - cpu0,
    "process_cpu_s": cpu(),
    "heavy": sorted({h for m in sys.modules for h in heavy if m == h or m.startswith(h + ".")}),
    "files": [getattr(m, "__file__", None) for m in loaded],
}))
"""


def loaded_modules(
    tree: Path, modules: tuple[str, ...], bytecode_cache: Path | None = None
) -> dict[str, Any]:
    """Import ``modules`` from ``tree`` in a fresh interpreter (after ray and pyarrow): time, CPU,
    and which of :data:`HEAVY` came with them. ``bytecode_cache``: Python's bytecode cache there
    (else the environment decides, ``PYTHONDONTWRITEBYTECODE`` included)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    if bytecode_cache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(bytecode_cache)
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps([list(modules), list(HEAVY)])],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    outside = [f for f in result["files"] if f is not None and not f.startswith(str(tree))]
    if outside:
        raise RuntimeError(f"imported from outside {tree}: {outside}")
    return result


def _median_ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 1)


def measure(trees: dict[str, tuple[Path, Path | None]], runs: int) -> dict[str, Any]:
    """Every tree (with its bytecode cache, if any), every module set, ``runs`` times, alternated."""
    sets = {
        "position_module": (POSITION_MODULE,),
        "position_worker": POSITION_WORKER_MODULES,
        "ray_and_pyarrow_only": (),
    }
    for tree, cache in trees.values():
        if cache is not None:
            loaded_modules(tree, POSITION_WORKER_MODULES, cache)  # warm the cache
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {t: {s: [] for s in sets} for t in trees}
    for _ in range(runs):
        for name, modules in sets.items():
            for label, (tree, cache) in trees.items():
                samples[label][name].append(loaded_modules(tree, modules, cache))
    results: dict[str, Any] = {}
    for label, per_set in samples.items():
        results[label] = {
            name: {
                "import_ms_median": _median_ms([r["import_s"] for r in rows]),
                "import_cpu_ms_median": _median_ms([r["import_cpu_s"] for r in rows]),
                "process_cpu_s_median": round(statistics.median(r["process_cpu_s"] for r in rows), 3),
                "import_ms_all": [round(r["import_s"] * 1000, 1) for r in rows],
                "heavy_loaded": rows[-1]["heavy"],
            }
            for name, rows in per_set.items()
        }
    return results


def constructor(runs: int) -> dict[str, Any]:
    """A position actor's constructor in fresh Ray workers, against a real Store actor holding one
    position (a held entry, as in the runtime benchmark): the real ``__init__`` (named path, its
    heartbeats and start-up left out so it sends nothing), then its parts one by one in a probe."""
    import ray

    from actors.core.position import PositionCore
    from actors.domain.model import Instrument
    from actors.domain.names import STORE
    from actors.shells.base import actor_options, get_actor, register_alias, remote
    from actors.shells.position import PositionActor
    from actors.shells.store import StoreActor
    from config.models import ExitConfig, Settings
    from ops.bench.runtime_system import System, init_local_ray, write_data

    position_class: Any = PositionActor.__ray_metadata__.modified_class.__ray_actor_class__  # type: ignore[attr-defined]

    class TimedPosition(position_class):  # type: ignore[misc]
        def __init__(self, settings: Settings, position_id: str) -> None:
            started = time.perf_counter()
            super().__init__(settings, position_id)
            self.init_s = time.perf_counter() - started

        def _shell_start(self) -> None:  # no heartbeats: there is no supervisor here
            pass

        async def _startup(self, fresh: bool = False) -> None:  # no venue, no feed: nothing sent
            del fresh

        async def init_seconds(self) -> float:
            return float(self.init_s)

    class Parts:
        def run(self, settings: Settings, position_id: str) -> dict[str, float]:
            times: dict[str, float] = {}
            clock = time.perf_counter()

            def lap(name: str) -> None:
                nonlocal clock
                now = time.perf_counter()
                times[name] = now - clock
                clock = now

            store = get_actor(settings, STORE)
            lap("get_actor_store_with_class_load")
            record = ray.get(store.get.remote("position", position_id))
            lap("store_get_position_first_call")
            ray.get(store.get.remote("portfolio", "pool:0"))
            lap("store_get_second_call")
            instrument = Instrument.model_validate(record["instrument"])
            exits = ExitConfig.model_validate(record["exits"])
            lap("validate_instrument_and_exits")
            PositionCore.from_state(record["core"], instrument, exits)
            lap("core_from_state")
            register_alias(settings, "position:bench-alias", "pool:bench")
            lap("register_alias_gcs_put")
            return times

    with tempfile.TemporaryDirectory(prefix="worker_start_") as tmp:
        system = System("rtbench-ctor", Path(tmp), write_data(Path(tmp) / "btc.csv", rows=100), holds=1)
        system.write_holds()
        settings = system.settings
        position_id = system.hold_ids()[0]
        init_local_ray()
        try:
            store = remote(StoreActor).options(**actor_options(settings, STORE)).remote(settings)
            ray.get(store.ping.remote())
            whole: list[float] = []
            parts: dict[str, list[float]] = {}
            for _ in range(runs):
                actor = (
                    remote(ray.remote(TimedPosition))
                    .options(namespace=settings.runtime.namespace)
                    .remote(settings, position_id)
                )
                whole.append(ray.get(actor.init_seconds.remote()))
                ray.kill(actor)
                probe = remote(ray.remote(Parts)).options(namespace=settings.runtime.namespace).remote()
                for name, seconds in ray.get(probe.run.remote(settings, position_id)).items():
                    parts.setdefault(name, []).append(seconds)
                ray.kill(probe)
        finally:
            ray.shutdown()
    return {
        "init_ms_median": _median_ms(whole),
        "init_ms_all": [round(v * 1000, 1) for v in whole],
        "parts_ms_median": {name: _median_ms(values) for name, values in parts.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--before", help="a commit to compare with (run from a temporary git worktree)")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--out", type=Path, default=ROOT / "ops/bench/results/worker_start.json")
    parser.add_argument(
        "--constructor", action="store_true", help="also time the constructor in Ray workers (local Ray)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wt_before_") as tmp:
        trees: dict[str, tuple[Path, Path | None]] = {
            "now": (ROOT, None),
            "now_bytecode_cached": (ROOT, Path(tmp) / "pycache"),
        }
        worktree = Path(tmp) / "tree"
        if args.before:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(worktree), args.before],
                check=True,
                capture_output=True,
            )
            trees["before"] = (worktree, None)
        try:
            results = measure(trees, args.runs)
        finally:
            if args.before:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)], check=True
                )
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    report = {
        "benchmark": "worker_start",
        "method": __doc__,
        "modules": {"position_module": [POSITION_MODULE], "position_worker": list(POSITION_WORKER_MODULES)},
        "heavy_watched": list(HEAVY),
        "runs": args.runs,
        "trees": {
            "now": f"{head} + working tree",
            "now_bytecode_cached": f"{head} + working tree, bytecode cached",
            **({"before": args.before} if args.before else {}),
        },
        "environment": {"PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE")},
        "results": results,
        **({"constructor": constructor(args.runs)} if args.constructor else {}),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["results"], indent=1))


if __name__ == "__main__":
    main()
