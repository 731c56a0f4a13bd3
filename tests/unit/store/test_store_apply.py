"""Typed store operations applied in one transaction: what the Store actor's batch runs."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from actors.domain.messages import AppendTrade, PutRecord, RecordAnswer, RecordIntent
from actors.domain.model import Order, OrderStatus, Side
from actors.store.lmdb_store import StateStore


def test_batch_overflowing_a_full_map_is_written_not_dropped(tmp_path: Path) -> None:
    """Issue 10: the Store actor's batch did not retry after the map grew, so a durable write
    (a position's checkpoint with its order intent) failed and was dropped."""
    with StateStore(tmp_path / "state", map_size=1 << 16) as store:
        blob = "z" * 20_000
        results = store.apply([PutRecord("feed", f"f{i}", {"blob": blob}) for i in range(20)])
        assert results == [None] * 20
        assert store.count("feed") == 20


def test_apply_returns_each_ops_result_in_order(tmp_path: Path) -> None:
    order = Order(
        client_id="rt-1", market="binance:BTC/USDT", side=Side.BUY, price=Decimal(100), qty=Decimal(1)
    )
    with StateStore(tmp_path / "state") as store:
        first = store.apply([RecordIntent(order), PutRecord("position", "p1", {"open": True})])
        again = store.apply([RecordIntent(order)])
        answered = store.apply(
            [RecordAnswer(order.model_copy(update={"status": OrderStatus.OPEN, "venue_order_id": "7"}), 5)]
        )
        seq = store.apply([AppendTrade({"strategy": "s", "ts_ms": 9})])
    assert first == [True, None]
    assert again == [False]  # already recorded: the caller must look it up, never send it twice
    assert answered[0]["status"] == "open"
    assert seq == [1]
