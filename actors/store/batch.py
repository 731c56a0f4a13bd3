"""One LMDB write transaction of the store: generic records and the write-ahead order ledger.

The read-check-write helpers (``record_intent``, ``record_answer``, ``record_fill``,
``append_trade``) live here so that each runs inside one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import lmdb
from pydantic import BaseModel

from actors.domain.messages import (
    AppendTrade,
    DeleteRecord,
    PutRecord,
    RecordAnswer,
    RecordFill,
    RecordIntent,
    StoreOp,
)
from actors.domain.model import Fill, Order, OrderStatus
from actors.store.records import (
    FILL_IDENTITY,
    IDX_OPEN_ORDER,
    IDX_TRADE_POSITION,
    INTENT_FIELDS,
    SCHEMA_KEY,
    STATUS_RANK,
    FillConflictError,
    M,
    OrderConflictError,
    StoreError,
    UnknownOrderError,
    encode_envelope,
    jsonable,
    load_model,
    record_field,
    seq_key,
)

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from actors.store.lmdb_store import StateStore

# --------------------------------------------------------------------------- batch


class Batch:
    """One LMDB write transaction: everything done through it commits together or not at all.

    Obtained from :meth:`StateStore.batch`; reads through it see its own uncommitted writes.
    Recording a fill and the position it changes in one batch is what keeps them consistent
    across a crash (``record_fill`` is idempotent, so a replay must find both or neither).
    """

    def __init__(self, store: StateStore, txn: lmdb.Transaction[bytes]) -> None:
        self._store = store
        self._txn = txn
        self._done = False

    # ------------------------------------------------------------------ generic
    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        """The record's data, seeing this batch's writes; raises CorruptRecordError."""
        raw = self._txn.get(self._store._key(key), db=self._db(kind))
        return None if raw is None else self._store._decode_or_raise(kind, key, raw)

    def get_model(self, kind: str, key: str, model: type[M]) -> M | None:
        data = self.get(kind, key)
        return None if data is None else load_model(model, data)

    def put(self, kind: str, key: str, data: Mapping[str, Any] | BaseModel) -> None:
        """Insert or replace one record. ``trade`` is append-only and ``meta/schema`` is the store's."""
        self._store._check_kind(kind)
        if kind == "trade":
            raise StoreError("the trade log is append-only: use append_trade()")
        if kind == "meta" and key == SCHEMA_KEY:
            raise StoreError("meta/schema is managed by the store")
        record: Mapping[str, Any] | BaseModel = data
        if kind == "order":  # the helpers read orders and fills back as models: validate now
            order = data if isinstance(data, Order) else Order.model_validate(data)
            if order.client_id != key:
                raise StoreError(f"order key {key!r} differs from its client_id {order.client_id!r}")
            record = order
        elif kind == "fill":
            fill = data if isinstance(data, Fill) else Fill.model_validate(data)
            if fill.fill_id != key:
                raise StoreError(f"fill key {key!r} differs from its fill_id {fill.fill_id!r}")
            record = fill
        self._write(kind, key, record)

    def delete(self, kind: str, key: str) -> bool:
        """Remove one record; True if it existed. The trade log is append-only."""
        self._store._check_kind(kind)
        if kind == "trade":
            raise StoreError("the trade log is append-only")
        if kind == "meta" and key == SCHEMA_KEY:
            raise StoreError("meta/schema is managed by the store")
        return self._remove(kind, key)

    def count(self, kind: str) -> int:
        return self._txn.stat(self._db(kind))["entries"]

    # ------------------------------------------------------------------ write-ahead orders
    def record_intent(self, order: Order) -> bool:
        """Commit an order's intent (status PENDING) before the venue is called.

        Returns False when this client id is already recorded for the same order: the
        intent may already have reached the venue, so the caller must look it up by client
        id instead of sending it again. A different order under the same client id raises.
        """
        if order.status is not OrderStatus.PENDING:
            raise ValueError(f"an intent is PENDING, not {order.status.value}")
        existing = self._load_order(order.client_id)
        if existing is not None:
            mismatched = [f for f in INTENT_FIELDS if getattr(existing, f) != getattr(order, f)]
            if mismatched:
                raise OrderConflictError(
                    f"client id {order.client_id!r} is already recorded for a different order "
                    f"(fields differ: {', '.join(mismatched)})"
                )
            return False
        self._write("order", order.client_id, order)
        return True

    def record_answer(
        self,
        client_id: str,
        status: OrderStatus | str,
        venue_order_id: str | None = None,
        filled_qty: Decimal | None = None,
        *,
        updated_ms: int | None = None,
    ) -> Order:
        """Commit the venue's answer to an intent and return the stored order.

        Answers can arrive late and out of order, so the status only moves forward
        (pending < open < partially filled < terminal) and ``filled_qty`` only grows; a stale
        answer is ignored, never an error. A terminal order is final here: reconciliation
        corrects one with ``put``. A second venue order id for one client id breaks the
        one-venue-order-per-client-id invariant and raises OrderConflictError.
        """
        new_status = OrderStatus(status)
        if new_status is OrderStatus.PENDING:
            raise ValueError("PENDING is an intent, not an answer")
        order = self._load_order(client_id)
        if order is None:
            raise UnknownOrderError(f"no intent recorded for client id {client_id!r}")
        changes: dict[str, Any] = {}
        if venue_order_id is not None and venue_order_id != order.venue_order_id:
            if order.venue_order_id is not None:
                raise OrderConflictError(
                    f"client id {client_id!r} answered with venue order {venue_order_id!r} "
                    f"but is recorded as {order.venue_order_id!r}"
                )
            changes["venue_order_id"] = venue_order_id
        if order.status.is_terminal:
            if new_status is not order.status:
                log.warning(
                    "order %s is %s; ignoring a later %s answer",
                    client_id,
                    order.status.value,
                    new_status.value,
                )
        elif STATUS_RANK[new_status] >= STATUS_RANK[order.status] and new_status is not order.status:
            changes["status"] = new_status
        if filled_qty is not None and filled_qty > order.filled_qty:
            changes["filled_qty"] = filled_qty
        if changes and updated_ms is not None:
            changes["updated_ms"] = updated_ms
        if not changes:
            return order
        updated = Order.model_validate({**order.model_dump(), **changes})
        self._write("order", client_id, updated)
        return updated

    def record_fill(self, fill: Fill) -> bool:
        """Store a fill once: False if this fill id is already stored (a replayed report).

        The same id with a different execution raises FillConflictError instead of dropping
        a real fill: venue gateways must make fill ids globally unique (Binance trade ids are
        only unique per symbol, so prefix them).
        """
        raw = self._txn.get(self._store._key(fill.fill_id), db=self._db("fill"))
        if raw is not None:
            data = self._store._decode_or_raise("fill", fill.fill_id, raw)
            existing = load_model(Fill, data)
            differ = [f for f in FILL_IDENTITY if getattr(existing, f) != getattr(fill, f)]
            if differ:
                raise FillConflictError(
                    f"fill id {fill.fill_id!r} is already stored for another execution "
                    f"(fields differ: {', '.join(differ)})"
                )
            return False
        self._write("fill", fill.fill_id, fill)
        return True

    # ------------------------------------------------------------------ trade log
    def append_trade(self, round_trip: Mapping[str, Any] | BaseModel) -> int:
        """Append a closed round trip to the log and return its sequence number (from 1).

        It needs ``strategy`` (str) and ``ts_ms`` (int, the close time). With a
        ``position_id`` it is idempotent: a position closes once, so a replayed close returns
        the seq already logged instead of counting the trade twice.
        """
        data = jsonable(round_trip)
        if not isinstance(data.get("strategy"), str) or not isinstance(data.get("ts_ms"), int):
            raise ValueError("a round trip needs 'strategy' (str) and 'ts_ms' (int)")
        position_id = data.get("position_id")
        if position_id is not None:
            seen = self._txn.get(self._store._key(str(position_id)), db=self._db(IDX_TRADE_POSITION))
            if seen is not None:
                return int(seen)
        cur = self._txn.cursor(db=self._db("trade"))
        seq = int(cur.key()) + 1 if cur.last() else 1
        self._write("trade", seq_key(seq), data)
        return seq

    # ------------------------------------------------------------------ internals
    def _db(self, kind: str) -> Any:
        self._check_open()
        return self._store._db_or_raise(kind)

    def _check_open(self) -> None:
        if self._done:
            raise StoreError("this batch is finished; open a new one")

    def _load_order(self, client_id: str) -> Order | None:
        return self.get_model("order", client_id, Order)

    def _write(self, kind: str, key: str, data: Mapping[str, Any] | BaseModel, v: int | None = None) -> None:
        """Encode, refuse secrets, write, and keep the indexes in step, in this transaction."""
        store = self._store
        text = encode_envelope(kind, data, store.schema_version if v is None else v)
        store._check_secrets(kind, key, text)
        bkey = store._key(key)
        self._txn.put(bkey, text.encode("utf-8"), db=self._db(kind))
        if kind == "order":
            status = record_field(data, "status")
            idx = self._db(IDX_OPEN_ORDER)
            try:
                terminal = OrderStatus(status).is_terminal
            except ValueError:
                terminal = False  # unknown status (older schema): keep it visible as open
            if terminal:
                self._txn.delete(bkey, db=idx)
            else:
                self._txn.put(bkey, str(status).encode(), db=idx)
        elif kind == "trade":
            position_id = record_field(data, "position_id")
            if position_id is not None:
                self._txn.put(
                    store._key(str(position_id)),
                    key.encode(),
                    overwrite=False,
                    db=self._db(IDX_TRADE_POSITION),
                )

    def _remove(self, kind: str, key: str) -> bool:
        bkey = self._store._key(key)
        existed = self._txn.delete(bkey, db=self._db(kind))
        if kind == "order":
            self._txn.delete(bkey, db=self._db(IDX_OPEN_ORDER))
        return existed


