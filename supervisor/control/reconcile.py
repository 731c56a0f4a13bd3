"""The supervisor's decisions as pure functions: (desired, observed, now) -> actions.

The supervisor actor gathers what it observes (heartbeats, the store's position index, the
venues' open orders), calls :func:`reconcile`, and only carries the actions out (Ray calls,
kills, creations, cancels, alerts). Every case the control loop handles is decided here, with
no clock, no Ray and no I/O, so each is unit-tested on its own:

- an expected actor with no fresh heartbeat is probed (``Probe``); what a probe finds is
  decided by :func:`after_probe` (gone: re-create; a live position with a stale heartbeat:
  restart it and report it stuck);
- restarts beyond the budget within its window halt entries, once (``SpendBudget``);
- a position held in a transient state past its timeout is re-driven, and escalated after
  ``escalate_after`` re-drives (``Redrive``);
- an open venue order with no live owner is cancelled after the grace period
  (``CancelOrphan``; ``WatchUnowned``/``ForgetUnowned`` keep the grace clock);
- a closed position whose actor did not tell the portfolio is released on its behalf
  (``Release``), and a closed position's actor is reaped (``Reap``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from actors.domain.names import actor_key, position_name
from config.models import SupervisionConfig

TRANSIENT = ("entering", "closing")
START_GRACE_S = 20.0
"""A new actor's first heartbeat may take this long (a Ray worker starts, imports, recovers)."""
RELEASE_AFTER_MS = 10_000
"""A position closed less than this ago is probably telling the portfolio itself."""


@dataclass(frozen=True)
class Policy:
    heartbeat_interval_s: float
    suspect_after_beats: int
    stuck_transient_s: float
    orphan_grace_s: float
    restart_budget: int
    restart_window_s: float
    escalate_after: int = 3

    @classmethod
    def of(cls, supervision: SupervisionConfig) -> Policy:
        return cls(
            heartbeat_interval_s=supervision.heartbeat_interval_s,
            suspect_after_beats=supervision.suspect_after_beats,
            stuck_transient_s=supervision.stuck_transient_s,
            orphan_grace_s=supervision.orphan_grace_s,
            restart_budget=supervision.restart_budget,
            restart_window_s=supervision.restart_window_s,
        )

    @property
    def suspect_after_s(self) -> float:
        return self.heartbeat_interval_s * self.suspect_after_beats


@dataclass(frozen=True)
class ActorView:
    """What the supervisor knows of one actor it expects."""

    name: str
    kind: str
    created_wall: float
    last_beat_wall: float | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    owned_orders: tuple[str, ...] = ()
    has_heartbeat: bool = False
    restarts: tuple[float, ...] = ()
    budget_spent: bool = False
    redrives: int = 0
    last_redrive_wall: float = 0.0
    escalated: bool = False


@dataclass(frozen=True)
class PositionEntry:
    """One row of the store's position index."""

    position_id: str
    open: bool
    released: bool = False
    close: Mapping[str, Any] | None = None
    status_since_ms: int | None = None


@dataclass(frozen=True)
class VenueOrderView:
    client_id: str
    market: str
    position_id: str | None


@dataclass(frozen=True)
class Desired:
    """Actors the config needs (name, kind), besides one per open position."""

    static_actors: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Observed:
    actors: Mapping[str, ActorView]
    positions: Sequence[PositionEntry]
    venue_orders: Sequence[VenueOrderView]
    unowned_since: Mapping[str, float]
    started_wall: float


# ---------------------------------------------------------------------- actions


@dataclass(frozen=True)
class Expect:
    name: str
    kind: str


@dataclass(frozen=True)
class Probe:
    name: str


@dataclass(frozen=True)
class Recreate:
    name: str
    kind: str


@dataclass(frozen=True)
class RestartStale:
    """Alive to Ray but silent: restart it (its constructor reconciles) and report it stuck."""

    name: str


@dataclass(frozen=True)
class SpendBudget:
    name: str
    kind: str
    restarts: int


@dataclass(frozen=True)
class Redrive:
    name: str
    status: str
    held_ms: int
    escalate: bool


@dataclass(frozen=True)
class WatchUnowned:
    client_id: str


@dataclass(frozen=True)
class ForgetUnowned:
    client_id: str


@dataclass(frozen=True)
class CancelOrphan:
    client_id: str
    market: str
    owner: str | None


@dataclass(frozen=True)
class Release:
    position_id: str
    close: Mapping[str, Any]


@dataclass(frozen=True)
class Reap:
    name: str


Action = (
    Expect
    | Probe
    | Recreate
    | RestartStale
    | SpendBudget
    | Redrive
    | WatchUnowned
    | ForgetUnowned
    | CancelOrphan
    | Release
    | Reap
)


# ---------------------------------------------------------------------- decisions


