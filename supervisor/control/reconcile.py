"""The supervisor's decisions as one pure function: (desired, observed, now, policy) -> actions.

The supervisor actor gathers what it observes (heartbeats, the store's position index, the
venues' open orders, the answers to this tick's pings), calls :func:`reconcile`, and only
carries the actions out (Ray kills and creations, venue cancels, alerts, metrics). No clock, no
Ray, no I/O here: every memory a decision needs (restart times, re-drive counts, when an order
was first seen unowned) comes in with the observation, so each case is unit-tested on its own.

One tick, in the order its actions are carried out:

- positions: an open one with no actor record is expected (:class:`ExpectActor`), and so is a
  closed one whose actor died before logging and booking the close (its restore does it); a closed
  one whose actor never told the portfolio is released on its behalf (:class:`ReleasePosition`),
  and a closed one's actor is reaped (:class:`ReapPosition`; one gone back to the pool lives on);
- the topology's actors not yet known are expected (:class:`ExpectActor`); creation is the
  runtime's start, or the liveness case below once the start grace has passed;
- restarts: a heartbeat with a new incarnation is a restart Ray made (:class:`CountRestart`;
  the first incarnation of a run is only noted, :class:`NoteIncarnation`);
- liveness: an actor with no fresh heartbeat is a suspect (:func:`suspects`), which the actor
  pings before it calls :func:`reconcile`; a suspect that does not answer is re-created from
  the store (:class:`RecreateActor`, a restart too); a position that answers but has been
  silent for ``stale_factor`` suspect periods is restarted (:class:`RestartActor`);
- budget: more restarts than the budget within its window halts entries, once per actor
  (:class:`HaltBudgetSpent`); restarts go on after it (positions must keep their exits);
- stuck: a position held in a transient state (entering, closing) past its timeout is
  re-driven, at most once per timeout (:class:`RedrivePosition`), and escalated once after
  ``escalate_after`` re-drives (:class:`EscalateStuck`);
- orphans: an open venue order that no live position vouches for is watched
  (:class:`WatchOrder` starts its grace clock) and cancelled once the grace has passed
  (:class:`CancelOrphan`); an order that is owned again, or gone, is forgotten
  (:class:`ForgetOrder`). A position still starting, or being probed this tick (it may be
  re-created right now), keeps its orders, and so does one whose stored record does not decode
  (the operator's to repair: cancelling its exits could strand what it holds);
- activity: nothing traded and no signal evaluated for ``no_activity_s`` (heartbeats may go on:
  a feed stalled upstream, a strategy that stopped evaluating) raises an alert once per silence
  (:class:`RaiseNoActivity`), cleared when activity resumes (:class:`ClearNoActivity`). What
  counts as activity is :func:`shows_activity`. The silence is wall time since the last activity
  times ``activity_clock_rate``: the replay speed of a paced paper replay (the rate at which its
  data clock runs, on which the positions' own timeouts count), 1 live or at speed ``max`` (no
  fixed rate: only a real stall of that length counts). Data time alone cannot measure it: it
  stops when the data stops. A finished replay is silent by design and raises nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from actors.domain.names import POOL, PORTFOLIO, POSITION, STRATEGY, ActorName, actor_key, position_name
from actors.domain.telemetry import Heartbeat
from actors.domain.topology import live_data
from config.models import Settings, SupervisionConfig

TRANSIENT = ("entering", "closing")
HOLDING = ("open", "half_closed")
"""Holding states: a position in one whose exits are not at the venue is re-driven like a stuck one."""
"""Position states that must not last: an entry or an exit in flight."""


@dataclass(frozen=True)
class Policy:
    """The thresholds, from ``supervision`` in the config and the defaults below."""

    heartbeat_interval_s: float
    suspect_after_beats: int
    stuck_transient_s: float
    orphan_grace_s: float
    restart_budget: int
    restart_window_s: float
    escalate_after: int = 3
    """Re-drives of one position before it is escalated to an operator."""
    start_grace_s: float = 20.0
    """A new actor's first heartbeat may take this long (a Ray worker starts, imports, recovers)."""
    release_after_s: float = 10.0
    """A position closed less than this ago is probably telling the portfolio itself."""
    stale_factor: int = 3
    """Suspect periods of silence after which a live position is restarted, and after which its
    heartbeat no longer vouches for its orders."""
    no_activity_s: float | None = None
    """Nothing traded nor evaluated this long (on the runtime's clock) raises an alert; None: off."""
    activity_clock_rate: float = 1.0
    """Seconds of the runtime's clock per wall second (see :func:`activity_clock_rate`)."""

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

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        """``supervision``'s thresholds, with the no-activity alert's from ``notify`` and the replay."""
        return replace(
            cls.of(settings.supervision),
            no_activity_s=settings.notify.no_activity_s,
            activity_clock_rate=activity_clock_rate(settings),
        )

    @property
    def suspect_after_s(self) -> float:
        return self.heartbeat_interval_s * self.suspect_after_beats

    @property
    def stale_after_s(self) -> float:
        return self.stale_factor * self.suspect_after_s