def apply_op(tx: Batch, op: StoreOp) -> Any:
    """Carry out one typed store operation inside ``tx``; returns what its helper returns."""
    match op:
        case PutRecord(kind, key, data):
            tx.put(kind, key, data)
            return None
        case DeleteRecord(kind, key):
            return tx.delete(kind, key)
        case RecordIntent(order):
            return tx.record_intent(order)
        case RecordAnswer(order, ts_ms):
            return _record_answer(tx, order, ts_ms)
        case RecordFill(fill):
            return tx.record_fill(fill)
        case AppendTrade(record):
            return tx.append_trade(record)
        case _:
            raise TypeError(f"not a store operation: {op!r}")


def _record_answer(tx: Batch, order: Order, ts_ms: int) -> dict[str, Any]:
    """A venue's answer to an order; one we never intended (placed by hand, planted) is
    recorded as the venue reports it, so the orphan hunt and the ledgers can see it."""
    try:
        answered: Order = tx.record_answer(
            order.client_id, order.status, order.venue_order_id, order.filled_qty, updated_ms=ts_ms
        )
    except UnknownOrderError:
        log.warning("venue reports order %s that has no recorded intent (foreign order)", order.client_id)
        tx.put("order", order.client_id, order)
        answered = order
    return answered.model_dump(mode="json")
