"""The supervisor's decisions, case by case, with no Ray, no clock and no venue."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from actors.domain.names import ActorName
from config.loader import load_settings
from supervisor.control.reconcile import (
    ActorView,
    CancelOrphan,
    CountRestart,
    Desired,
    EscalateStuck,
    ExpectActor,
    ForgetActor,
    ForgetOrder,
    HaltBudgetSpent,
    NoteIncarnation,
    Observed,
    Policy,
    PositionEntry,
    ReapPosition,
    RecreateActor,
    RedrivePosition,
    ReleasePosition,
    RestartActor,
    VenueOrderView,
    WatchOrder,
    reconcile,
    suspects,
)

POLICY = Policy(
    heartbeat_interval_s=1.0,
    suspect_after_beats=3,  # suspect after 3 s, a silent live position restarted after 9 s
    stuck_transient_s=30.0,
    orphan_grace_s=5.0,
    restart_budget=2,
    restart_window_s=3600.0,
)
NOW = 100_000.0
NOW_MS = int(NOW * 1000)
STATIC = (ActorName("venue", "binance"), ActorName("portfolio", "portfolio"))
MARKET = "binance:BTC/USDT"
CLOSE = {"realized_pnl": "1.5", "fees": "0.1", "unfilled": False}


def healthy(name: str, kind: str, **over: Any) -> ActorView:
    """An actor that beat half a second ago, in the incarnation the supervisor knows."""
    base: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "created_wall": NOW - 600,
        "last_beat_wall": NOW - 0.5,
        "incarnation": "i1",
        "beat_incarnation": "i1",
    }
    return ActorView(**{**base, **over})


STATIC_VIEWS = (healthy("venue:binance", "venue"), healthy("portfolio", "portfolio"))


def desired(*positions: PositionEntry) -> Desired:
    return Desired(actors=STATIC, positions=positions)


def observed(*views: ActorView, **over: Any) -> Observed:
    """The static actors (healthy unless replaced by a view of the same name) plus ``views``."""
    actors = {v.name: v for v in (*STATIC_VIEWS, *views)}
    base: dict[str, Any] = {"actors": actors, "started_wall": NOW - 600}
    return Observed(**{**base, **over})


def decide(obs: Observed, *positions: PositionEntry) -> list[Any]:
    return reconcile(desired(*positions), obs, NOW, POLICY)


OPEN_P1 = PositionEntry("p1", open=True)


# ---------------------------------------------------------------------- healthy


def test_healthy_system_no_actions() -> None:
    position = healthy("position:p1", "position", status="open", owned_orders=("rt-1",))
    obs = observed(position, venue_orders=(VenueOrderView("rt-1", MARKET, "p1"),))
    assert suspects(desired(OPEN_P1), obs, NOW, POLICY) == ()
    assert decide(obs, OPEN_P1) == []


# ---------------------------------------------------------------------- missing actors


def test_missing_static_actor_expected() -> None:
    obs = Observed(actors={"venue:binance": healthy("venue:binance", "venue")}, started_wall=NOW - 600)
    assert decide(obs) == [ExpectActor("portfolio", "portfolio")]


def test_open_position_without_actor_expected() -> None:
    assert decide(observed(), PositionEntry("p9", open=True)) == [ExpectActor("position:p9", "position")]


def test_new_actor_within_start_grace_not_suspect() -> None:
    starting = healthy(
        "portfolio", "portfolio", last_beat_wall=None, beat_incarnation=None, created_wall=NOW - 5
    )
    obs = observed(starting)
    assert suspects(desired(), obs, NOW, POLICY) == ()
    assert decide(obs) == []


def test_supervisor_just_started_no_suspects() -> None:
    never_beat = healthy("portfolio", "portfolio", last_beat_wall=None, beat_incarnation=None)
    obs = observed(never_beat, started_wall=NOW - 5)
    assert suspects(desired(), obs, NOW, POLICY) == ()


def test_missing_actor_past_start_grace_and_not_answering_created() -> None:
    """Expected, never seen: once the start grace has passed it is a suspect, and a suspect
    that does not answer (no such actor) is created from the store."""
    never_beat = healthy(
        "position:p9", "position", last_beat_wall=None, beat_incarnation=None, created_wall=NOW - 25
    )
    p9 = PositionEntry("p9", open=True)
    obs = observed(never_beat)
    assert suspects(desired(p9), obs, NOW, POLICY) == ("position:p9",)
    answered = observed(never_beat, answered={"position:p9": False})
    assert decide(answered, p9) == [RecreateActor("position:p9", "position")]


# ---------------------------------------------------------------------- liveness


def test_stale_heartbeat_suspect() -> None:
    stale = healthy("portfolio", "portfolio", last_beat_wall=NOW - 10)
    obs = observed(stale)
    assert suspects(desired(), obs, NOW, POLICY) == ("portfolio",)
    assert decide(obs) == []  # nothing until the ping has been answered (or not)


def test_stale_heartbeat_no_answer_recreated() -> None:
    stale = healthy("portfolio", "portfolio", last_beat_wall=NOW - 10)
    obs = observed(stale, answered={"portfolio": False})
    assert decide(obs) == [RecreateActor("portfolio", "portfolio")]


def test_closed_position_whose_close_was_never_booked_gets_an_actor() -> None:
    """Saved closed, died before logging and booking the close: only its actor's restore books it."""
    unbooked = PositionEntry("p9", open=False, close=None, released=False)
    assert decide(observed(), unbooked) == [ExpectActor("position:p9", "position")]


