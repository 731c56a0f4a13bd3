"""State store health: corrupt values skipped and reported, and what ``inspect`` reports."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import lmdb
import pytest

from actors.store.lmdb_store import SCHEMA_VERSION, CorruptRecordError, StateStore
from tests.unit.store.store_helpers import make_order, populate


def inject_raw(path: Path, db: str, key: str, value: bytes) -> None:
    """Write bytes under the store's back: simulates a corrupt value."""
    env = lmdb.open(str(path), max_dbs=32)
    try:
        with env.begin(write=True) as txn:
            txn.put(key.encode(), value, db=env.open_db(db.encode(), txn=txn))
    finally:
        env.close()


def test_corrupt_values_skipped_and_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "state"
    with StateStore(path) as store:
        store.put("strategy", "a", {"ok": 1})
        store.put("strategy", "c", {"ok": 3})
    inject_raw(path, "strategy", "b", b"\xff\xfe not json")
    inject_raw(path, "strategy", "d", b'{"v": 1, "kind": "feed", "data": {}}')
    inject_raw(path, "strategy", "e", b'{"v": 99, "kind": "strategy", "data": {}}')
    inject_raw(path, "strategy", "f", b"[1, 2]")

    with StateStore(path) as store, caplog.at_level(logging.WARNING, logger="actors.store.lmdb_store"):
        assert list(store.items("strategy")) == [("a", {"ok": 1}), ("c", {"ok": 3})]
        assert store.decode_errors == {"strategy": 4}
        assert "strategy/b" in caplog.text
        assert store.count("strategy") == 6
        with pytest.raises(CorruptRecordError, match="strategy/b"):
            store.get("strategy", "b")
        report = store.inspect(verify=True)
        assert report["corrupt"] == ["strategy/b", "strategy/d", "strategy/e", "strategy/f"]
        buf = io.StringIO()
        assert store.export_json(buf) == 3  # meta/schema + a + c


def test_corrupt_order_skipped_by_intent_recovery(tmp_path: Path) -> None:
    path = tmp_path / "state"
    with StateStore(path) as store:
        store.record_intent(make_order("good"))
        store.record_intent(make_order("bad"))
    inject_raw(path, "order", "bad", b"garbage")
    with StateStore(path) as store:
        assert [o.client_id for o in store.unanswered_intents()] == ["good"]
        assert store.decode_errors == {"order": 1}


# --------------------------------------------------------------------------- inspection


def test_inspect_reports_counts_schema_and_env(store: StateStore) -> None:
    populate(store)
    report = store.inspect()
    assert report["path"] == str(store.path)
    assert report["schema_version"] == report["code_schema_version"] == SCHEMA_VERSION
    assert report["counts"]["order"] == 2
    assert report["counts"]["trade"] == 1
    assert report["open_orders"] == 1
    env = report["env"]
    assert env["last_txnid"] > 0
    assert 0 < env["used_bytes"] <= env["file_size"] <= env["map_size"]
    assert "corrupt" not in report
