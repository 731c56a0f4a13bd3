"""The operator's snapshot (``raytrader status``) built from the supervisor's records, without Ray."""

from __future__ import annotations

from typing import Any

from actors.domain.telemetry import Heartbeat
from supervisor.control.status import ActorRecord, status_lines, status_snapshot

NOW = 1_000_000.0


def _record(
    name: str, kind: str, detail: dict[str, Any], *, age: float = 0.5, restarts: int = 0
) -> ActorRecord:
    beat = Heartbeat(
        actor_id=name, kind=kind, seq=1, incarnation="i1", wall_ms=0, last_progress_ms=0, detail=detail
    )
    return ActorRecord(
        name=name, kind=kind, last_beat_wall=NOW - age, heartbeat=beat, restarts_total=restarts
    )


def test_snapshot_reports_positions_portfolio_and_findings() -> None:
    records = [
        _record("position:b", "position", {"status": "closing"}),
        _record("position:a", "position", {"status": "open", "frozen": True}, restarts=2),
        _record("portfolio", "portfolio", {"equity": "10000"}),
        _record("feed:binance:BTC/USDT", "feed", {"done": True}, age=1.25),
        ActorRecord(name="pool:3", kind="pool"),  # expected, never beat yet
    ]
    snap = status_snapshot(
        records,
        NOW,
        started=True,
        frozen=False,
        metrics_port=9464,
        orphans=[],
        stuck=[{"position": "position:b"}],
        unreadable={"position:c": "not UTF-8 JSON"},
        redemptions=[{"position_id": "d", "usdc": "12.5"}],
        ticks=7,
    )
    assert [a["name"] for a in snap["actors"]] == [
        "feed:binance:BTC/USDT",
        "pool:3",
        "portfolio",
        "position:a",
        "position:b",
    ]
    assert snap["actors"][0]["heartbeat_age_s"] == 1.25
    assert snap["actors"][1]["heartbeat_age_s"] is None
    assert snap["portfolio"] == {"equity": "10000"}
    assert snap["frozen_positions"] == ["position:a"]
    assert snap["transient_positions"] == 1
    assert snap["feeds_done"] is True
    assert snap["restarts"] == 2
    assert snap["unreadable_positions"] == {"position:c": "not UTF-8 JSON"}
    assert snap["pending_redemptions"] == [{"position_id": "d", "usdc": "12.5"}]
    assert (snap["kill_switch_latched"], snap["ticks"], snap["metrics_port"]) == (False, 7, 9464)


def test_status_text_with_unreadable_positions_and_redemptions_lists_each() -> None:
    snap = status_snapshot(
        [_record("portfolio", "portfolio", {"equity": "10000", "realized_pnl": "3.5"})],
        NOW,
        started=True,
        frozen=True,
        metrics_port=None,
        orphans=[],
        stuck=[],
        unreadable={"position:c": "not UTF-8 JSON"},
        redemptions=[
            {"position_id": "d", "market": "polymarket:up", "shares": "10", "usdc": "10"},
            {"position_id": "e", "market": "polymarket:dn", "shares": "2.5", "usdc": "2.50"},
        ],
        ticks=1,
    )
    snap["paper_trades"] = {"minimum": 30, "live_data": {"mean_reversion": 4}}
    text = "\n".join(status_lines(snap))
    assert "kill switch LATCHED" in text
    assert "UNREADABLE positions 1" in text
    assert "position:c: not UTF-8 JSON" in text
    assert "pending redemptions 2, 12.50 USDC" in text
    assert "d polymarket:up: 10 shares -> 10 USDC" in text
    assert "live-data paper trades mean_reversion: 4/30" in text


def test_status_text_of_a_healthy_system_has_no_action_lines() -> None:
    snap = status_snapshot(
        [],
        NOW,
        started=True,
        frozen=False,
        metrics_port=None,
        orphans=[],
        stuck=[],
        unreadable={},
        redemptions=[],
        ticks=1,
    )
    text = "\n".join(status_lines(snap))
    assert "kill switch clear" in text
    assert "UNREADABLE" not in text
    assert "redemptions" not in text