def test_closed_released_position_gets_no_actor() -> None:
    done = PositionEntry("p9", open=False, close=CLOSE, released=True)
    assert decide(observed(), done) == []


def test_stale_position_that_answers_restarted() -> None:
    silent = healthy("position:p1", "position", last_beat_wall=NOW - 10)
    obs = observed(silent, answered={"position:p1": True})
    assert decide(obs, OPEN_P1) == [RestartActor("position:p1")]


def test_briefly_late_position_that_answers_left_alone() -> None:
    late = healthy("position:p1", "position", last_beat_wall=NOW - 4)
    obs = observed(late, answered={"position:p1": True})
    assert decide(obs, OPEN_P1) == []


def test_silent_non_position_that_answers_left_alone() -> None:
    silent = healthy("portfolio", "portfolio", last_beat_wall=NOW - 60)
    assert decide(observed(silent, answered={"portfolio": True})) == []


def test_silent_idle_pooled_actor_never_suspect_nor_recreated() -> None:
    """Ray restarts an idle pooled actor and the portfolio replaces one gone for good: the
    supervisor only lists it (status, teardown); once assigned it is watched as its position."""
    quiet = healthy("pool:0", "pool", last_beat_wall=NOW - 5)
    obs = observed(quiet, answered={"pool:0": False})
    assert suspects(desired(), observed(quiet), NOW, POLICY) == ()
    assert decide(obs) == []


def test_idle_pooled_actor_silent_past_the_stale_limit_forgotten() -> None:
    """A stop's teardown killed the idle pool and the next run started its own under new names: the
    old records stayed with ever older heartbeats (status listed them, raytrader_actor_up went to 0
    and RaytraderActorDown fired, chaos never saw "every actor up"). Forgotten, series and all."""
    gone = healthy("pool:0", "pool", last_beat_wall=NOW - 600)
    never = healthy("pool:1", "pool", last_beat_wall=None, beat_incarnation=None, created_wall=NOW - 600)
    fresh = healthy("pool:2", "pool")
    assert decide(observed(gone, never, fresh)) == [ForgetActor("pool:0"), ForgetActor("pool:1")]


# ---------------------------------------------------------------------- restarts and budget


def test_incarnation_change_restart_counted() -> None:
    restarted = healthy("venue:binance", "venue", beat_incarnation="i2")
    assert decide(observed(restarted)) == [CountRestart("venue:binance", "venue", "i1", "i2")]