def activity_clock_rate(settings: Settings) -> float:
    """How fast the runtime's clock runs against the wall: a paper replay paced at ``speed`` runs
    its data clock ``speed`` times faster; live data (live trading, paper on live feeds) and a
    replay at ``max`` count wall time."""
    speed = settings.replay.speed
    return float(speed) if not live_data(settings) and speed != "max" else 1.0


# ---------------------------------------------------------------------- desired state


@dataclass(frozen=True)
class PositionEntry:
    """One row of the store's position index."""

    position_id: str
    open: bool
    released: bool = False
    close: Mapping[str, Any] | None = None
    status_since_ms: int | None = None
    pool_returned: bool = False
    """Its pooled actor went back to the pool when it closed: that actor lives on, idle."""

    @property
    def actor(self) -> str:
        return position_name(self.position_id)

    @property
    def needs_actor(self) -> bool:
        """Open, or closed with its close not yet logged and booked (its actor died in between:
        only the actor's restore, from the closed core, books it)."""
        return self.open or (not self.released and self.close is None)

    @classmethod
    def from_index(cls, row: Mapping[str, Any]) -> PositionEntry:
        """From a row of the store's ``position_index``."""
        return cls(
            position_id=str(row["position_id"]),
            open=bool(row["open"]),
            released=bool(row["released"]),
            close=row["close"],
            status_since_ms=row.get("status_since_ms"),
            pool_returned=bool(row.get("pool_returned", False)),
        )


@dataclass(frozen=True)
class Desired:
    """What must exist: the topology's actors, and one actor per open position of the store.
    (The orders a position owns are the venue orders whose intent names it: see
    :class:`VenueOrderView`.)"""

    actors: tuple[ActorName, ...]
    positions: tuple[PositionEntry, ...] = ()


# ---------------------------------------------------------------------- observed state


@dataclass(frozen=True)
class ActorView:
    """What the supervisor knows of one actor it expects, and what it remembers of it."""

    name: str
    kind: str
    created_wall: float
    """When the supervisor first expected it: the start grace counts from here."""
    last_beat_wall: float | None = None
    incarnation: str | None = None
    """The incarnation the supervisor has acknowledged (None: its next one is a first)."""
    beat_incarnation: str | None = None
    """The incarnation in its latest heartbeat (None: no heartbeat yet)."""
    status: str | None = None
    """A position's state (open, entering, closing, ...) from its heartbeat."""
    status_since_ms: int | None = None
    unarmed_since_ms: int | None = None
    """Since when an open position has reported exits not at the venue (None: armed, or frozen)."""
    ready: bool = True
    """False while a position is still recovering: it owns its orders all the same."""
    owned_orders: tuple[str, ...] = ()
    restarts: tuple[float, ...] = ()
    """Wall times of its counted restarts (at least those within the budget window)."""
    budget_spent: bool = False
    redrives: int = 0
    last_redrive_wall: float = 0.0
    escalated: bool = False

    @property
    def has_heartbeat(self) -> bool:
        return self.beat_incarnation is not None

    def beat_age(self, now: float) -> float | None:
        return None if self.last_beat_wall is None else now - self.last_beat_wall


@dataclass(frozen=True)
class VenueOrderView:
    """An open order at a venue; ``position_id`` is its owner, from the order's intent."""

    client_id: str
    market: str
    position_id: str | None


