"""Pre-started position actors (runtime.position_pool): entries go to an actor already running,
and a pooled actor's crash, idle or just assigned, still leaves one actor per open position."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray

from actors.domain.names import position_name
from actors.shells.base import get_actor, register_alias, try_actor
from actors.store.lmdb_store import StateStore
from config.models import Settings
from supervisor.control import runtime
from tests.runtime_harness import binance_settings, run_to_end, wait_for

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_local")]


@pytest.fixture
def system(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Settings]:
    settings = binance_settings(tmp_path, f"p-{request.node.name[:40]}", extra=("runtime.position_pool=2",))
    runtime.start_system(settings)
    yield settings
    runtime.stop_system(settings, cancel_orders=True, teardown=True)


def _records(settings: Settings) -> dict[str, dict[str, Any]]:
    with StateStore(Path(settings.state_dir) / "store", readonly=True) as db:
        return dict(db.items("position"))


def _pooled_positions(settings: Settings) -> list[dict[str, Any]]:
    return [p for p in runtime.status(settings)["positions"] if p["detail"].get("pool")]


def _idle_pool(settings: Settings) -> list[str]:
    return [a["name"] for a in runtime.status(settings)["actors"] if a["kind"] == "pool"]


def _sigkill(handle: Any) -> int:
    pid = int(ray.get(handle.pid.remote(), timeout=10))
    os.kill(pid, signal.SIGKILL)
    return pid


def _restarted(handle: Any, old_pid: int) -> bool:
    try:
        return int(ray.get(handle.pid.remote(), timeout=10)) != old_pid
    except Exception:
        return False


def _back(settings: Settings, name: str, old_pid: int) -> bool:
    try:
        return _restarted(get_actor(settings, name), old_pid)
    except ValueError:
        return False


def _assert_one_actor_per_open_position(settings: Settings) -> None:
    """Every open record has an actor; a pooled one's position has no second, named actor."""
    for position_id, record in _records(settings).items():
        if not record["open"]:
            continue
        handle = get_actor(settings, position_name(position_id))  # raises if none
        assert ray.get(handle.snapshot.remote(), timeout=10)["position_id"] == position_id
        if str(record.get("actor") or "").startswith("pool:"):
            with pytest.raises(ValueError, match="look up actor"):
                ray.get_actor(position_name(position_id), namespace=settings.runtime.namespace)


def _assert_invariants(settings: Settings) -> None:
    failed = [r.as_dict() for r in runtime.verify_from_store(settings) if not r.ok]
    assert not failed, failed


def _prestarted_entries(settings: Settings) -> list[str]:
    """Positions whose pooled actor was already running at the tick that opened them (an entry that
    found the pool empty waits for one starting: not counted)."""
    found = []
    records = _records(settings)
    for position in _pooled_positions(settings):
        record = records[str(position["name"]).split(":", 1)[1]]
        assert record["actor"] == position["detail"]["pool"]
        incarnation = str(ray.get(get_actor(settings, str(position["name"])).ping.remote(), timeout=10))
        if int(incarnation.split("-")[1]) < int(record["origin_ns"]):
            found.append(str(position["name"]))
    return found


def test_entry_is_placed_by_a_pooled_actor_started_before_its_signal(system: Settings) -> None:
    wait_for("an entry placed by a pre-started actor", lambda: _prestarted_entries(system), timeout_s=180)
    run_to_end(system)
    runtime.stop_system(system, cancel_orders=True, teardown=False)
    _assert_invariants(system)


def _feed(settings: Settings) -> Any:
    return get_actor(settings, "feed:binance:BTC/USDT")


def _paused_with_open_pooled_position(settings: Settings) -> str | None:
    """A pooled actor running an open position, the feed paused so that position cannot close (its
    entry expire, its exits fill) while its actor is killed and comes back; None, feed running."""
    feed = _feed(settings)
    ray.get(feed.pause.remote(True), timeout=10)
    records = _records(settings)
    for position in _pooled_positions(settings):
        if records[str(position["name"]).split(":", 1)[1]]["open"]:
            return str(position["name"])
    ray.get(feed.pause.remote(False), timeout=10)
    return None


