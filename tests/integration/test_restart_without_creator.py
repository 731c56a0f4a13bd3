"""Ray cannot restart an actor whose constructor arguments are in the object store once the process
that created it has died (ray-project/ray#53727: the arguments' owner is gone). The supervisor
created venue:polymarket and the portfolio with every instrument of the Polymarket day, too many
to travel inline, so a supervisor restart left them unable to come back from a crash: dead until
the supervisor noticed and re-created them, and the supervisor itself (created by the driver with
the same list) could not come back after a driver died. Found by chaos on the default portfolio,
where Polymarket is on: Binance's one instrument travelled inline. Actors now take small arguments
and learn the instruments themselves."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest
import ray

from actors.domain.names import PORTFOLIO, SUPERVISOR, venue_name
from actors.shells.base import get_actor
from config.loader import load_settings
from config.models import Settings
from supervisor.control import runtime
from tests.runtime_harness import wait_for

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_local")]


def _pid(settings: Settings, name: str) -> int | None:
    with contextlib.suppress(Exception):
        return int(ray.get(get_actor(settings, name).pid.remote(), timeout=5))
    return None


def test_polymarket_venue_and_portfolio_crashed_after_their_creator_restarted_come_back_by_ray(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        None,
        env={},
        overrides=[
            f'state_dir="{tmp_path / "state"}"',
            'runtime.namespace="t-restart-args"',
            "metrics.port=0",
            "supervision.heartbeat_interval_s=0.5",
            # Ray's restart is what is tested: the supervisor must not re-create them first on a slow machine
            "supervision.suspect_after_beats=240",
        ],
    )
    runtime.start_system(settings)
    try:
        venue = venue_name("polymarket")
        names = (venue, PORTFOLIO)
        first = {name: wait_for(f"{name} up", lambda n=name: _pid(settings, n)) for name in names}
        ids = {name: get_actor(settings, name)._actor_id for name in first}
        supervisor = wait_for("the supervisor", lambda: _pid(settings, SUPERVISOR))
        os.kill(supervisor, signal.SIGKILL)  # its process owned what it passed to the actors it created
        wait_for("the supervisor back", lambda: _pid(settings, SUPERVISOR) not in (None, supervisor))
        for pid in first.values():
            os.kill(pid, signal.SIGKILL)
        for name, pid in first.items():
            wait_for(f"{name} back", lambda n=name, p=pid: _pid(settings, n) not in (None, p))
            assert get_actor(settings, name)._actor_id == ids[name], f"{name} was re-created, not restarted"
    finally:
        runtime.stop_system(settings, cancel_orders=True, teardown=True)