@dataclass(frozen=True)
class Observed:
    actors: Mapping[str, ActorView]
    venue_orders: Sequence[VenueOrderView] = ()
    unowned_since: Mapping[str, float] = field(default_factory=dict)
    """Client id -> when the order was first seen with no live owner (its grace clock)."""
    started_wall: float = 0.0
    """When the supervisor started: no actor is suspect within the start grace of it."""
    answered: Mapping[str, bool] = field(default_factory=dict)
    """This tick's suspects (see :func:`suspects`) -> whether each answered a ping."""
    last_activity_wall: float | None = None
    """When something was last traded or evaluated (:func:`shows_activity`), or the supervisor started."""
    no_activity_alerted: bool = False
    """The current silence has been alerted (:class:`RaiseNoActivity`) and not cleared yet."""
    replay_done: bool = False
    """Every feed has finished its replay: silence from here on is by design."""
    unreadable: frozenset[str] = frozenset()
    """Positions whose stored record does not decode: no actor runs them, yet they may hold
    quantity at the venue, so their orders are left to the operator, never cancelled as orphans."""


# ---------------------------------------------------------------------- actions


@dataclass(frozen=True)
class ExpectActor:
    """Start watching an actor the desired state needs (its record, its start grace)."""

    name: str
    kind: str


@dataclass(frozen=True)
class NoteIncarnation:
    """The first incarnation seen in this run: not a restart."""

    name: str
    incarnation: str


@dataclass(frozen=True)
class CountRestart:
    """A heartbeat with a new incarnation: Ray restarted the actor."""

    name: str
    kind: str
    previous: str
    incarnation: str


@dataclass(frozen=True)
class RecreateActor:
    """Probed and gone: kill what is left and create it again (it restores from the store)."""

    name: str
    kind: str


@dataclass(frozen=True)
class RestartActor:
    """A position alive to Ray but silent: kill it for Ray to restart (its constructor
    reconciles), and report it stuck."""

    name: str


@dataclass(frozen=True)
class HaltBudgetSpent:
    """More restarts than the budget in its window: halt entries and alert."""

    name: str
    kind: str
    restarts: int


@dataclass(frozen=True)
class RedrivePosition:
    name: str
    status: str
    held_ms: int


@dataclass(frozen=True)
class EscalateStuck:
    name: str
    status: str
    redrives: int


@dataclass(frozen=True)
class WatchOrder:
    """An open venue order without a live owner: its grace clock starts now."""

    client_id: str


@dataclass(frozen=True)
class ForgetOrder:
    """A watched order that is owned again, or no longer open."""

    client_id: str


@dataclass(frozen=True)
class CancelOrphan:
    client_id: str
    market: str
    owner: str | None


@dataclass(frozen=True)
class ReleasePosition:
    """Tell the portfolio a position closed, on behalf of an actor that did not live to."""

    position_id: str
    close: Mapping[str, Any]


@dataclass(frozen=True)
class ReapPosition:
    """A closed, released position's actor is no longer desired: killed for good, unless it has
    gone back to the pool (``kill`` False), where only the position's name is forgotten."""

    name: str
    kill: bool = True


@dataclass(frozen=True)
class ForgetActor:
    """An idle pooled actor silent for ``stale_factor`` suspect periods: gone (a stop's teardown, a
    previous run's pool) and replaced by the portfolio under a new name. Forgotten, with its
    metric series, so status and the actor-down alert speak only of actors that exist."""

    name: str


@dataclass(frozen=True)
class RaiseNoActivity:
    """Nothing traded and no signal evaluated for ``silent_s`` (the runtime's clock): alert once."""

    silent_s: float
    since_wall: float


@dataclass(frozen=True)
class ClearNoActivity:
    """Activity resumed after an alerted silence."""

    silent_s: float


Action = (
    ExpectActor
    | NoteIncarnation
    | CountRestart
    | RecreateActor
    | RestartActor
    | HaltBudgetSpent
    | RedrivePosition
    | EscalateStuck
    | WatchOrder
    | ForgetOrder
    | CancelOrphan
    | ReleasePosition
    | ReapPosition
    | ForgetActor
    | RaiseNoActivity
    | ClearNoActivity
)


# ---------------------------------------------------------------------- decisions


def _watched(desired: Desired, observed: Observed) -> list[ActorView]:
    """The actors whose liveness and budget matter: all but the actors of closed positions, and
    idle pooled ones (Ray restarts those; the portfolio replaces one gone for good)."""
    open_ids = {p.position_id for p in desired.positions if p.open}
    return [
        v
        for v in observed.actors.values()
        if v.kind != POOL and (v.kind != POSITION or actor_key(v.name) in open_ids)
    ]


