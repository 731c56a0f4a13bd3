"""The kill switch with a venue down: it raised at the first venue whose cancel failed, so the
venues after it kept their orders, the halt alert was never sent, and the operator's command
failed although the latch was set (found by chaos: kill_switch_resume right after a node loss
had taken venue:binance with it). It must cancel everywhere it can and say where it could not."""

from __future__ import annotations

from pathlib import Path

import pytest
import ray

from actors.domain.names import SUPERVISOR, venue_name
from actors.shells.base import get_actor, try_actor
from config.loader import load_settings
from supervisor.control import runtime
from tests.runtime_harness import wait_for

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_local")]


def test_kill_switch_with_the_first_venue_down_cancels_the_others_and_reports_it(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        env={},
        overrides=[
            f'state_dir="{tmp_path / "state"}"',
            'runtime.namespace="t-kill-venue-down"',
            "metrics.port=0",
            "supervision.heartbeat_interval_s=0.5",
        ],
    )
    runtime.start_system(settings)
    try:
        binance, polymarket = venue_name("binance"), venue_name("polymarket")
        wait_for("both venues up", lambda: all(try_actor(settings, v) for v in (binance, polymarket)))
        ray.kill(get_actor(settings, binance), no_restart=True)  # down, until the supervisor re-creates it
        result = ray.get(get_actor(settings, SUPERVISOR).kill_switch.remote(), timeout=60)
        assert result["latched"]
        assert result["cancel_failed"] == ["binance"]
        assert ray.get(get_actor(settings, polymarket).open_orders.remote()) == []
        assert runtime.status(settings)["kill_switch_latched"]
    finally:
        runtime.stop_system(settings, cancel_orders=True, teardown=True)
