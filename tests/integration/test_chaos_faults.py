"""Chaos with issue 10's fault kinds on the default portfolio, in one local Ray instance: stop and
resume (with and without the kill switch), venue rejections, partial fills, a strategy replaying
signals already acted on, a full store. Every invariant must hold and every kind be injected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ops.chaos import ChaosRun
from ops.chaos_schedule import ISSUE_10_KINDS, FaultEvent

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_local")]

WINDOW_S = 1.5
EVENTS = [
    FaultEvent(1.0, "store_full"),
    FaultEvent(2.0, "reject_balance", window_s=WINDOW_S),
    FaultEvent(3.0, "partial_fills", window_s=WINDOW_S),
    FaultEvent(4.0, "stop_resume"),
    FaultEvent(5.0, "reject_min_notional", window_s=WINDOW_S),
    FaultEvent(6.0, "kill_switch_resume"),
    FaultEvent(7.0, "reject_tick_size", window_s=WINDOW_S),
    FaultEvent(8.0, "strategy_replay"),
]


def test_issue_10_fault_kinds_on_the_default_portfolio_keep_every_invariant(tmp_path: Path) -> None:
    assert {e.kind for e in EVENTS} == set(ISSUE_10_KINDS)
    run = ChaosRun(
        seed=10,
        duration_s=8.0,
        kinds=ISSUE_10_KINDS,
        work_dir=tmp_path,
        events=EVENTS,
        cluster=False,
        speed="max",  # the test is shorter than the data at full speed
    )
    report = run.run()
    result = report.as_dict()
    (tmp_path / "chaos.json").write_text(json.dumps(result, indent=2))
    assert result["skipped"] == [], result["skipped"]
    assert result["faults_by_kind"] == dict.fromkeys(sorted(ISSUE_10_KINDS), 1), result["faults_by_kind"]
    assert result["struck"].get("store_map_full") == 1  # a write found the map full and grew it
    assert result["orders"] > 0, result
    failed = [i for i in result["invariants"] if not i["ok"]]
    assert not failed, failed
