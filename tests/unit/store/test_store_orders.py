"""State store write-ahead orders: intents, answers, fills, queries, and the append-only trade log."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from actors.domain.model import ExitReason, Order, OrderStatus, PositionClosed
from actors.store.lmdb_store import (
    FillConflictError,
    OrderConflictError,
    StateStore,
    StoreError,
    UnknownOrderError,
)
from tests.unit.store.store_helpers import make_fill, make_order


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
