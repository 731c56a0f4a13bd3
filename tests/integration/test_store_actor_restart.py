"""The Store actor after Ray restarts it: the state it had, or a loud failure, never an empty store.

Ray restarts a crashed actor on whichever node has room. Without the store's resource on the
cluster that can be a node without the LMDB file, where opening with ``create=True`` made a new,
empty store: every position and order forgotten while the runtime carried on (issue 10, "a store
created empty on a node without its file"). A node without the file is played here by moving the
file away before the crash.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest
import ray

from actors.domain.names import STORE
from actors.shells.base import actor_options, remote
from actors.shells.store import StoreActor, store_path
from config.loader import load_settings
from config.models import Settings
from tests.runtime_harness import wait_for

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_local")]


def _settings(tmp_path: Path, namespace: str) -> Settings:
    return load_settings(
        None, overrides=[f'state_dir="{tmp_path / "state"}"', f'runtime.namespace="{namespace}"']
    )


def _crash(store: object) -> None:
    os.kill(int(ray.get(store.pid.remote())), signal.SIGKILL)  # type: ignore[attr-defined]


def _after_restart(store: object) -> str | None:
    """What the restarted actor does: "answered <value>" to a read, "dead" once Ray gave it up;
    None while it is still coming back."""
    try:
        return f"answered {ray.get(store.get.remote('meta', 'probe'), timeout=60)!r}"  # type: ignore[attr-defined]
    except ray.exceptions.ActorDiedError as exc:
        return "dead" if "__init__" in str(exc) or "creation" in str(exc) else None
    except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError):
        return None


def test_store_restarted_where_its_file_is_missing_fails_instead_of_starting_empty(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "t-store-missing")
    path = store_path(settings)
    path.parent.mkdir(parents=True)
    store = remote(StoreActor).options(**actor_options(settings, STORE)).remote(settings)
    try:
        ray.get(store.put.remote("meta", "probe", {"positions": 3}))
        shutil.move(str(path), str(tmp_path / "elsewhere"))  # the node Ray picks has no such file
        _crash(store)
        assert wait_for("the restarted store to answer or die", lambda: _after_restart(store)) == "dead"
        assert not (path / "data.mdb").exists()  # no empty store was created in its place
    finally:
        ray.kill(store, no_restart=True)


def test_store_restarted_with_its_file_in_place_keeps_its_state(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "t-store-restart")
    store_path(settings).parent.mkdir(parents=True)
    store = remote(StoreActor).options(**actor_options(settings, STORE)).remote(settings)
    try:
        ray.get(store.put.remote("meta", "probe", {"positions": 3}))
        before = int(ray.get(store.pid.remote()))
        _crash(store)
        assert wait_for("the restarted store to answer", lambda: _after_restart(store)) == (
            "answered {'positions': 3}"
        )
        assert int(ray.get(store.pid.remote())) != before
    finally:
        ray.kill(store, no_restart=True)
