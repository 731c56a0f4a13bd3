"""Chaos: the seeded schedule is reproducible and deals every kind, and a short seeded run of the
default portfolio on a multi-node cluster keeps every invariant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actors.venues.faults import WINDOW_FAULTS
from ops.chaos import ChaosRun
from ops.chaos_schedule import FAULT_KINDS, WINDOW_S, schedule


def test_same_seed_gives_the_same_schedule() -> None:
    first = schedule(7, 300.0)
    assert first == schedule(7, 300.0)
    assert first != schedule(8, 300.0)
    assert {e.kind for e in first} == set(FAULT_KINDS)
    assert all(15.0 <= e.at_s < 280.0 for e in first)
    assert all(WINDOW_S[0] <= e.window_s <= WINDOW_S[1] for e in first if e.kind in WINDOW_FAULTS)


def test_every_kind_comes_up_once_per_round_of_the_deck() -> None:
    events = schedule(3, 600.0, per_minute=30.0)
    first_round = [e.kind for e in events[: len(FAULT_KINDS)]]
    assert sorted(first_round) == sorted(FAULT_KINDS)


def test_unknown_fault_kind_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown fault kinds \\['meteor'\\]; known: sigkill"):
        schedule(1, 60.0, ("sigkill", "meteor"))


@pytest.mark.ray
@pytest.mark.slow
def test_short_seeded_chaos_run_keeps_every_invariant(tmp_path: Path) -> None:
    report = ChaosRun(seed=1, duration_s=90.0, kinds=FAULT_KINDS, work_dir=tmp_path, per_minute=12.0).run()
    result = report.as_dict()
    (tmp_path / "chaos.json").write_text(json.dumps(result, indent=2))
    assert result["faults_injected"] >= 8, result
    assert result["fault_kinds"] >= 4, result
    assert result["orders"] > 0, result
    failed = [i for i in result["invariants"] if not i["ok"]]
    assert not failed, failed
