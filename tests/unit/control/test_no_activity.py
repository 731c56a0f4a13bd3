"""The no-activity decision: nothing traded and no signal evaluated for `notify.no_activity_s`
raises one alert per silence and clears when activity resumes (pure: no Ray, no clock)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from actors.domain.telemetry import Heartbeat, MetricDelta
from config.loader import load_settings
from supervisor.control.notifier import AlertKind, Severity, no_activity_alert
from supervisor.control.reconcile import (
    ClearNoActivity,
    Desired,
    Observed,
    Policy,
    RaiseNoActivity,
    activity_clock_rate,
    reconcile,
    shows_activity,
)

NOW = 100_000.0
POLICY = Policy(
    heartbeat_interval_s=1.0,
    suspect_after_beats=3,
    stuck_transient_s=30.0,
    orphan_grace_s=5.0,
    restart_budget=2,
    restart_window_s=3600.0,
    no_activity_s=3600.0,
)


def activity(last_activity_ago_s: float, policy: Policy = POLICY, **over: Any) -> list[Any]:
    observed = Observed(actors={}, started_wall=NOW - 10_000, last_activity_wall=NOW - last_activity_ago_s)
    actions = reconcile(Desired(actors=()), replace(observed, **over), NOW, policy)
    return [a for a in actions if isinstance(a, RaiseNoActivity | ClearNoActivity)]


def beat(
    kind: str, event_ms: int | None = None, metrics: tuple[MetricDelta, ...] = (), **detail: Any
) -> Heartbeat:
    return Heartbeat(
        actor_id=kind,
        kind=kind,
        seq=1,
        incarnation="i1",
        wall_ms=0,
        last_progress_ms=0,
        event_ms=event_ms,
        detail=detail,
        metrics=metrics,
    )


def test_silence_past_the_limit_raises_once_with_when_it_began() -> None:
    assert activity(3599.0) == []
    (raised,) = activity(3600.0)
    assert raised == RaiseNoActivity(silent_s=3600.0, since_wall=NOW - 3600.0)
    assert activity(7200.0, no_activity_alerted=True) == []  # once per silence, not every tick


def test_activity_after_an_alerted_silence_clears_it() -> None:
    assert activity(0.5, no_activity_alerted=True) == [ClearNoActivity(silent_s=0.5)]
    assert activity(0.5) == []  # nothing to clear


def test_a_finished_replay_is_silent_by_design_and_off_means_off() -> None:
    assert activity(9999.0, replay_done=True) == []
    assert activity(9999.0, replace(POLICY, no_activity_s=None)) == []


def test_paced_replay_counts_on_its_data_clock() -> None:
    """At speed 60 an hour of market time passes in a wall minute, as the positions count it."""
    paced = replace(POLICY, activity_clock_rate=60.0)
    assert activity(59.0, paced) == []
    (raised,) = activity(60.0, paced)
    assert raised.silent_s == 3600.0
    settings = load_settings(None, env={}, overrides=["replay.speed=60.0"])
    assert activity_clock_rate(settings) == 60.0
    assert activity_clock_rate(load_settings(None, env={})) == 1.0  # speed max: wall time


def test_paper_on_live_data_counts_wall_time_whatever_the_replay_speed() -> None:
    """Paper trading on live feeds (issue 12) runs on the wall clock: a configured replay speed,
    which it does not use, made the no-activity alert fire 60 times too early."""
    live_feeds = load_settings(None, env={}, overrides=["replay.speed=60.0", 'feeds="live"'])
    assert activity_clock_rate(live_feeds) == 1.0


def test_policy_from_settings_carries_the_configured_limit() -> None:
    settings = load_settings(None, env={})
    assert settings.notify.no_activity_s == 3600.0  # the guide's one hour
    assert Policy.from_settings(settings).no_activity_s == 3600.0
    off = load_settings(None, env={}, overrides=["notify.no_activity_s=120"])
    assert Policy.from_settings(off).no_activity_s == 120.0


def test_what_counts_as_activity() -> None:
    signal = MetricDelta(type="counter", name="raytrader_signals_total", values=(1.0,))
    fill = MetricDelta(type="counter", name="raytrader_fills_total", values=(2.0,))
    lag = MetricDelta(type="gauge", name="raytrader_feed_lag_seconds", values=(0.1,))
    assert shows_activity(None, beat("strategy", 10, (signal,)))  # a signal emitted
    assert shows_activity(None, beat("venue", None, (fill,)))  # a fill
    assert not shows_activity(None, beat("feed", 10, (lag,)))  # a feed delivering is not evaluating
    assert not shows_activity(None, beat("strategy", 10))  # a first beat sets no baseline
    assert shows_activity(beat("strategy", 10), beat("strategy", 11))  # evaluated newer data
    assert not shows_activity(beat("strategy", 11), beat("strategy", 11))  # heartbeats alone
    assert shows_activity(beat("portfolio", decisions=3), beat("portfolio", decisions=4))
    assert not shows_activity(beat("portfolio", decisions=4), beat("portfolio", decisions=4))
    assert not shows_activity(beat("position", 10), beat("position", 20))  # prices reaching a position


def test_alert_is_keyed_by_its_silence_so_the_cooldown_never_hides_the_next() -> None:
    first = no_activity_alert(3600.0, 3600.0, since_ms=1_000)
    second = no_activity_alert(3600.0, 3600.0, since_ms=9_000)
    resumed = no_activity_alert(4000.0, 3600.0, since_ms=1_000, resumed=True)
    assert first.kind is AlertKind.NO_ACTIVITY
    assert first.severity is Severity.WARNING
    assert len({first.dedup_key, second.dedup_key, resumed.dedup_key}) == 3
    assert resumed.severity is Severity.INFO
    assert "resumed" in resumed.summary
