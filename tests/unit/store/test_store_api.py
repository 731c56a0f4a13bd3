"""State store generic API: put/get/delete/items, opening modes, threads, and batches (all or nothing)."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest

from actors.domain.model import Position
from actors.store.lmdb_store import ReadOnlyStoreError, StateStore, StoreError, StoreNotFoundError
from tests.unit.store.store_helpers import make_fill, make_order, make_position


def test_put_get_delete_items_count_behave(store: StateStore) -> None:
    for key in ("b", "a", "ab", "c"):
        store.put("strategy", key, {"k": key})
    assert [k for k, _ in store.items("strategy")] == ["a", "ab", "b", "c"]
    assert [k for k, _ in store.items("strategy", prefix="a")] == ["a", "ab"]
    assert store.count("strategy") == 4
    assert store.delete("strategy", "a") is True
    assert store.delete("strategy", "a") is False
    assert store.get("strategy", "a") is None
    assert store.count("strategy") == 3


def test_items_across_read_chunks_returns_everything_in_order(store: StateStore) -> None:
    with store.batch() as tx:
        for i in range(700):
            tx.put("feed", f"f{i:04d}", {"i": i})
    got = list(store.items("feed"))
    assert [d["i"] for _, d in got] == list(range(700))
    assert [k for k, _ in store.items("feed", prefix="f06")] == [f"f06{i:02d}" for i in range(100)]


def test_bad_kind_or_key_raises_store_error(store: StateStore) -> None:
    with pytest.raises(StoreError, match="unknown kind"):
        store.put("nope", "k", {})
    with pytest.raises(StoreError, match="non-empty"):
        store.put("strategy", "", {})
    with pytest.raises(StoreError, match="too long"):
        store.put("strategy", "k" * 600, {})
    with pytest.raises(StoreError, match="client_id"):
        store.put("order", "other-id", make_order("c-1"))
    with pytest.raises(StoreError, match="append-only"):
        store.put("trade", "1", {"strategy": "s", "ts_ms": 1})
    with pytest.raises(StoreError, match="managed by the store"):
        store.put("meta", "schema", {"version": 9})


def test_missing_store_without_create_raises_not_found(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError):
        StateStore(tmp_path / "absent", create=False)
    with pytest.raises(StoreNotFoundError):
        StateStore(tmp_path / "absent", readonly=True)


def test_second_open_in_same_process_is_refused(store: StateStore) -> None:
    with pytest.raises(StoreError, match="already open"):
        StateStore(store.path)


def test_readonly_store_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "state"
    with StateStore(path) as writer:
        writer.put("feed", "f", {"n": 1})
    with StateStore(path, readonly=True) as reader:
        assert reader.get("feed", "f") == {"n": 1}
        assert reader.inspect()["readonly"] is True
        with pytest.raises(ReadOnlyStoreError):
            reader.put("feed", "g", {})
        with pytest.raises(ReadOnlyStoreError):
            reader.record_intent(make_order())
        with pytest.raises(ReadOnlyStoreError):
            reader.import_json(io.StringIO(""))


def test_concurrent_threads_writes_all_committed(store: StateStore) -> None:
    def writer(t: int) -> None:
        for i in range(10):
            store.put("feed", f"{t}-{i}", {"i": i})

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert store.count("feed") == 40


# --------------------------------------------------------------------------- batches


def test_batch_exception_leaves_nothing_written(store: StateStore) -> None:
    store.put("strategy", "kept", {"x": 1})

    def doomed() -> None:
        with store.batch() as tx:
            tx.put("position", "p", make_position("p"))
            tx.record_intent(make_order("c-9"))
            tx.append_trade({"strategy": "s", "ts_ms": 1})
            tx.delete("strategy", "kept")
            assert tx.get("position", "p") is not None  # the batch sees its own writes
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        doomed()
    assert store.get("position", "p") is None
    assert store.get("strategy", "kept") == {"x": 1}
    assert store.unanswered_intents() == []
    assert store.trades() == []
    assert store.count("order") == 0


def test_batch_commits_all_writes_together(store: StateStore) -> None:
    with store.batch() as tx:
        assert tx.record_fill(make_fill()) is True
        tx.put("position", "pos-1", make_position())
        seq = tx.append_trade({"strategy": "s", "ts_ms": 5, "position_id": "pos-1"})
    assert seq == 1
    assert store.count("fill") == 1
    assert store.get_model("position", "pos-1", Position) == make_position()


def test_nested_batch_or_store_write_inside_batch_raises(store: StateStore) -> None:
    with store.batch() as tx:
        tx.put("feed", "a", {})
        with pytest.raises(StoreError, match="do not nest"), store.batch():
            pass
        with pytest.raises(StoreError, match="do not nest"):
            store.put("feed", "b", {})
    assert [k for k, _ in store.items("feed")] == ["a"]


def test_finished_batch_refuses_use(store: StateStore) -> None:
    with store.batch() as tx:
        tx.put("feed", "a", {})
    with pytest.raises(StoreError, match="finished"):
        tx.put("feed", "b", {})
