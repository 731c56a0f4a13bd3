"""Where the runtime's time goes: py-spy profiles of the busy actors, summarised as text, and
the telling lines of the actors' logs counted per section.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import ray

from actors.domain.names import PORTFOLIO, STORE, SUPERVISOR, feed_name, strategy_name, venue_name
from ops.bench.runtime_system import ROOT, STRATEGIES, System, actor_pids

COMPONENTS = (
    (f"{ROOT}/actors/", "raytrader actors"),
    (f"{ROOT}/supervisor/", "raytrader supervisor"),
    (f"{ROOT}/config/", "raytrader config"),
    ("pydantic", "pydantic"),
    ("lmdb", "lmdb"),
    ("/ray/", "ray (serialization, core worker, asyncio glue)"),
    ("asyncio", "asyncio"),
    ("/json/", "json"),
    ("numpy", "numpy"),
    ("sklearn", "sklearn"),
    ("decimal", "decimal"),
)


def _component(frame: str) -> str:
    for needle, name in COMPONENTS:
        if needle in frame:
            return name
    return "other (stdlib, builtins)"


def profile_actors(system: System, seconds: float) -> dict[str, Any]:
    """py-spy record (raw collapsed stacks) of the busiest actors at once; summarised as text."""
    if shutil.which("py-spy") is None:
        return {"error": "py-spy not found"}
    pids = actor_pids(system)
    wanted = [feed_name("binance"), venue_name("binance"), STORE, PORTFOLIO, SUPERVISOR] + [
        strategy_name(s) for s in STRATEGIES
    ]
    rate = 100
    out_dir = system.root / "pyspy"
    out_dir.mkdir(parents=True, exist_ok=True)
    procs: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    for name in wanted:
        if name not in pids:
            continue
        path = out_dir / f"{name.replace(':', '_')}.txt"
        cmd = [
            "py-spy",
            "record",
            "--pid",
            str(pids[name]),
            "--duration",
            str(int(seconds)),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--output",
            str(path),
            "--nonblocking",
            "--threads",
            "--full-filenames",
        ]
        procs[name] = (subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), path)
    summary: dict[str, Any] = {}
    for name, (proc, path) in procs.items():
        try:
            _out, err = proc.communicate(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            summary[name] = {"error": "py-spy timed out"}
            continue
        if not path.exists():
            summary[name] = {"error": err.decode(errors="replace")[-300:]}
            continue
        summary[name] = summarise_stacks(path.read_text(), seconds * rate)
    return {
        "tool": f"py-spy record --rate {rate} --nonblocking, {int(seconds)} s, all at once",
        "actors": summary,
    }


def summarise_stacks(raw: str, possible: float) -> dict[str, Any]:
    """Samples of the actor's event-loop thread ("AsyncIO Thread"), where all actor code runs."""
    leaf: Counter[str] = Counter()
    comp: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    total = other_threads = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rstrip().rpartition(" ")
        try:
            count = int(count_text)
        except ValueError:
            continue
        frames = stack.split(";")
        if "AsyncIO Thread" not in frames[0]:
            other_threads += count
            continue
        frames = frames[1:]
        total += count
        top = frames[-1] if frames else "(native)"
        if top.startswith("Thread.run "):
            leaf["event loop itself (native: epoll, callbacks)"] += count
            comp["asyncio"] += count
        else:
            leaf[_short(top)] += count
            comp[_component(top)] += count
        seen = set()
        for frame in frames:
            if (f"{ROOT}/actors/" in frame or f"{ROOT}/supervisor/" in frame) and frame not in seen:
                seen.add(frame)
                ours[_short(frame)] += count
    return {
        "event_loop_samples": total,
        "event_loop_busy_fraction": round(total / possible, 3) if possible else None,
        "other_thread_samples": other_threads,
        "self_by_component": {k: round(v / total, 3) for k, v in comp.most_common(8)} if total else {},
        "top_self": [[k, round(v / total, 3)] for k, v in leaf.most_common(6)] if total else [],
        "top_raytrader_inclusive": [[k, round(v / total, 3)] for k, v in ours.most_common(8)]
        if total
        else [],
    }


def _short(frame: str) -> str:
    """'func (/long/path/pkg/file.py:12)' -> 'func (pkg/file.py:12)'."""
    m = re.match(r"(.*) \((.*):(\d+)\)$", frame)
    if not m:
        return frame[-100:]
    func, path, line = m.groups()
    parts = Path(path).parts
    return f"{func} ({'/'.join(parts[-2:])}:{line})"


LOG_PATTERNS = {
    "supervisor_recreated_an_actor": "re-creating it from the store",
    "supervisor_saw_a_restart": "restarted (incarnation",
    "portfolio_gave_up_waiting_for_a_new_position": "did not start in time",
    "feed_missed_delivery_to_a_position": "missed prices",
    "stuck_position_redriven": "stuck position",
    "orphaned_order_cancelled": "orphaned order",
    "restart_budget_spent": "spent its restart budget",
    "feed_delivery_failed": "delivery failed; retrying the batch",
    "store_unavailable": "store unavailable",
    "venue_updates_for_missing_position": "but no such position actor",
    "position_startup_failed": "startup failed",
}
_LOG_TS = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}),(\d{3}) ")


def scan_logs(windows: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """Count telling log lines of the actors (they log to their worker's stderr) per section."""
    try:
        node: Any = ray._private.worker._global_node
        session = Path(node.get_session_dir_path())
    except Exception as exc:
        return {"error": f"no session dir: {exc}"}
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    examples: dict[str, list[str]] = defaultdict(list)
    paths = sorted((session / "logs").glob("worker-*")) + sorted((session / "logs").glob("old/worker-*"))
    for path in paths:
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            for key, needle in LOG_PATTERNS.items():
                if needle not in line:
                    continue
                m = _LOG_TS.match(line)
                when = (
                    time.mktime(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")) + int(m.group(2)) / 1000
                    if m
                    else None
                )
                section = next(
                    (name for name, (a, b) in windows.items() if when is not None and a <= when <= b),
                    "unknown",
                )
                counts[key][section] += 1
                if len(examples[key]) < 3:
                    examples[key].append(line[:300])
    return {
        "method": "grep of the actors' worker logs (session logs dir), attributed to sections by timestamp",
        "counts": {k: dict(v) for k, v in sorted(counts.items())},
        "examples": dict(examples),
    }