def reconcile(
    desired: Desired, observed: Observed, now_wall: float, now_ms: int, policy: Policy
) -> list[Action]:
    """Every action one control-loop tick takes, in the order they are carried out."""
    actions: list[Action] = []
    open_ids = {p.position_id for p in observed.positions if p.open}
    probed: set[str] = set()
    for p in observed.positions:
        name = position_name(p.position_id)
        if p.open:
            if name not in observed.actors:
                actions.append(Expect(name, "position"))
        elif not p.released and p.close is not None:
            if now_ms - (p.status_since_ms or 0) >= RELEASE_AFTER_MS:
                actions.append(Release(p.position_id, p.close))
        elif name in observed.actors:
            actions.append(Reap(name))
    actions += [Expect(name, kind) for name, kind in desired.static_actors if name not in observed.actors]
    for view in observed.actors.values():
        if view.kind == "position" and actor_key(view.name) not in open_ids:
            continue
        liveness = _liveness(view, observed.started_wall, now_wall, policy)
        probed.update(a.name for a in liveness)
        actions += liveness
        actions += _budget(view, now_wall, policy)
    actions += _stuck(observed.actors.values(), open_ids, now_wall, now_ms, policy)
    actions += _orphans(observed, probed, now_wall, policy)
    return actions


def _liveness(view: ActorView, started_wall: float, now_wall: float, policy: Policy) -> list[Probe]:
    """Probe an actor whose heartbeat is older than ``suspect_after`` (after a start-up grace)."""
    suspect_after = policy.suspect_after_s
    age = None if view.last_beat_wall is None else now_wall - view.last_beat_wall
    if age is not None and age <= suspect_after:
        return []
    grace = max(suspect_after, START_GRACE_S)
    if age is None and now_wall - max(started_wall, view.created_wall) < grace:
        return []
    return [Probe(view.name)]


def after_probe(view: ActorView, alive: bool, now_wall: float, policy: Policy) -> list[Action]:
    """A gone actor is re-created; a live position silent for three suspect periods is restarted."""
    if not alive:
        return [Recreate(view.name, view.kind)]
    age = None if view.last_beat_wall is None else now_wall - view.last_beat_wall
    if view.kind == "position" and age is not None and age > 3 * policy.suspect_after_s:
        return [RestartStale(view.name)]
    return []


def restarts_in_window(restarts: Iterable[float], now_wall: float, policy: Policy) -> int:
    cutoff = now_wall - policy.restart_window_s
    return sum(1 for t in restarts if t >= cutoff)


def _budget(view: ActorView, now_wall: float, policy: Policy) -> list[Action]:
    count = restarts_in_window(view.restarts, now_wall, policy)
    if count > policy.restart_budget and not view.budget_spent:
        return [SpendBudget(view.name, view.kind, count)]
    return []


def _stuck(
    views: Iterable[ActorView], open_ids: set[str], now_wall: float, now_ms: int, policy: Policy
) -> list[Action]:
    timeout_ms = policy.stuck_transient_s * 1000
    actions: list[Action] = []
    for view in views:
        if view.kind != "position" or not view.has_heartbeat:
            continue
        if actor_key(view.name) not in open_ids:
            continue
        status = view.detail.get("status")
        since = int(view.detail.get("status_since_ms") or now_ms)
        if status not in TRANSIENT or now_ms - since < timeout_ms:
            continue
        if now_wall - view.last_redrive_wall < policy.stuck_transient_s:
            continue
        escalate = view.redrives + 1 > policy.escalate_after and not view.escalated
        actions.append(Redrive(view.name, str(status), now_ms - since, escalate))
    return actions


def owned_orders(views: Iterable[ActorView], now_wall: float, policy: Policy) -> set[str]:
    """Orders of positions whose heartbeat is fresh enough to vouch for them."""
    owned: set[str] = set()
    for view in views:
        if view.kind != "position" or not view.has_heartbeat or view.last_beat_wall is None:
            continue
        if now_wall - view.last_beat_wall <= 3 * policy.suspect_after_s:
            owned.update(view.owned_orders)
    return owned


def _owner_starting(observed: Observed, owner: str) -> bool:
    """A position that exists but has not reported yet still owns its orders."""
    view = observed.actors.get(owner)
    if view is None:
        return False
    return not view.has_heartbeat or not view.detail.get("ready", True)


def _orphans(observed: Observed, probed: set[str], now_wall: float, policy: Policy) -> list[Action]:
    """Open venue orders no live position vouches for, cancelled after the grace period. An
    owner probed this tick (it may be re-created right now) still owns its orders."""
    owned = owned_orders(observed.actors.values(), now_wall, policy)
    actions: list[Action] = []
    seen: set[str] = set()
    for order in observed.venue_orders:
        cid = order.client_id
        owner = position_name(order.position_id) if order.position_id else None
        if owner is not None and (cid in owned or owner in probed or _owner_starting(observed, owner)):
            continue
        seen.add(cid)
        first = observed.unowned_since.get(cid)
        if first is None:
            actions.append(WatchUnowned(cid))
            first = now_wall
        if now_wall - first >= policy.orphan_grace_s:
            actions.append(CancelOrphan(cid, order.market, owner))
    actions += [ForgetUnowned(cid) for cid in observed.unowned_since if cid not in seen]
    return actions
