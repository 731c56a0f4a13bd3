"""State store export and import: exact round trips, refusals, migration of older exports."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from actors.store.lmdb_store import KINDS, SCHEMA_VERSION, SchemaError, StateStore, StoreError
from tests.unit.store.store_helpers import V0Store, V3Store, populate, raw_versions


def _dump_all(store: StateStore) -> dict[str, list[tuple[str, str]]]:
    """Every record, compared as JSON text (NaN != NaN as floats)."""
    return {
        kind: [(k, json.dumps(d, sort_keys=True)) for k, d in store.items(kind)]
        for kind in KINDS
        if kind != "meta"
    }


def test_export_import_roundtrip_identical(tmp_path: Path) -> None:
    backup = tmp_path / "backup.jsonl"
    with StateStore(tmp_path / "a") as src:
        populate(src)
        n = src.export_json(backup)
        expected = _dump_all(src)
        expected_intents = src.unanswered_intents()
    assert n == len(backup.read_text().splitlines())
    with StateStore(tmp_path / "b") as dst:
        assert dst.import_json(backup) == n - 1  # meta/schema is the store's own
        assert _dump_all(dst) == expected
        assert dst.get("meta", "halted") == {"value": False}
        # indexes were rebuilt by the import
        assert dst.unanswered_intents() == expected_intents
        assert dst.append_trade({"strategy": "s", "ts_ms": 2, "position_id": "pos-0"}) == 1
        assert dst.append_trade({"strategy": "s", "ts_ms": 3}) == 2


def test_import_into_non_empty_store_refused_unless_replace(tmp_path: Path) -> None:
    buf = io.StringIO()
    with StateStore(tmp_path / "a") as src:
        populate(src)
        src.export_json(buf)
        expected = _dump_all(src)
    with StateStore(tmp_path / "b") as dst:
        dst.put("strategy", "local-only", {})
        with pytest.raises(StoreError, match="non-empty"):
            dst.import_json(io.StringIO(buf.getvalue()))
        assert dst.count("order") == 0
        dst.import_json(io.StringIO(buf.getvalue()), replace=True)
        assert dst.get("strategy", "local-only") is None
        assert _dump_all(dst) == expected


def test_import_older_export_migrates_and_newer_refused(tmp_path: Path) -> None:
    buf = io.StringIO()
    with V0Store(tmp_path / "old") as old:
        old.put("strategy", "s", {"a": 1})
        old.export_json(buf)
    with StateStore(tmp_path / "new") as store:
        store.import_json(io.StringIO(buf.getvalue()))
        assert store.get("strategy", "s") == {"a": 1}
        assert raw_versions(store) == {SCHEMA_VERSION}

    newer = io.StringIO()
    with V3Store(tmp_path / "v3") as v3:
        v3.export_json(newer)
    with StateStore(tmp_path / "other") as store, pytest.raises(SchemaError, match="newer"):
        store.import_json(io.StringIO(newer.getvalue()))


def test_import_malformed_line_refused_with_line_number(store: StateStore) -> None:
    text = json.dumps({"kind": "meta", "key": "schema", "v": 1, "data": {"version": 1}}) + "\n{oops\n"
    with pytest.raises(StoreError, match=r"<stream>:2"):
        store.import_json(io.StringIO(text))
    with pytest.raises(StoreError, match="no meta/schema"):
        store.import_json(io.StringIO(json.dumps({"kind": "feed", "key": "f", "v": 1, "data": {}}) + "\n"))
