"""A real multi-node Ray cluster on this machine: actors spread over nodes, a node lost mid-run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
from ray.cluster_utils import Cluster

from actors.domain.names import position_name
from actors.shells.base import get_actor
from actors.store.lmdb_store import StateStore
from supervisor.control import runtime
from tests.runtime_harness import binance_settings, run_to_end, wait_for

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A head (which holds the store) and two worker nodes, each its own raylet."""
    c = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "resources": {runtime.STORE_RESOURCE: 1, runtime.HEAD_RESOURCE: 1},
            "include_dashboard": False,
            "object_store_memory": 100 * 2**20,
        },
    )
    for _ in range(2):
        c.add_node(num_cpus=1, object_store_memory=100 * 2**20)
    ray.init(address=c.address, log_to_driver=False)
    yield c
    ray.shutdown()
    c.shutdown()  # type: ignore[no-untyped-call]


def _placement(settings: Any) -> dict[str, str]:
    """Actor name -> node id, asked of each actor itself."""
    out: dict[str, str] = {}
    for actor in runtime.status(settings)["actors"]:
        try:
            out[actor["name"]] = ray.get(get_actor(settings, actor["name"]).node_id.remote(), timeout=10)
        except Exception:
            continue
    return out


def _open_positions(settings: Any) -> list[str]:
    """The actor names of the positions the store holds open."""
    with StateStore(Path(settings.state_dir) / "store", readonly=True) as db:
        return [position_name(key) for key, record in db.items("position") if record["open"]]


def test_actors_spread_and_survive_the_loss_of_a_worker_node(cluster: Cluster, tmp_path: Path) -> None:
    settings = binance_settings(tmp_path, "t-cluster", rows=4000, extra=("runtime.spread_actors=true",))
    runtime.start_system(settings)
    try:
        head = ray.get_runtime_context().get_node_id()
        placement = wait_for(
            "actors on several nodes", lambda: (p := _placement(settings)) and len(set(p.values())) >= 2 and p
        )
        assert placement["store"] == head  # the LMDB writer is pinned to the head by its resource
        workers = [n for n in cluster.worker_nodes if n.node_id in set(placement.values())]
        assert workers, placement
        victim = workers[0]
        moved = sorted(name for name, node in placement.items() if node == victim.node_id)
        wait_for(
            "some trading",
            lambda: runtime.read_trades(settings) or runtime.status(settings)["positions"],
            180,
        )
        cluster.remove_node(victim, allow_graceful=False)
        # the fixed actors come back elsewhere; a position or pooled actor may be gone on purpose
        # meanwhile (its position closed and it was reaped; an idle pooled one replaced), but none
        # is left on the lost node and every open position has an actor elsewhere
        fixed = [n for n in moved if not n.startswith(("position:", "pool:"))]
        after = wait_for(
            "the lost node's actors elsewhere",
            lambda: (
                (p := _placement(settings))
                and all(p.get(n) not in (None, victim.node_id) for n in fixed)
                and victim.node_id not in p.values()
                and all(p.get(n) not in (None, victim.node_id) for n in _open_positions(settings))
                and p
            ),
            timeout_s=180,
        )
        assert all(after.get(n) != victim.node_id for n in moved)
        snapshot = run_to_end(settings)
        assert snapshot["restarts"] >= 1, (moved, fixed, runtime.status(settings)["actors"])
        runtime.stop_system(settings, cancel_orders=True, teardown=False)
        results = runtime.verify_from_store(settings)
        failed = [r.as_dict() for r in results if not r.ok]
        assert not failed, failed
        fills_checked = next(r.checked for r in results if r.number == 3)
        assert fills_checked > 0  # it traded: the invariants were checked against real fills
    finally:
        runtime.stop_system(settings, cancel_orders=True, teardown=True)
