"""The supervisor's metrics registry: an actor gone on purpose leaves no series behind."""

from __future__ import annotations

from prometheus_client import generate_latest

from supervisor.control.metrics import MetricsRegistry


def test_forgotten_actor_series_absent_not_stuck_at_zero() -> None:
    """A reaped position's raytrader_actor_up stayed at 0 for ever, so RaytraderActorDown
    (raytrader_actor_up == 0 for 30 s) fired for every closed position."""
    registry = MetricsRegistry()
    kept = {"kind": "feed", "actor": "feed:binance:BTC/USDT"}
    gone = {"kind": "position", "actor": "position:p1"}
    for labels in (kept, gone):
        registry.set("raytrader_actor_up", 1.0, labels)
        registry.set("raytrader_heartbeat_age_seconds", 0.5, labels)
    registry.forget("raytrader_actor_up", gone)
    registry.forget("raytrader_heartbeat_age_seconds", gone)
    registry.forget("raytrader_actor_up", {"kind": "pool", "actor": "pool:9"})  # never set: no error
    text = generate_latest(registry.registry).decode()
    assert 'actor="position:p1"' not in text
    assert 'raytrader_actor_up{actor="feed:binance:BTC/USDT",kind="feed"} 1.0' in text