def test_first_incarnation_of_a_run_noted_not_counted() -> None:
    fresh = healthy("venue:binance", "venue", incarnation=None, beat_incarnation="i7")
    assert decide(observed(fresh)) == [NoteIncarnation("venue:binance", "i7")]


def test_restarts_beyond_budget_halt() -> None:
    flapping = healthy("portfolio", "portfolio", restarts=(NOW - 30, NOW - 20, NOW - 10))
    assert decide(observed(flapping)) == [HaltBudgetSpent("portfolio", "portfolio", 3)]


def test_restart_counted_this_tick_that_spends_budget_halts_at_once() -> None:
    flapping = healthy("portfolio", "portfolio", restarts=(NOW - 30, NOW - 20), beat_incarnation="i2")
    assert decide(observed(flapping)) == [
        CountRestart("portfolio", "portfolio", "i1", "i2"),
        HaltBudgetSpent("portfolio", "portfolio", 3),
    ]


def test_recreate_that_spends_budget_halts_at_once() -> None:
    gone = healthy("portfolio", "portfolio", restarts=(NOW - 30, NOW - 20), last_beat_wall=NOW - 10)
    assert decide(observed(gone, answered={"portfolio": False})) == [
        RecreateActor("portfolio", "portfolio"),
        HaltBudgetSpent("portfolio", "portfolio", 3),
    ]


def test_budget_spent_no_second_halt() -> None:
    """The halt is once per actor; a dead actor is still re-created after it (a position must keep
    managing its exits), but no further halt is raised."""
    spent = healthy(
        "portfolio",
        "portfolio",
        restarts=(NOW - 30, NOW - 20, NOW - 10),
        budget_spent=True,
        last_beat_wall=NOW - 10,
    )
    assert decide(observed(spent)) == []
    assert decide(observed(spent, answered={"portfolio": False})) == [RecreateActor("portfolio", "portfolio")]


def test_restarts_outside_the_window_not_counted() -> None:
    old = healthy("portfolio", "portfolio", restarts=(NOW - 7200, NOW - 7100, NOW - 7000, NOW - 10))
    assert decide(observed(old)) == []


# ---------------------------------------------------------------------- stuck positions


def test_position_entering_past_timeout_redriven() -> None:
    stuck = healthy("position:p1", "position", status="entering", status_since_ms=NOW_MS - 40_000)
    assert decide(observed(stuck), OPEN_P1) == [RedrivePosition("position:p1", "entering", 40_000)]


def test_position_closing_past_timeout_redriven() -> None:
    stuck = healthy("position:p1", "position", status="closing", status_since_ms=NOW_MS - 31_000)
    assert decide(observed(stuck), OPEN_P1) == [RedrivePosition("position:p1", "closing", 31_000)]


def test_position_closing_within_timeout_nothing() -> None:
    busy = healthy("position:p1", "position", status="closing", status_since_ms=NOW_MS - 29_000)
    assert decide(observed(busy), OPEN_P1) == []


def test_position_redriven_recently_waits() -> None:
    stuck = healthy(
        "position:p1",
        "position",
        status="entering",
        status_since_ms=NOW_MS - 40_000,
        redrives=1,
        last_redrive_wall=NOW - 5,
    )
    assert decide(observed(stuck), OPEN_P1) == []


def test_position_stuck_after_repeated_redrives_escalated_once() -> None:
    stuck = healthy("position:p1", "position", status="closing", status_since_ms=NOW_MS - 200_000, redrives=3)
    assert decide(observed(stuck), OPEN_P1) == [
        RedrivePosition("position:p1", "closing", 200_000),
        EscalateStuck("position:p1", "closing", 4),
    ]
    already = healthy(
        "position:p1",
        "position",
        status="closing",
        status_since_ms=NOW_MS - 200_000,
        redrives=4,
        escalated=True,
    )
    assert decide(observed(already), OPEN_P1) == [RedrivePosition("position:p1", "closing", 200_000)]


