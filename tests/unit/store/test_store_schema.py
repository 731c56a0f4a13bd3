"""State store schema: the meta record, migrations in order, newer or gapped schemas refused."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from actors.store.lmdb_store import SCHEMA_VERSION, Migration, SchemaError, StateStore
from tests.unit.store.store_helpers import V0Store, V3Store, double_step, make_order, raw_versions


def test_new_store_writes_meta_schema(store: StateStore) -> None:
    meta = store.get("meta", "schema")
    assert meta is not None
    assert meta["version"] == SCHEMA_VERSION
    assert store.inspect()["schema_version"] == SCHEMA_VERSION


def test_open_v0_store_runs_noop_migration_to_v1(tmp_path: Path) -> None:
    path = tmp_path / "state"
    with V0Store(path) as old:
        old.put("strategy", "s", {"a": 1})
        old.record_intent(make_order())
        assert raw_versions(old) == {0}
    with StateStore(path) as store:
        assert store.inspect()["schema_version"] == 1
        assert store.get("strategy", "s") == {"a": 1}
        assert [o.client_id for o in store.unanswered_intents()] == ["c-1"]
        assert raw_versions(store) == {1}
        meta = store.get("meta", "schema")
        assert meta is not None
        assert meta["migrated_from"] == 0


def test_migration_chain_applies_steps_in_order(tmp_path: Path) -> None:
    path = tmp_path / "state"
    with StateStore(path) as store:
        store.put("strategy", "s", {"a": 21})
        store.put("strategy", "drop", {"a": 0})
        store.put("feed", "f", {"a": 1})
    with V3Store(path) as store:
        assert store.get("strategy", "s") == {"a": 21, "c": 42}
        assert store.get("strategy", "drop") is None
        assert store.get("feed", "f") == {"a": 1}
        assert store.inspect()["schema_version"] == 3
        assert raw_versions(store) == {3}


def test_open_newer_schema_fails_naming_path_and_versions(tmp_path: Path) -> None:
    path = tmp_path / "state"
    V3Store(path).close()
    for kwargs in ({}, {"readonly": True}):
        with pytest.raises(SchemaError) as err:
            StateStore(path, **kwargs)
        message = str(err.value)
        assert str(path) in message
        assert "v3" in message
        assert f"v{SCHEMA_VERSION}" in message


def test_missing_migration_step_fails_and_leaves_store_untouched(tmp_path: Path) -> None:
    path = tmp_path / "state"
    with StateStore(path) as store:
        store.put("strategy", "s", {"a": 1})

    class Gap(StateStore):
        schema_version: ClassVar[int] = 3
        migrations: ClassVar[dict[int, Migration]] = {1: double_step}

    with pytest.raises(SchemaError, match="no migration from v2"):
        Gap(path)
    with StateStore(path) as store:
        assert store.get("strategy", "s") == {"a": 1}
        assert store.inspect()["schema_version"] == 1


def test_failing_migration_rolls_back_everything(tmp_path: Path) -> None:
    path = tmp_path / "state"
    with StateStore(path) as store:
        store.put("strategy", "a", {"a": 1})
        store.put("strategy", "b", {"no_a": 1})

    with pytest.raises(KeyError):
        V3Store(path)  # double_step succeeds on "a", then fails on "b"
    with StateStore(path) as store:
        assert store.get("strategy", "a") == {"a": 1}
        assert store.inspect()["schema_version"] == 1


def test_readonly_open_of_older_schema_refuses(tmp_path: Path) -> None:
    path = tmp_path / "state"
    V0Store(path).close()
    with pytest.raises(SchemaError, match="older"):
        StateStore(path, readonly=True)
