"""The LMDB state store: real environments in tmp_path, real processes for crash and read-only cases."""

from __future__ import annotations

import io
import json
import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import lmdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from actors.domain.model import (
    ExitReason,
    ExitStatus,
    Fill,
    Liquidity,
    Order,
    OrderStatus,
    Position,
    PositionClosed,
    Side,
)
from actors.store.lmdb_store import (
    KINDS,
    MIGRATIONS,
    SCHEMA_VERSION,
    CorruptRecordError,
    FillConflictError,
    Migration,
    OrderConflictError,
    ReadOnlyStoreError,
    SchemaError,
    SecretLeakError,
    StateStore,
    StoreError,
    StoreFullError,
    StoreNotFoundError,
    UnknownOrderError,
)
from tests.paths import REPO_ROOT

REPO = REPO_ROOT


# --------------------------------------------------------------------------- helpers


def make_order(client_id: str = "c-1", **kw: Any) -> Order:
    fields: dict[str, Any] = {
        "client_id": client_id,
        "market": "binance:BTC/USDT",
        "side": Side.BUY,
        "price": Decimal("65000.10"),
        "qty": Decimal("0.00100"),
        "strategy": "momentum_breakout",
        "position_id": "pos-1",
        "created_ms": 1_700_000_000_000,
    }
    fields.update(kw)
    return Order(**fields)


def make_fill(fill_id: str = "binance:BTC/USDT:1", **kw: Any) -> Fill:
    fields: dict[str, Any] = {
        "fill_id": fill_id,
        "client_id": "c-1",
        "market": "binance:BTC/USDT",
        "side": Side.BUY,
        "price": Decimal("65000.10"),
        "qty": Decimal("0.00050"),
        "fee": Decimal("0.0000005"),
        "liquidity": Liquidity.MAKER,
        "ts_ms": 1_700_000_000_500,
    }
    fields.update(kw)
    return Fill(**fields)


def make_position(position_id: str = "pos-1") -> Position:
    return Position(
        position_id=position_id,
        strategy="polymarket_lag",
        market="polymarket:123",
        entry_price=Decimal("0.5100"),
        entry_qty=Decimal("19.60"),
        entry_ms=1_700_000_000_000,
        stop_price=Decimal("0.459"),
        target_one_price=Decimal("0.6120"),
        target_two_price=Decimal("0.70"),
        status=ExitStatus.HALF_CLOSED,
        mark_price=Decimal("0.55555555555555555555555555"),
        sold_qty=Decimal("9.80"),
        sale_proceeds=Decimal("5.9976"),
        fees=Decimal("0.01"),
        target_one_filled_ms=1_700_000_060_000,
    )