def test_open_position_held_long_not_stuck() -> None:
    calm = healthy("position:p1", "position", status="open", status_since_ms=NOW_MS - 10**7)
    assert decide(observed(calm), OPEN_P1) == []


def test_open_position_without_exits_at_the_venue_past_timeout_redriven() -> None:
    """Issue 10, defect 6: only entering/closing positions were checked for being stuck, so an
    open position whose exit orders never reached the venue was never re-driven."""
    bare = healthy(
        "position:p1",
        "position",
        status="open",
        status_since_ms=NOW_MS - 10**7,
        unarmed_since_ms=NOW_MS - 31_000,
    )
    assert decide(observed(bare), OPEN_P1) == [RedrivePosition("position:p1", "open", 31_000)]
    briefly = healthy("position:p1", "position", status="half_closed", unarmed_since_ms=NOW_MS - 2_000)
    assert decide(observed(briefly), OPEN_P1) == []


# ---------------------------------------------------------------------- orphaned orders


def test_unowned_order_first_seen_watched() -> None:
    order = VenueOrderView("rt-x", MARKET, None)
    assert decide(observed(venue_orders=(order,))) == [WatchOrder("rt-x")]


def test_unowned_order_within_grace_nothing() -> None:
    order = VenueOrderView("rt-x", MARKET, None)
    assert decide(observed(venue_orders=(order,), unowned_since={"rt-x": NOW - 2})) == []


def test_unowned_order_past_grace_cancelled() -> None:
    order = VenueOrderView("rt-x", MARKET, "gone")
    obs = observed(venue_orders=(order,), unowned_since={"rt-x": NOW - 6})
    assert decide(obs) == [CancelOrphan("rt-x", MARKET, "position:gone")]


def test_order_in_a_long_stale_heartbeat_cancelled_past_grace() -> None:
    """A heartbeat older than three suspect periods no longer vouches for the orders in it (here
    a closed position's actor, which is not probed: a probed owner keeps its orders, below)."""
    silent = healthy("position:p1", "position", last_beat_wall=NOW - 10, owned_orders=("rt-1",))
    just_closed = PositionEntry("p1", open=False, close=CLOSE, status_since_ms=NOW_MS - 1_000)
    order = VenueOrderView("rt-1", MARKET, "p1")
    obs = observed(silent, venue_orders=(order,), unowned_since={"rt-1": NOW - 6})
    assert decide(obs, just_closed) == [CancelOrphan("rt-1", MARKET, "position:p1")]
    fresh = healthy("position:p1", "position", last_beat_wall=NOW - 8, owned_orders=("rt-1",))
    assert decide(observed(fresh, venue_orders=(order,)), just_closed) == []


def test_orphan_of_a_starting_owner_not_cancelled() -> None:
    starting = healthy(
        "position:p1", "position", last_beat_wall=None, beat_incarnation=None, created_wall=NOW - 5
    )
    order = VenueOrderView("rt-1", MARKET, "p1")
    obs = observed(starting, venue_orders=(order,), unowned_since={"rt-1": NOW - 60})
    assert decide(obs, OPEN_P1) == [ForgetOrder("rt-1")]


def test_orders_of_a_position_whose_record_does_not_decode_not_cancelled_as_orphans() -> None:
    """Issue 10: a corrupt position record was skipped from the index in silence, so no actor ran
    the position and its resting exits were cancelled as orphans, stranding what it held."""
    order = VenueOrderView("rt-1", MARKET, "p1")
    obs = observed(venue_orders=(order,), unowned_since={"rt-1": NOW - 60})
    assert decide(obs) == [CancelOrphan("rt-1", MARKET, "position:p1")]
    assert decide(replace(obs, unreadable=frozenset({"position:p1"}))) == [ForgetOrder("rt-1")]


def test_orphan_of_a_recovering_owner_not_cancelled() -> None:
    recovering = healthy("position:p1", "position", ready=False)
    order = VenueOrderView("rt-1", MARKET, "p1")
    obs = observed(recovering, venue_orders=(order,), unowned_since={"rt-1": NOW - 60})
    assert decide(obs, OPEN_P1) == [ForgetOrder("rt-1")]