def _suspect(view: ActorView, started_wall: float, now: float, policy: Policy) -> bool:
    """No heartbeat within ``suspect_after``, or none at all once the start grace has passed."""
    age = view.beat_age(now)
    if age is not None:
        return age > policy.suspect_after_s
    grace = max(policy.suspect_after_s, policy.start_grace_s)
    return now - max(started_wall, view.created_wall) >= grace


def suspects(desired: Desired, observed: Observed, now: float, policy: Policy) -> tuple[str, ...]:
    """The actors to ping this tick; their answers go into ``Observed.answered``."""
    return tuple(
        v.name for v in _watched(desired, observed) if _suspect(v, observed.started_wall, now, policy)
    )


def reconcile(desired: Desired, observed: Observed, now: float, policy: Policy) -> list[Action]:
    """Every action one control-loop tick takes, in the order they are carried out."""
    actions: list[Action] = _positions(desired, observed, now, policy)
    actions += [ExpectActor(a.name, a.kind) for a in desired.actors if a.name not in observed.actors]
    reaped = {a.name for a in actions if isinstance(a, ReapPosition)}
    actions += _incarnations(v for v in observed.actors.values() if v.name not in reaped)
    watched = _watched(desired, observed)
    for view in watched:
        actions += _liveness(view, observed.answered, now, policy)
        restarted = sum(1 for a in actions if _restarts(a, view.name))
        actions += _budget(view, restarted, now, policy)
    actions += _stuck(watched, now, policy)
    actions += _orphans(observed, now, policy)
    actions += _activity(observed, now, policy)
    actions += _gone_pool(observed, now, policy)
    return actions


def _gone_pool(observed: Observed, now: float, policy: Policy) -> list[Action]:
    stale = policy.stale_factor * policy.suspect_after_s
    actions: list[Action] = []
    for view in observed.actors.values():
        if view.kind != POOL:
            continue
        age = view.beat_age(now)
        if age is None:  # never beat: counted from its creation (or the supervisor's start)
            age = now - max(observed.started_wall, view.created_wall) - policy.start_grace_s
        if age > stale:
            actions.append(ForgetActor(view.name))
    return actions


def _positions(desired: Desired, observed: Observed, now: float, policy: Policy) -> list[Action]:
    actions: list[Action] = []
    now_ms = now * 1000
    for p in desired.positions:
        if p.needs_actor:
            if p.actor not in observed.actors:
                actions.append(ExpectActor(p.actor, POSITION))
        elif not p.released and p.close is not None:
            if now_ms - (p.status_since_ms or 0) >= policy.release_after_s * 1000:
                actions.append(ReleasePosition(p.position_id, p.close))
        elif p.released and p.actor in observed.actors:  # closed, not yet told: still its actor's
            actions.append(ReapPosition(p.actor, kill=not p.pool_returned))
    return actions


def _incarnations(views: Iterable[ActorView]) -> list[Action]:
    actions: list[Action] = []
    for v in views:
        if v.beat_incarnation is None or v.beat_incarnation == v.incarnation:
            continue
        if v.incarnation is None:
            actions.append(NoteIncarnation(v.name, v.beat_incarnation))
        else:
            actions.append(CountRestart(v.name, v.kind, v.incarnation, v.beat_incarnation))
    return actions


def _liveness(view: ActorView, answered: Mapping[str, bool], now: float, policy: Policy) -> list[Action]:
    """A probed suspect that did not answer is re-created; a live but long-silent position restarted."""
    if view.name not in answered:
        return []
    if not answered[view.name]:
        return [RecreateActor(view.name, view.kind)]
    age = view.beat_age(now)
    if view.kind == POSITION and age is not None and age > policy.stale_after_s:
        return [RestartActor(view.name)]
    return []


def _restarts(action: Action, name: str) -> bool:
    """Does this action count a restart of ``name``?"""
    return isinstance(action, CountRestart | RecreateActor) and action.name == name


def restarts_in_window(restarts: Iterable[float], now: float, policy: Policy) -> int:
    cutoff = now - policy.restart_window_s
    return sum(1 for t in restarts if t >= cutoff)


def _budget(view: ActorView, restarted_now: int, now: float, policy: Policy) -> list[Action]:
    """Restarts counted before, plus those this tick counts, against the budget."""
    count = restarts_in_window(view.restarts, now, policy) + restarted_now
    if count > policy.restart_budget and not view.budget_spent:
        return [HaltBudgetSpent(view.name, view.kind, count)]
    return []


