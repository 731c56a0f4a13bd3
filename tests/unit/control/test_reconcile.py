"""The supervisor's decisions, case by case, with no Ray, no clock and no venue."""

from __future__ import annotations

from typing import Any

from supervisor.control.reconcile import (
    RELEASE_AFTER_MS,
    ActorView,
    CancelOrphan,
    Desired,
    Expect,
    ForgetUnowned,
    Observed,
    Policy,
    PositionEntry,
    Probe,
    Reap,
    Recreate,
    Redrive,
    Release,
    RestartStale,
    SpendBudget,
    VenueOrderView,
    WatchUnowned,
    after_probe,
    reconcile,
)

POLICY = Policy(
    heartbeat_interval_s=1.0,
    suspect_after_beats=3,
    stuck_transient_s=30.0,
    orphan_grace_s=5.0,
    restart_budget=2,
    restart_window_s=3600.0,
)
NOW = 100_000.0
NOW_MS = int(NOW * 1000)
STATIC = Desired(static_actors=(("venue:binance", "venue"), ("portfolio", "portfolio")))


def healthy(name: str, kind: str, **over: Any) -> ActorView:
    base: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "created_wall": NOW - 600,
        "last_beat_wall": NOW - 0.5,
        "has_heartbeat": True,
    }
    return ActorView(**{**base, **over})


def observed(*views: ActorView, positions: tuple[PositionEntry, ...] = (), **over: Any) -> Observed:
    base: dict[str, Any] = {
        "actors": {v.name: v for v in views},
        "positions": positions,
        "venue_orders": (),
        "unowned_since": {},
        "started_wall": NOW - 600,
    }
    return Observed(**{**base, **over})


STATIC_VIEWS = (healthy("venue:binance", "venue"), healthy("portfolio", "portfolio"))


def decide(obs: Observed) -> list[Any]:
    return reconcile(STATIC, obs, NOW, NOW_MS, POLICY)


def test_healthy_system_needs_no_action() -> None:
    position = healthy("position:p1", "position", detail={"status": "open"}, owned_orders=("rt-1",))
    obs = observed(
        *STATIC_VIEWS,
        position,
        positions=(PositionEntry("p1", open=True),),
        venue_orders=(VenueOrderView("rt-1", "binance:BTC/USDT", "p1"),),
    )
    assert decide(obs) == []


def test_missing_actor_is_expected_then_created() -> None:
    obs = observed(healthy("venue:binance", "venue"), positions=(PositionEntry("p9", open=True),))
    assert decide(obs) == [Expect("position:p9", "position"), Expect("portfolio", "portfolio")]


def test_new_actor_without_heartbeat_gets_a_start_grace() -> None:
    starting = healthy(
        "portfolio", "portfolio", last_beat_wall=None, has_heartbeat=False, created_wall=NOW - 5
    )
    assert decide(observed(healthy("venue:binance", "venue"), starting)) == []


def test_stale_heartbeat_is_probed() -> None:
    stale = healthy("portfolio", "portfolio", last_beat_wall=NOW - 10)
    assert decide(observed(healthy("venue:binance", "venue"), stale)) == [Probe("portfolio")]


def test_probe_finds_actor_gone_recreates_it() -> None:
    stale = healthy("portfolio", "portfolio", last_beat_wall=NOW - 10)
    assert after_probe(stale, alive=False, now_wall=NOW, policy=POLICY) == [
        Recreate("portfolio", "portfolio")
    ]


def test_probe_finds_silent_live_position_restarts_it() -> None:
    silent = healthy("position:p1", "position", last_beat_wall=NOW - 10)
    assert after_probe(silent, alive=True, now_wall=NOW, policy=POLICY) == [RestartStale("position:p1")]
    briefly_late = healthy("position:p1", "position", last_beat_wall=NOW - 4)
    assert after_probe(briefly_late, alive=True, now_wall=NOW, policy=POLICY) == []


def test_restarts_beyond_budget_halt_once() -> None:
    flapping = healthy("portfolio", "portfolio", restarts=(NOW - 30, NOW - 20, NOW - 10))
    assert decide(observed(healthy("venue:binance", "venue"), flapping)) == [
        SpendBudget("portfolio", "portfolio", 3)
    ]
    spent = healthy("portfolio", "portfolio", restarts=(NOW - 30, NOW - 20, NOW - 10), budget_spent=True)
    assert decide(observed(healthy("venue:binance", "venue"), spent)) == []


def test_restarts_outside_the_window_do_not_count() -> None:
    old = healthy("portfolio", "portfolio", restarts=(NOW - 7200, NOW - 7100, NOW - 7000, NOW - 10))
    assert decide(observed(healthy("venue:binance", "venue"), old)) == []