def test_orders_of_an_owner_being_probed_not_cancelled() -> None:
    """A slow-recovering owner (silent, probed this tick, maybe re-created now) keeps its orders."""
    slow = healthy("position:p1", "position", last_beat_wall=NOW - 30, owned_orders=("rt-1",))
    order = VenueOrderView("rt-1", MARKET, "p1")
    obs = observed(
        slow,
        venue_orders=(order,),
        unowned_since={"rt-1": NOW - 60},
        answered={"position:p1": False},
    )
    assert decide(obs, OPEN_P1) == [RecreateActor("position:p1", "position"), ForgetOrder("rt-1")]


def test_watched_order_no_longer_open_forgotten() -> None:
    assert decide(observed(unowned_since={"rt-gone": NOW - 3})) == [ForgetOrder("rt-gone")]


# ---------------------------------------------------------------------- closed positions


def test_position_closed_just_now_left_to_its_actor() -> None:
    just_closed = PositionEntry("p1", open=False, close=CLOSE, status_since_ms=NOW_MS - 1_000)
    assert decide(observed(healthy("position:p1", "position")), just_closed) == []


def test_closed_position_never_released_released_on_its_actors_behalf() -> None:
    closed = PositionEntry("p1", open=False, close=CLOSE, status_since_ms=NOW_MS - 10_000)
    assert decide(observed(), closed) == [ReleasePosition("p1", CLOSE)]


def test_closed_position_reaped() -> None:
    released = PositionEntry("p1", open=False, released=True, close=CLOSE)
    actor = healthy("position:p1", "position")
    assert decide(observed(actor), released) == [ReapPosition("position:p1")]


def test_closed_position_whose_actor_rejoined_the_pool_forgotten_not_killed() -> None:
    released = PositionEntry("p1", open=False, released=True, close=CLOSE, pool_returned=True)
    actor = healthy("position:p1", "position")
    assert decide(observed(actor), released) == [ReapPosition("position:p1", kill=False)]


def test_closed_position_not_yet_reported_by_its_actor_not_reaped() -> None:
    """Closed in the record but its close not yet booked (the actor writes its state, then reports):
    reaping it then killed a pooled actor that went on to run the next position."""
    closing = PositionEntry("p1", open=False, released=False, close=None, status_since_ms=NOW_MS - 10**6)
    assert decide(observed(healthy("position:p1", "position")), closing) == []


def test_closed_position_without_actor_nothing() -> None:
    released = PositionEntry("p1", open=False, released=True, close=CLOSE)
    assert decide(observed(), released) == []


def test_closed_positions_actor_neither_suspect_nor_stuck() -> None:
    """Once closed, a position's actor is only waiting to be reaped: no ping, no re-drive, and a
    new incarnation of a reaped one is not counted."""
    lingering = healthy(
        "position:p1",
        "position",
        last_beat_wall=NOW - 60,
        beat_incarnation="i2",
        status="closing",
        status_since_ms=NOW_MS - 10**6,
    )
    released = PositionEntry("p1", open=False, released=True, close=CLOSE)
    obs = observed(lingering)
    assert suspects(desired(released), obs, NOW, POLICY) == ()
    assert decide(obs, released) == [ReapPosition("position:p1")]


# ---------------------------------------------------------------------- policy


def test_policy_from_default_config_keeps_the_thresholds() -> None:
    policy = Policy.of(load_settings(None, env={}).supervision)
    assert (policy.suspect_after_s, policy.stale_after_s) == (3.0, 9.0)
    assert (policy.orphan_grace_s, policy.stuck_transient_s) == (5.0, 30.0)
    assert (policy.restart_budget, policy.restart_window_s) == (10, 3600.0)
    assert (policy.escalate_after, policy.start_grace_s, policy.release_after_s) == (3, 20.0, 10.0)