def _stuck(views: Iterable[ActorView], now: float, policy: Policy) -> list[Action]:
    now_ms = int(now * 1000)
    timeout_ms = policy.stuck_transient_s * 1000
    actions: list[Action] = []
    for view in views:
        if view.kind != POSITION or not view.has_heartbeat:
            continue
        if view.status in HOLDING and view.unarmed_since_ms is not None:
            since = view.unarmed_since_ms  # open with no exit orders at the venue: as stuck
        elif view.status in TRANSIENT:
            since = view.status_since_ms or now_ms
        else:
            continue
        if now_ms - since < timeout_ms or now - view.last_redrive_wall < policy.stuck_transient_s:
            continue
        status = str(view.status)
        actions.append(RedrivePosition(view.name, status, now_ms - since))
        redrives = view.redrives + 1
        if redrives > policy.escalate_after and not view.escalated:
            actions.append(EscalateStuck(view.name, status, redrives))
    return actions


def owned_orders(views: Iterable[ActorView], now: float, policy: Policy) -> set[str]:
    """Orders of positions whose heartbeat is fresh enough to vouch for them."""
    owned: set[str] = set()
    for view in views:
        if view.kind != POSITION or not view.has_heartbeat:
            continue
        age = view.beat_age(now)
        if age is not None and age <= policy.stale_after_s:
            owned.update(view.owned_orders)
    return owned


def _owner_starting(observed: Observed, owner: str) -> bool:
    """A position that exists but has not reported yet, or is still recovering, owns its orders."""
    view = observed.actors.get(owner)
    if view is None:
        return False
    return not view.has_heartbeat or not view.ready


def _orphans(observed: Observed, now: float, policy: Policy) -> list[Action]:
    owned = owned_orders(observed.actors.values(), now, policy)
    actions: list[Action] = []
    seen: set[str] = set()
    for order in observed.venue_orders:
        cid = order.client_id
        owner = position_name(order.position_id) if order.position_id else None
        if owner is not None and (
            cid in owned
            or owner in observed.answered
            or owner in observed.unreadable
            or _owner_starting(observed, owner)
        ):
            continue
        seen.add(cid)
        first = observed.unowned_since.get(cid)
        if first is None:
            actions.append(WatchOrder(cid))
            first = now
        if now - first >= policy.orphan_grace_s:
            actions.append(CancelOrphan(cid, order.market, owner))
    actions += [ForgetOrder(cid) for cid in observed.unowned_since if cid not in seen]
    return actions


ACTIVITY_METRICS = ("raytrader_signals_total", "raytrader_fills_total", "raytrader_trades_total")
"""Counters whose increase in a heartbeat is activity, whichever actor carries it."""


def shows_activity(previous: Heartbeat | None, beat: Heartbeat) -> bool:
    """Does ``beat`` (after ``previous``, the same actor's last one) show the bot trading or
    evaluating? A signal emitted, a fill or a round trip (its metric deltas); a strategy that
    evaluated newer market data (its data time advanced); the portfolio deciding on a signal
    (its decision count grew). Heartbeats alone, or prices reaching a position, are not."""
    if any(d.name in ACTIVITY_METRICS and sum(d.values) > 0 for d in beat.metrics):
        return True
    if previous is None:
        return False  # a first beat (a start, a restart) sets no baseline worth comparing
    if beat.kind == STRATEGY:
        return beat.event_ms is not None and beat.event_ms > (previous.event_ms or 0)
    if beat.kind == PORTFOLIO:
        return int(beat.detail.get("decisions", 0)) > int(previous.detail.get("decisions", 0))
    return False


def _activity(observed: Observed, now: float, policy: Policy) -> list[Action]:
    """Raise the no-activity alert once per silence; clear it once activity resumes."""
    if policy.no_activity_s is None or observed.last_activity_wall is None:
        return []
    silent = max(0.0, now - observed.last_activity_wall) * policy.activity_clock_rate
    if observed.no_activity_alerted:
        return [ClearNoActivity(silent)] if silent < policy.no_activity_s else []
    if silent >= policy.no_activity_s and not observed.replay_done:
        return [RaiseNoActivity(silent, observed.last_activity_wall)]
    return []