def test_position_stuck_in_transient_state_is_redriven() -> None:
    held_ms = 40_000
    stuck = healthy(
        "position:p1", "position", detail={"status": "closing", "status_since_ms": NOW_MS - held_ms}
    )
    obs = observed(*STATIC_VIEWS, stuck, positions=(PositionEntry("p1", open=True),))
    assert decide(obs) == [Redrive("position:p1", "closing", held_ms, escalate=False)]


def test_position_redriven_recently_waits() -> None:
    stuck = healthy(
        "position:p1",
        "position",
        detail={"status": "entering", "status_since_ms": NOW_MS - 40_000},
        last_redrive_wall=NOW - 5,
    )
    assert decide(observed(*STATIC_VIEWS, stuck, positions=(PositionEntry("p1", open=True),))) == []


def test_position_stuck_after_repeated_redrives_is_escalated_once() -> None:
    detail = {"status": "closing", "status_since_ms": NOW_MS - 200_000}
    stuck = healthy("position:p1", "position", detail=detail, redrives=3)
    obs = observed(*STATIC_VIEWS, stuck, positions=(PositionEntry("p1", open=True),))
    assert decide(obs) == [Redrive("position:p1", "closing", 200_000, escalate=True)]
    already = healthy("position:p1", "position", detail=detail, redrives=4, escalated=True)
    obs = observed(*STATIC_VIEWS, already, positions=(PositionEntry("p1", open=True),))
    assert decide(obs) == [Redrive("position:p1", "closing", 200_000, escalate=False)]


def test_open_position_is_not_stuck() -> None:
    calm = healthy("position:p1", "position", detail={"status": "open", "status_since_ms": NOW_MS - 10**7})
    assert decide(observed(*STATIC_VIEWS, calm, positions=(PositionEntry("p1", open=True),))) == []


def test_unowned_order_is_watched_within_grace() -> None:
    order = VenueOrderView("rt-x", "binance:BTC/USDT", None)
    assert decide(observed(*STATIC_VIEWS, venue_orders=(order,))) == [WatchUnowned("rt-x")]
    watched = observed(*STATIC_VIEWS, venue_orders=(order,), unowned_since={"rt-x": NOW - 2})
    assert decide(watched) == []


def test_unowned_order_past_grace_is_cancelled() -> None:
    order = VenueOrderView("rt-x", "binance:BTC/USDT", "gone")
    obs = observed(*STATIC_VIEWS, venue_orders=(order,), unowned_since={"rt-x": NOW - 6})
    assert decide(obs) == [CancelOrphan("rt-x", "binance:BTC/USDT", "position:gone")]


def test_orphan_of_a_starting_owner_is_not_cancelled() -> None:
    starting = healthy("position:p1", "position", detail={"ready": False})
    order = VenueOrderView("rt-1", "binance:BTC/USDT", "p1")
    obs = observed(
        *STATIC_VIEWS,
        starting,
        positions=(PositionEntry("p1", open=True),),
        venue_orders=(order,),
        unowned_since={"rt-1": NOW - 60},
    )
    assert decide(obs) == [ForgetUnowned("rt-1")]


def test_orders_of_an_owner_being_probed_are_not_cancelled() -> None:
    """A slow-recovering owner (silent, probed this tick) still owns its orders."""
    slow = healthy("position:p1", "position", last_beat_wall=NOW - 30, owned_orders=("rt-1",))
    order = VenueOrderView("rt-1", "binance:BTC/USDT", "p1")
    obs = observed(
        *STATIC_VIEWS,
        slow,
        positions=(PositionEntry("p1", open=True),),
        venue_orders=(order,),
        unowned_since={"rt-1": NOW - 60},
    )
    assert decide(obs) == [Probe("position:p1"), ForgetUnowned("rt-1")]


def test_closed_position_is_released_on_its_actors_behalf_then_reaped() -> None:
    close = {"realized_pnl": "1.5", "fees": "0.1", "unfilled": False}
    just_closed = PositionEntry("p1", open=False, close=close, status_since_ms=NOW_MS - 1_000)
    assert decide(observed(*STATIC_VIEWS, positions=(just_closed,))) == []
    closed_a_while = PositionEntry("p1", open=False, close=close, status_since_ms=NOW_MS - RELEASE_AFTER_MS)
    assert decide(observed(*STATIC_VIEWS, positions=(closed_a_while,))) == [Release("p1", close)]
    released = PositionEntry("p1", open=False, released=True, close=close)
    actor = healthy("position:p1", "position")
    assert decide(observed(*STATIC_VIEWS, actor, positions=(released,))) == [Reap("position:p1")]