def test_pooled_actor_killed_idle_or_just_assigned_leaves_one_actor_per_position(system: Settings) -> None:
    # the feed paused while an idle pooled actor is killed: no entry is assigned to it meanwhile
    ray.get(_feed(system).pause.remote(True), timeout=10)
    idle = wait_for("an idle pooled actor", lambda: _idle_pool(system), timeout_s=60, poll_s=0.05)
    handle = get_actor(system, idle[0])
    pid = _sigkill(handle)
    wait_for("the idle pooled actor back", lambda: _restarted(handle, pid), timeout_s=60)
    ray.get(_feed(system).pause.remote(False), timeout=10)
    name = wait_for(
        "a pooled actor running an open position",
        lambda: _paused_with_open_pooled_position(system),
        timeout_s=180,
        poll_s=0.02,
    )
    pid = _sigkill(get_actor(system, name))
    # restarted by Ray, or (if that is slow) re-created by the supervisor: either way under its name
    wait_for("the assigned position's actor back", lambda: _back(system, name, pid), timeout_s=120)
    _assert_one_actor_per_open_position(system)
    ray.get(_feed(system).pause.remote(False), timeout=10)
    run_to_end(system)
    _assert_one_actor_per_open_position(system)
    runtime.stop_system(system, cancel_orders=True, teardown=False)
    _assert_invariants(system)


def test_pooled_actors_whose_positions_closed_run_the_later_positions_without_new_processes(
    tmp_path: Path,
) -> None:
    """With a pool of one, 10,000 bars open a dozen positions one after another: each closed one's
    pooled actor goes back to the pool and runs a later one, so two processes run them all; none is
    killed on the way (reaping an old observation once killed an actor running the next position,
    whose entry then waited for the supervisor to re-create it under a named actor)."""
    settings = binance_settings(tmp_path, "p-reuse", rows=10_000, extra=("runtime.position_pool=1",))
    runtime.start_system(settings)
    try:
        run_to_end(settings)
        runtime.stop_system(settings, cancel_orders=True, teardown=False)
        records = _records(settings)
        owners = [str(r.get("actor")) for r in records.values()]
        assert len(records) >= 6, len(records)
        assert all(owner.startswith("pool:") for owner in owners), owners
        assert len(set(owners)) <= 2, sorted(set(owners))
        returned = [r for r in records.values() if r.get("pool_returned")]
        assert len(returned) >= len(records) - 2
        assert all(r["released"] and not r["open"] for r in returned)
        _assert_invariants(settings)
    finally:
        runtime.stop_system(settings, cancel_orders=True, teardown=True)


@ray.remote
class _Named:
    def __init__(self, tag: str) -> None:
        self.tag = tag

    def who(self) -> str:
        return self.tag


def test_position_alias_resolves_within_its_own_namespace(tmp_path: Path) -> None:
    """Two systems driven from one process (tests, benchmarks) share position ids: each one's
    ``position:<id>`` must reach its own pooled actor, not the one the other system cached."""
    systems = [binance_settings(tmp_path, ns, rows=10) for ns in ("alias-a", "alias-b")]
    actors = [
        _Named.options(name=f"pool:{n}", namespace=s.runtime.namespace).remote(f"{s.runtime.namespace}/{n}")  # type: ignore[attr-defined]
        for s in systems
        for n in (1, 2)
    ]
    register_alias(systems[0], "position:p", "pool:1")
    register_alias(systems[1], "position:p", "pool:2")
    try:
        assert ray.get(try_actor(systems[0], "position:p").who.remote()) == "alias-a/1"
        assert ray.get(try_actor(systems[1], "position:p").who.remote()) == "alias-b/2"
    finally:
        for actor in actors:
            ray.kill(actor)
