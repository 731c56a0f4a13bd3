"""What the supervisor knows of each actor, and the operator's snapshot of it all (``raytrader status``).

Pure: the snapshot is built from the supervisor's records, so what status says is testable without Ray.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from actors.domain.telemetry import Heartbeat


@dataclass
class ActorRecord:
    """What the supervisor knows of one actor it expects to exist."""

    name: str
    kind: str
    last_beat_wall: float | None = None
    heartbeat: Heartbeat | None = None
    incarnation: str | None = None
    """The incarnation acknowledged by the control loop (the latest beat may carry a newer one)."""
    restarts: deque[float] = field(default_factory=deque)
    restarts_total: int = 0
    recreated: int = 0
    budget_spent: bool = False
    created_wall: float = field(default_factory=time.time)
    """When the supervisor first expected it: start-up grace counts from here, not from its own start."""
    redrives: int = 0
    escalated: bool = False
    last_redrive_wall: float = 0.0


def _actor_row(record: ActorRecord, now: float) -> dict[str, Any]:
    beat = record.heartbeat
    return {
        "name": record.name,
        "kind": record.kind,
        "heartbeat_age_s": None if record.last_beat_wall is None else round(now - record.last_beat_wall, 3),
        "restarts": record.restarts_total,
        "detail": beat.detail if beat is not None else {},
        "event_ms": beat.event_ms if beat is not None else None,
        "owned_orders": list(beat.owned_orders) if beat is not None else [],
    }


def status_snapshot(
    records: Iterable[ActorRecord],
    now: float,
    *,
    started: bool,
    frozen: bool,
    metrics_port: int | None,
    orphans: Sequence[dict[str, Any]],
    stuck: Sequence[dict[str, Any]],
    unreadable: Mapping[str, str],
    redemptions: Sequence[dict[str, Any]],
    ticks: int,
) -> dict[str, Any]:
    """Every actor with its last heartbeat, the portfolio's and the positions' reports, and what the
    supervisor found (orphans, stuck and unreadable positions, redemptions pending)."""
    ordered = sorted(records, key=lambda r: (r.kind, r.name))
    actors = [_actor_row(r, now) for r in ordered]
    portfolio: dict[str, Any] = next((a["detail"] for a in actors if a["kind"] == "portfolio"), {})
    feeds = [a for a in actors if a["kind"] == "feed"]
    positions = [a for a in actors if a["kind"] == "position"]
    return {
        "started": started,
        "frozen": frozen,
        "kill_switch_latched": frozen,
        "frozen_positions": sorted(p["name"] for p in positions if p["detail"].get("frozen")),
        "metrics_port": metrics_port,
        "actors": actors,
        "portfolio": portfolio,
        "feeds_done": bool(feeds) and all(f["detail"].get("done") for f in feeds),
        "positions": positions,
        "transient_positions": sum(
            1 for p in positions if p["detail"].get("status") in ("entering", "closing")
        ),
        "restarts": sum(r.restarts_total for r in ordered),
        "orphans": list(orphans),
        "stuck": list(stuck),
        "unreadable_positions": dict(unreadable),
        "pending_redemptions": list(redemptions),
        "ticks": ticks,
    }


def status_lines(snapshot: Mapping[str, Any]) -> list[str]:
    """``raytrader status`` as text: what an operator must see without ``--json``, including what
    needs a hand (a latched kill switch, unreadable positions, redemptions to send on chain)."""
    p = snapshot.get("portfolio", {})
    latched = "LATCHED (clear: raytrader resume)" if snapshot.get("kill_switch_latched") else "clear"
    lines = [
        f"equity {p.get('equity')}  realised {p.get('realized_pnl')}  halted {p.get('halted') or 'no'}",
        f"kill switch {latched}  frozen positions {len(snapshot.get('frozen_positions', []))}",
    ]
    lines += [
        f"{a['kind']:10} {a['name']:48} age {a['heartbeat_age_s']}s restarts {a['restarts']}"
        for a in snapshot.get("actors", [])
    ]
    lines.append(
        f"orphans found {len(snapshot.get('orphans', []))}, "
        f"stuck positions found {len(snapshot.get('stuck', []))}"
    )
    unreadable: Mapping[str, str] = snapshot.get("unreadable_positions", {})
    if unreadable:
        lines.append(
            f"UNREADABLE positions {len(unreadable)} (kept out of the orphan hunt; inspect the store):"
        )
        lines += [f"  {name}: {why}" for name, why in sorted(unreadable.items())]
    redemptions: Sequence[Mapping[str, Any]] = snapshot.get("pending_redemptions", [])
    if redemptions:
        total = sum((Decimal(str(r.get("usdc") or 0)) for r in redemptions), Decimal(0))
        lines.append(f"pending redemptions {len(redemptions)}, {total} USDC (redeem on chain):")
        lines += [
            f"  {r.get('position_id')} {r.get('market')}: {r.get('shares')} shares -> {r.get('usdc')} USDC"
            for r in redemptions
        ]
    progress = snapshot.get("paper_trades") or {}
    for name, done in (progress.get("live_data") or {}).items():
        lines.append(f"live-data paper trades {name}: {done}/{progress.get('minimum')}")
    return lines
