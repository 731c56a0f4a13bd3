"""What the runtime benchmark reads from /proc: the machine, memory of processes, CPU seconds
per process class of this driver's tree (``CpuMeter``), and the tree itself (Ray's processes
are descendants of the driver). psutil is not installed; /proc says all that is needed.
"""

from __future__ import annotations

import os
import platform
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import ray

CLK_TCK = os.sysconf("SC_CLK_TCK")


def machine() -> dict[str, Any]:
    mem = meminfo()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "mem_total_gib": round(mem["MemTotal"] / 2**30, 2),
        "ray": ray.__version__,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def meminfo() -> dict[str, int]:
    out: dict[str, int] = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, rest = line.split(":", 1)
        out[name] = int(rest.split()[0]) * 1024
    return out


def proc_memory(pid: int) -> dict[str, int] | None:
    """VmRSS, Pss and USS (private clean + dirty) of one process, in bytes."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    fields: dict[str, int] = {}
    for line in (status + rollup).splitlines():
        if ":" not in line:
            continue
        name, rest = line.split(":", 1)
        parts = rest.split()
        if len(parts) == 2 and parts[1] == "kB":
            fields[name.strip()] = int(parts[0]) * 1024
    return {
        "rss": fields.get("VmRSS", 0),
        "pss": fields.get("Pss", 0),
        "uss": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0),
    }


def _read_stat(pid: int) -> tuple[int, float] | None:
    """(ppid, cpu seconds) of a live (not zombie) process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = raw[raw.rindex(")") + 2 :].split()
    if rest[0] in ("Z", "X"):
        return None
    return int(rest[1]), (int(rest[11]) + int(rest[12])) / CLK_TCK


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def descendants(root: int) -> dict[int, str]:
    """pid -> command line of every live descendant of ``root`` (Ray's processes are ours)."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _read_stat(int(entry))
            if st is not None:
                parent[int(entry)] = st[0]
    children: dict[int, list[int]] = defaultdict(list)
    for pid, ppid in parent.items():
        children[ppid].append(pid)
    found: dict[int, str] = {}
    stack = list(children[root])
    while stack:
        pid = stack.pop()
        found[pid] = _cmdline(pid)
        stack += children[pid]
    return found


def label_of(cmdline: str) -> str:
    """A process class: the actor class from Ray's process title, or the Ray daemon's name."""
    if cmdline.startswith("ray::"):
        title = cmdline.split(maxsplit=1)[0][len("ray::") :]
        return "ray::" + title.rsplit(":", 1)[-1].split(".")[0]
    for name in ("raylet", "gcs_server", "log_monitor", "dashboard", "runtime_env", "py-spy"):
        if name in cmdline:
            return name
    if "default_worker.py" in cmdline:
        return "ray::(starting worker)"
    return "other:" + " ".join(cmdline.split()[:2])[-60:]


def process_start_wall(pid: int) -> float | None:
    """Wall-clock start time of a process (10 ms resolution)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
        btime = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime")
        )
    except (OSError, StopIteration):
        return None
    rest = raw[raw.rindex(")") + 2 :].split()
    return btime + int(rest[19]) / CLK_TCK


def busy_jiffies() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine, from /proc/stat."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    total = sum(parts[:8])
    idle = parts[3] + parts[4]
    return (total - idle) / CLK_TCK, total / CLK_TCK


class CpuMeter:
    """CPU seconds per process class of this driver's process tree over a window (polled)."""

    def __init__(self, poll_s: float = 0.5) -> None:
        self.poll_s = poll_s
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.labels: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started = 0.0
        self.wall = 0.0
        self.machine0 = (0.0, 0.0)
        self.machine1 = (0.0, 0.0)

    def _poll(self, initial: bool = False) -> None:
        me = os.getpid()
        procs = descendants(me)
        procs[me] = "driver"
        for pid, cmd in procs.items():
            st = _read_stat(pid)
            if st is None:
                continue
            if pid not in self.first:
                self.first[pid] = st[1] if initial else 0.0
            self.last[pid] = st[1]
            label = "driver (this benchmark)" if pid == me else label_of(cmd)
            if label != "ray::IDLE" or pid not in self.labels:
                self.labels[pid] = label

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            self._poll()

    def __enter__(self) -> CpuMeter:
        self.started = time.monotonic()
        self.machine0 = busy_jiffies()
        self._poll(initial=True)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._poll()
        self.wall = time.monotonic() - self.started
        self.machine1 = busy_jiffies()

    def report(self) -> dict[str, Any]:
        by_label: dict[str, float] = defaultdict(float)
        count: Counter[str] = Counter()
        for pid, last in self.last.items():
            by_label[self.labels[pid]] += max(0.0, last - self.first.get(pid, 0.0))
            count[self.labels[pid]] += 1
        ours = sum(by_label.values())
        busy = self.machine1[0] - self.machine0[0]
        capacity = self.wall * (os.cpu_count() or 1)
        rows = sorted(by_label.items(), key=lambda kv: -kv[1])
        return {
            "window_s": round(self.wall, 2),
            "cpu_capacity_s": round(capacity, 2),
            "machine_busy_s": round(busy, 2),
            "ours_s": round(ours, 2),
            "others_on_machine_s": round(max(0.0, busy - ours), 2),
            "by_process_class": [
                {
                    "class": k,
                    "processes": count[k],
                    "cpu_s": round(v, 2),
                    "share_of_ours": round(v / ours, 3) if ours else None,
                }
                for k, v in rows
                if v >= 0.01
            ],
        }
