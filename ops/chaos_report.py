"""A chaos run's report: faults by kind, recovery times (p50/p99/max, overall and per kind), what the
venue and store faults struck, and the verdict of every invariant; as JSON and as the summary a
person reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from supervisor.control.invariants import InvariantResult


def _percentiles(times: Sequence[float]) -> dict[str, float | None]:
    ordered = sorted(times)

    def pct(q: float) -> float | None:
        return None if not ordered else round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

    return {"p50": pct(0.5), "p99": pct(0.99), "max": round(ordered[-1], 3) if ordered else None}


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
    struck: dict[str, int] = field(default_factory=dict)
    """How often the venue and store faults acted (orders refused, events thinned, calls failed,
    writes that found the map full)."""
    replayed_signals_refused: int = 0

    @property
    def ok(self) -> bool:
        return bool(self.invariants) and all(r.ok for r in self.invariants)

    def as_dict(self) -> dict[str, Any]:
        times = [r["seconds"] for r in self.recoveries if r.get("seconds") is not None]
        by_kind: dict[str, list[float]] = {}
        for r in self.recoveries:
            if r.get("seconds") is not None:
                by_kind.setdefault(r["kind"], []).append(r["seconds"])
        return {
            "seed": self.seed,
            "duration_s": self.duration_s,
            "faults_injected": sum(self.faults.values()),
            "faults_by_kind": dict(sorted(self.faults.items())),
            "fault_kinds": len(self.faults),
            "recoveries": len(times),
            "recovery_s": _percentiles(times),
            "recovery_s_by_kind": {k: {"n": len(v), **_percentiles(v)} for k, v in sorted(by_kind.items())},
            "skipped": self.skipped,
            "recovery_events": self.recoveries,
            "struck": dict(sorted(self.struck.items())),
            "replayed_signals_refused": self.replayed_signals_refused,
            "orders": self.orders,
            "fills": self.fills,
            "trades": self.trades,
            "restarts_seen_by_supervisor": self.restarts,
            "invariants": [r.as_dict() for r in self.invariants],
            "ok": self.ok,
        }

    def summary(self) -> str:
        """The figures a person reads: faults by kind, recovery p50/p99, the invariants."""
        d = self.as_dict()
        rec = d["recovery_s"]
        lines = [
            f"chaos seed {self.seed}, {self.duration_s:g} s: {d['faults_injected']} faults of "
            f"{d['fault_kinds']} kinds, {len(self.skipped)} skipped; "
            f"{self.orders} orders, {self.fills} fills, "
            f"{self.trades} round trips; {self.replayed_signals_refused} replayed signals refused",
            f"recovery p50 {rec['p50']} s, p99 {rec['p99']} s, max {rec['max']} s over {d['recoveries']}",
            "faults by kind (n, recovery p50/p99 s):",
        ]
        for kind, n in d["faults_by_kind"].items():
            r = d["recovery_s_by_kind"].get(kind)
            timing = f"{r['p50']} / {r['p99']}" if r else "-"
            lines.append(f"  {kind:20} {n:3}  {timing}")
        lines.append("invariants:")
        for inv in self.invariants:
            mark = "ok  " if inv.ok else "FAIL"
            lines.append(f"  {mark} {inv.number} {inv.name} ({inv.checked} checked)")
            lines += [f"         {v}" for v in inv.violations[:5]]
        lines.append("verdict: " + ("every invariant held" if self.ok else "VIOLATED"))
        return "\n".join(lines)