def run_py(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run Python in a fresh process (never fork a process holding an open environment)."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )


def inject_raw(path: Path, db: str, key: str, value: bytes) -> None:
    """Write bytes under the store's back: simulates a corrupt value."""
    env = lmdb.open(str(path), max_dbs=32)
    try:
        with env.begin(write=True) as txn:
            txn.put(key.encode(), value, db=env.open_db(db.encode(), txn=txn))
    finally:
        env.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore(tmp_path / "state") as s:
        yield s


@pytest.fixture
def no_secrets() -> Iterator[None]:
    StateStore.clear_secret_values()
    yield
    StateStore.clear_secret_values()


# --------------------------------------------------------------------------- codec / models


def test_order_fill_position_roundtrip_decimals_exact(store: StateStore) -> None:
    order, fill, position = make_order(), make_fill(), make_position()
    store.put("order", order.client_id, order)
    store.put("fill", fill.fill_id, fill)
    store.put("position", position.position_id, position)

    assert store.get_model("order", order.client_id, Order) == order
    assert store.get_model("fill", fill.fill_id, Fill) == fill
    back = store.get_model("position", position.position_id, Position)
    assert back == position
    assert back is not None
    # exponent kept, not just the value: "0.5100" stays "0.5100"
    assert str(back.entry_price) == "0.5100"
    assert str(back.mark_price) == "0.55555555555555555555555555"
    raw = store.get("order", order.client_id)
    assert raw is not None
    assert raw["price"] == "65000.10"
    assert raw["qty"] == "0.00100"


def test_plain_dict_decimals_stored_as_exact_strings(store: StateStore) -> None:
    store.put(
        "portfolio", "main", {"cash": Decimal("1000.000"), "nested": {"x": [Decimal("1E-8")]}, "f": 0.1}
    )
    assert store.get("portfolio", "main") == {"cash": "1000.000", "nested": {"x": ["1E-8"]}, "f": 0.1}


def test_unstorable_value_raises_type_error(store: StateStore) -> None:
    with pytest.raises(TypeError):
        store.put("strategy", "s", {"bad": {1, 2}})
    assert store.count("strategy") == 0


def test_fill_decimals_roundtrip_property_exact(tmp_path: Path) -> None:
    decimals = st.decimals(
        min_value=Decimal("1E-12"), max_value=Decimal("1E12"), allow_nan=False, places=None
    )
    with StateStore(tmp_path / "state") as store:

        @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(price=decimals, qty=decimals, fee=st.decimals(min_value=0, max_value=100, allow_nan=False))
        def check(price: Decimal, qty: Decimal, fee: Decimal) -> None:
            fill = make_fill("f", price=price, qty=qty, fee=fee)
            store.put("fill", "f", fill)
            back = store.get_model("fill", "f", Fill)
            assert back is not None
            assert (str(back.price), str(back.qty), str(back.fee)) == (str(price), str(qty), str(fee))

        check()


# --------------------------------------------------------------------------- generic API


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


# --------------------------------------------------------------------------- write-ahead orders


def test_record_intent_then_answer_updates_order_and_index(store: StateStore) -> None:
    order = make_order()
    assert store.record_intent(order) is True
    assert store.unanswered_intents() == [order]
    answered = store.record_answer("c-1", OrderStatus.OPEN, "v-1", updated_ms=5)
    assert (answered.status, answered.venue_order_id, answered.updated_ms) == (OrderStatus.OPEN, "v-1", 5)
    assert store.unanswered_intents() == []
    assert store.open_orders() == [answered]
    done = store.record_answer("c-1", "filled", "v-1", Decimal("0.00100"))
    assert done.status is OrderStatus.FILLED
    assert store.open_orders() == []
    assert store.get_model("order", "c-1", Order) == done


def test_record_intent_same_order_twice_returns_false(store: StateStore) -> None:
    assert store.record_intent(make_order()) is True
    # a replay (same deterministic id, later clock) must not be sent again
    assert store.record_intent(make_order(created_ms=1_800_000_000_000)) is False
    assert store.count("order") == 1


def test_record_intent_conflicting_order_raises(store: StateStore) -> None:
    store.record_intent(make_order())
    with pytest.raises(OrderConflictError, match="qty"):
        store.record_intent(make_order(qty=Decimal("2")))
    with pytest.raises(ValueError, match="PENDING"):
        store.record_intent(make_order("c-2", status=OrderStatus.OPEN))


def test_record_answer_stale_answers_ignored(store: StateStore) -> None:
    store.record_intent(make_order())
    store.record_answer("c-1", "partially_filled", "v-1", Decimal("0.0005"))
    late = store.record_answer("c-1", "open", "v-1", Decimal("0.0001"))
    assert late.status is OrderStatus.PARTIALLY_FILLED
    assert late.filled_qty == Decimal("0.0005")
    store.record_answer("c-1", "cancelled")
    after_terminal = store.record_answer("c-1", "open")
    assert after_terminal.status is OrderStatus.CANCELLED


def test_record_answer_second_venue_id_or_unknown_raises(store: StateStore) -> None:
    store.record_intent(make_order())
    store.record_answer("c-1", "open", "v-1")
    with pytest.raises(OrderConflictError, match="v-2"):
        store.record_answer("c-1", "open", "v-2")
    with pytest.raises(UnknownOrderError):
        store.record_answer("nobody", "open", "v-3")
    with pytest.raises(ValueError, match="PENDING"):
        store.record_answer("c-1", "pending")


def test_unanswered_intents_after_reopen_still_present(tmp_path: Path) -> None:
    path = tmp_path / "state"
    first = StateStore(path)
    first.record_intent(make_order("c-1"))
    first.record_intent(make_order("c-2", created_ms=1))
    first.record_answer("c-2", "rejected")
    first.close()  # the actor dies here, before the venue answered c-1

    with StateStore(path) as reopened:
        assert [o.client_id for o in reopened.unanswered_intents()] == ["c-1"]
        assert reopened.unanswered_intents()[0] == make_order("c-1")


def test_record_fill_idempotent_by_fill_id(store: StateStore) -> None:
    fill = make_fill()
    assert store.record_fill(fill) is True
    assert store.record_fill(fill) is False
    assert store.record_fill(make_fill(fee=Decimal("0.1"))) is False  # same execution, re-reported
    assert store.count("fill") == 1
    with pytest.raises(FillConflictError, match="qty"):
        store.record_fill(make_fill(qty=Decimal("1")))


def test_order_and_fill_queries_filter(store: StateStore) -> None:
    store.record_intent(make_order("a", created_ms=3))
    store.record_intent(make_order("b", created_ms=2, strategy="other"))
    store.record_intent(make_order("c", created_ms=1))
    store.record_answer("c", "filled", "v-c", Decimal("0.001"))
    assert [o.client_id for o in store.orders()] == ["c", "b", "a"]
    assert [o.client_id for o in store.orders(status="pending")] == ["b", "a"]
    assert [o.client_id for o in store.orders(status=[OrderStatus.FILLED, OrderStatus.PENDING])] == [
        "c",
        "b",
        "a",
    ]
    assert [o.client_id for o in store.orders(strategy="other")] == ["b"]
    assert [o.client_id for o in store.orders(status="filled", strategy="momentum_breakout")] == ["c"]

    store.record_fill(make_fill("f2", ts_ms=20))
    store.record_fill(make_fill("f1", ts_ms=10, client_id="c"))
    assert [f.fill_id for f in store.fills()] == ["f1", "f2"]
    assert [f.fill_id for f in store.fills(since_ms=15)] == ["f2"]
    assert [f.fill_id for f in store.fills(client_id="c")] == ["f1"]


# --------------------------------------------------------------------------- trade log


def test_append_trade_sequences_and_dedupes_by_position(store: StateStore) -> None:
    closed = PositionClosed(
        position_id="pos-1",
        strategy="polymarket_lag",
        market="polymarket:123",
        realized_pnl=Decimal("0.98"),
        fees=Decimal("0.01"),
        exit_reason=ExitReason.TARGET_TWO,
        ts_ms=100,
    )
    assert store.append_trade(closed) == 1
    assert store.append_trade(closed) == 1  # a replayed close is not a second trade
    assert store.append_trade({"strategy": "momentum_breakout", "ts_ms": 200, "pnl": Decimal("-1.5")}) == 2
    assert store.append_trade({"strategy": "momentum_breakout", "ts_ms": 300}) == 3
    assert [seq for seq, _ in store.trades()] == [1, 2, 3]
    assert [seq for seq, _ in store.trades(strategy="momentum_breakout")] == [2, 3]
    assert [seq for seq, _ in store.trades(since_ms=200)] == [2, 3]
    assert store.trades()[0][1]["realized_pnl"] == "0.98"
    with pytest.raises(ValueError, match="ts_ms"):
        store.append_trade({"strategy": "s"})
    with pytest.raises(StoreError, match="append-only"):
        store.delete("trade", "00000000000000000001")


# --------------------------------------------------------------------------- crashes and processes

_KILLED_WRITER = """
import os, signal, sys
from decimal import Decimal
from actors.domain.model import Order, Side
from actors.store.lmdb_store import StateStore

path, n, kill_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = StateStore(path)
for i in range(n):
    order = Order(client_id=f"c-{i:04d}", market="m", side=Side.BUY, price=Decimal("0.51"), qty=Decimal("10"))
    if i == kill_at:
        with store.batch() as tx:  # die holding the write lock, mid-transaction
            tx.put("strategy", f"s-{i:04d}", {"i": i})
            tx.record_intent(order)
            os.kill(os.getpid(), signal.SIGKILL)
    with store.batch() as tx:
        tx.put("strategy", f"s-{i:04d}", {"i": i, "third": str(Decimal(i) / 3)})
        tx.record_intent(order)
"""


def test_sigkilled_writer_keeps_every_committed_record(tmp_path: Path) -> None:
    path = tmp_path / "state"
    proc = run_py(_KILLED_WRITER, str(path), "60", "37")
    assert proc.returncode == -signal.SIGKILL, proc.stderr

    with StateStore(path) as store:  # the dead writer held LMDB's write lock: it must be recovered
        records = list(store.items("strategy"))
        assert [d["i"] for _, d in records] == list(range(37))
        assert all(Decimal(d["third"]) == Decimal(d["i"]) / 3 for _, d in records)
        assert [o.client_id for o in store.unanswered_intents()] == [f"c-{i:04d}" for i in range(37)]
        assert store.decode_errors == {}
        assert store.inspect(verify=True)["corrupt"] == []
        store.put("strategy", "after-crash", {"ok": True})
        assert store.get("strategy", "after-crash") == {"ok": True}


_READER = """
import json, sys
from actors.store.lmdb_store import StateStore, ReadOnlyStoreError

store = StateStore(sys.argv[1], map_size=1 << 20, readonly=True)
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "read":
        out = {"keys": [k for k, _ in store.items("strategy")], "schema": store.inspect()["schema_version"]}
    elif cmd == "write":
        try:
            store.put("strategy", "from-reader", {})
            out = {"write": "allowed"}
        except ReadOnlyStoreError:
            out = {"write": "refused"}
    print(json.dumps(out), flush=True)
"""


class Reader:
    """A read-only store in another process, driven line by line over pipes (no sleeps)."""

    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _READER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )

    def ask(self, cmd: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            assert self.proc.stderr is not None
            raise AssertionError(f"reader died: {self.proc.stderr.read()}")
        result: dict[str, Any] = json.loads(line)
        return result

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def test_readonly_reader_in_other_process_sees_commits_while_writer_open(tmp_path: Path) -> None:
    path = tmp_path / "state"
    with StateStore(path, map_size=1 << 20) as writer:
        writer.put("strategy", "a", {"n": 1})
        reader = Reader(path)
        try:
            assert reader.ask("read") == {"keys": ["a"], "schema": SCHEMA_VERSION}
            with writer.batch() as tx:
                tx.put("strategy", "b", {"n": 2})
                # the writer holds LMDB's write lock; the reader neither blocks nor sees "b"
                assert reader.ask("read")["keys"] == ["a"]
            assert reader.ask("read")["keys"] == ["a", "b"]
            assert reader.ask("write") == {"write": "refused"}

            # grow the file well past the reader's 1 MiB map: the reader adopts the new size
            blob = "x" * 100_000
            for i in range(40):
                writer.put("strategy", f"big-{i:02d}", {"blob": blob})
            assert writer.inspect()["env"]["map_size"] > 1 << 22
            assert len(reader.ask("read")["keys"]) == 42
        finally:
            reader.close()
        assert reader.proc.returncode == 0


# --------------------------------------------------------------------------- map growth


def test_small_map_grows_on_demand(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state", map_size=1 << 16) as store:
        blob = "y" * 20_000
        for i in range(30):
            store.put("feed", f"f{i}", {"blob": blob})
        assert store.count("feed") == 30
        assert store.inspect()["env"]["map_size"] >= 30 * 20_000


def test_batch_overflowing_map_raises_store_full_then_retry_succeeds(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state", map_size=1 << 16) as store:
        blob = "z" * 20_000

        def write_all() -> None:
            with store.batch() as tx:
                for i in range(20):
                    tx.put("feed", f"f{i}", {"blob": blob})

        with pytest.raises(StoreFullError):
            write_all()
        assert store.count("feed") == 0
        for _ in range(4):
            try:
                write_all()
                break
            except StoreFullError:
                continue
        assert store.count("feed") == 20


# --------------------------------------------------------------------------- schema


class V0Store(StateStore):
    schema_version: ClassVar[int] = 0


def _double(kind: str, key: str, data: dict[str, Any]) -> dict[str, Any] | None:
    if kind != "strategy":
        return data
    if key == "drop":
        return None
    return {**data, "b": data["a"] * 2}


def _rename(kind: str, key: str, data: dict[str, Any]) -> dict[str, Any] | None:
    if kind != "strategy":
        return data
    out = dict(data)
    out["c"] = out.pop("b")
    return out


class V3Store(StateStore):
    schema_version: ClassVar[int] = 3
    migrations: ClassVar[dict[int, Migration]] = {**MIGRATIONS, 1: _double, 2: _rename}


def _raw_versions(store: StateStore) -> set[int]:
    buf = io.StringIO()
    store.export_json(buf)
    return {json.loads(line)["v"] for line in buf.getvalue().splitlines()}


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
        assert _raw_versions(old) == {0}
    with StateStore(path) as store:
        assert store.inspect()["schema_version"] == 1
        assert store.get("strategy", "s") == {"a": 1}
        assert [o.client_id for o in store.unanswered_intents()] == ["c-1"]
        assert _raw_versions(store) == {1}
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
        assert _raw_versions(store) == {3}


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
        migrations: ClassVar[dict[int, Migration]] = {1: _double}

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
        V3Store(path)  # _double succeeds on "a", then fails on "b"
    with StateStore(path) as store:
        assert store.get("strategy", "a") == {"a": 1}
        assert store.inspect()["schema_version"] == 1


def test_readonly_open_of_older_schema_refuses(tmp_path: Path) -> None:
    path = tmp_path / "state"
    V0Store(path).close()
    with pytest.raises(SchemaError, match="older"):
        StateStore(path, readonly=True)


# --------------------------------------------------------------------------- export / import


def _populate(store: StateStore) -> None:
    store.put("position", "pos-1", make_position())
    store.record_intent(make_order("c-1"))
    store.record_intent(make_order("c-2"))
    store.record_answer("c-2", "filled", "v-2", Decimal("0.00100"))
    store.record_fill(make_fill())
    store.put("strategy", "momentum_breakout", {"ema": [1.5, 2.25], "nan": float("nan"), "ü": "ß"})
    store.put("feed", "binance:BTC/USDT", {"last_ts_ms": 1})
    store.put("portfolio", "main", {"cash": Decimal("1000.00")})
    store.put("venue", "paper", {"balances": {"USDT": "1000"}})
    store.put("meta", "halted", {"value": False})
    store.append_trade({"strategy": "s", "ts_ms": 1, "position_id": "pos-0"})


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
        _populate(src)
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
        _populate(src)
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
        assert _raw_versions(store) == {SCHEMA_VERSION}

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


# --------------------------------------------------------------------------- bad input


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


# --------------------------------------------------------------------------- secrets


@pytest.mark.usefixtures("no_secrets")
def test_registered_secret_refused_everywhere(store: StateStore) -> None:
    secret = "sk-live-0123456789abcdef"
    quoted = 'pa"ss\\word-xyz'
    StateStore.register_secret_values([SecretStr(secret), quoted, None, "abc"])

    with pytest.raises(SecretLeakError) as err:
        store.put("venue", "binance", {"note": f"key={secret}"})
    assert secret not in str(err.value)
    with pytest.raises(SecretLeakError):
        store.put("venue", "polymarket", {"nested": [{"p": quoted}]})  # stored JSON-escaped
    with pytest.raises(SecretLeakError):
        store.put("feed", f"x{secret}", {})
    with pytest.raises(SecretLeakError):
        store.record_intent(make_order(strategy=secret))

    def leaky_batch() -> None:
        with store.batch() as tx:
            tx.put("feed", "innocent", {})
            tx.put("feed", "leaky", {"k": secret})

    with pytest.raises(SecretLeakError):
        leaky_batch()
    assert store.get("feed", "innocent") is None

    store.put("feed", "short", {"v": "abc"})  # too short to be checked: ordinary data
    leaky = json.dumps({"kind": "meta", "key": "schema", "v": 1, "data": {"version": 1}}) + "\n"
    leaky += json.dumps({"kind": "feed", "key": "f", "v": 1, "data": {"s": secret}}) + "\n"
    with StateStore(store.path.parent / "other") as other, pytest.raises(SecretLeakError):
        other.import_json(io.StringIO(leaky))


# --------------------------------------------------------------------------- inspection


def test_inspect_reports_counts_schema_and_env(store: StateStore) -> None:
    _populate(store)
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
