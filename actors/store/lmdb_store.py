"""The durable state store: one LMDB environment, one writer, every durable change.

Why LMDB: a commit is atomic and, with ``sync=True, metasync=True``, durable once
``commit()`` returns; readers never block the writer nor each other (MVCC), and a writer
killed mid-transaction leaves the last committed state intact (nothing to replay).

On-disk layout: see :mod:`actors.store.records` (one sub-database per kind, JSON envelopes).

Concurrency: LMDB admits one write transaction at a time, across processes. By design only
the Store actor writes (``StateStore(path)``); any other process (``raytrader status``, a
backup job) opens the store with ``StateStore(path, readonly=True)``. Every read-check-write
helper (``record_intent``, ``record_answer``, ``record_fill``, ``append_trade``) runs inside
one write transaction, so even a stray second writer (a zombie actor after a restart) could
not break them; it would only contend for the lock. A read-only store still uses LMDB's lock
file (``lock=True``): its read transactions register in the reader table, so the writer
never recycles pages a reader is looking at. ``lock=False`` would be unsafe while a writer
runs (py-lmdb: the caller "must ensure that no readers are using old transactions while a
writer is active"), so it is never used; a reader therefore needs write permission on
``lock.mdb`` (the directory is created 0700: run readers as the same user). A reader adopts
the map when the writer grows it. One process must not open the same environment twice
(py-lmdb refuses; reported as :class:`StoreError`); never carry an open store across
``fork()``: child processes open their own.

Secrets never belong in the store. :meth:`StateStore.register_secret_values` registers
secret strings (API keys, private keys, passphrases) process-wide and every write whose
key or JSON contains one, verbatim or JSON-escaped, is refused with :class:`SecretLeakError`.
It is a last line of defence against a config or exception object being checkpointed by
mistake, not a redaction layer: a secret that was transformed (base64, truncated) is not
caught. Register them in the store's own process (the Store actor), since that is where the
check runs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, ClassVar

import lmdb
from pydantic import BaseModel, SecretStr, ValidationError

from actors.domain.messages import (
    StoreOp,
)
from actors.domain.model import Fill, Order, OrderStatus
from actors.store import schema, secret_guard
from actors.store.batch import Batch, apply_op
from actors.store.export import parse_export, write_atomically
from actors.store.lmdb_map import LmdbMap
from actors.store.records import (
    DATA_KINDS,
    DEFAULT_MAP_SIZE,
    IDX_OPEN_ORDER,
    INDEXES,
    KINDS,
    MAX_DBS,
    MIGRATIONS,
    READ_CHUNK,
    SCHEMA_KEY,
    SCHEMA_VERSION,
    BadRecordError,
    CorruptRecordError,
    FillConflictError,
    M,
    Migration,
    OrderConflictError,
    ReadOnlyStoreError,
    SchemaError,
    SecretLeakError,
    StoreError,
    StoreFullError,
    StoreNotFoundError,
    T,
    UnknownOrderError,
    dump_model,
    load_model,
    register_migration,
)

__all__ = [  # the store's public surface: the record layout's names are re-exported here
    "DATA_KINDS",
    "DEFAULT_MAP_SIZE",
    "KINDS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Batch",
    "CorruptRecordError",
    "FillConflictError",
    "Migration",
    "OrderConflictError",
    "ReadOnlyStoreError",
    "SchemaError",
    "SecretLeakError",
    "StateStore",
    "StoreError",
    "StoreFullError",
    "StoreNotFoundError",
    "UnknownOrderError",
    "dump_model",
    "load_model",
    "register_migration",
]

log = logging.getLogger(__name__)

APPLY_ATTEMPTS = 8
"""A batch larger than 2**7 times the map cannot be written: it is an error, not weather."""

# --------------------------------------------------------------------------- store


class StateStore:
    """The durable store over one LMDB environment; see the module docstring for the layout.

    Methods that write open and commit one transaction each (durable when they return);
    :meth:`batch` groups several writes into one. Reads are lock-free snapshots.
    Thread-safe; LMDB serialises writers.
    """

    schema_version: ClassVar[int] = SCHEMA_VERSION
    migrations: ClassVar[Mapping[int, Migration]] = MIGRATIONS

    def __init__(
        self,
        path: Path | str,
        map_size: int = DEFAULT_MAP_SIZE,
        *,
        create: bool = True,
        readonly: bool = False,
    ) -> None:
        self._path = Path(path)
        self._readonly = readonly
        self._local = threading.local()
        self._dbs: dict[str, Any] = {}
        self._decode_errors: dict[str, int] = {}
        self._closed = False
        self._env = self._open_env(map_size, create=create)
        self._map = LmdbMap(self._env, self._path)
        try:
            if readonly:
                self._open_dbs_readonly()
                schema.check_readonly(self)
            else:
                self._env.reader_check()  # clear reader slots of dead processes
                schema.open_writer(self)
        except BaseException:
            self._env.close()
            self._closed = True
            raise

    # ------------------------------------------------------------------ lifecycle
    @property
    def path(self) -> Path:
        return self._path

    @property
    def readonly(self) -> bool:
        return self._readonly

    def close(self) -> None:
        """Close the environment; committed data is already on disk."""
        if not self._closed:
            self._closed = True
            self._env.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"StateStore({str(self._path)!r}, readonly={self._readonly})"

    # ------------------------------------------------------------------ secrets
    @classmethod
    def register_secret_values(cls, values: Iterable[str | SecretStr | None]) -> None:
        """Refuse, from now on and process-wide, any record containing one of these strings."""
        secret_guard.register(values)

    @classmethod
    def clear_secret_values(cls) -> None:
        """Forget every registered secret (tests; a process that reloads its config)."""
        secret_guard.clear()

    def _check_secrets(self, kind: str, key: str, text: str) -> None:
        secret_guard.check(f"{self._path}: refusing to store {kind}/{key}", key, text)

    # ------------------------------------------------------------------ generic API
    def put(self, kind: str, key: str, data: Mapping[str, Any] | BaseModel) -> None:
        """Insert or replace one record, durably."""
        self._run(lambda tx: tx.put(kind, key, data))

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        """The record's data, or None; raises CorruptRecordError rather than hide a bad value."""
        db = self._db_or_none(kind)
        if db is None:
            return None
        with self._read() as txn:
            raw = txn.get(self._key(key), db=db)
        return None if raw is None else self._decode_or_raise(kind, key, raw)

    def get_model(self, kind: str, key: str, model: type[M]) -> M | None:
        """``get`` validated into ``model`` (Decimals restored exactly)."""
        data = self.get(kind, key)
        return None if data is None else load_model(model, data)

    def delete(self, kind: str, key: str) -> bool:
        """Remove one record, durably; True if it existed."""
        return self._run(lambda tx: tx.delete(kind, key))

    def items(self, kind: str, prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
        """``(key, data)`` in key order; undecodable values are logged, counted and skipped.

        Read in chunks of short transactions, so a slow consumer never pins old pages:
        each chunk is a consistent snapshot, the whole iteration is not (use
        :meth:`export_json` for a snapshot of everything).
        """
        for key, raw in self._raw_items(kind, prefix):
            try:
                _, data = self._decode(kind, raw)
            except BadRecordError as exc:
                self._report_bad(kind, key, str(exc))
                continue
            yield key, data

    def count(self, kind: str) -> int:
        """Number of records of a kind, corrupt ones included (O(1))."""
        db = self._db_or_none(kind)
        if db is None:
            return 0
        with self._read() as txn:
            return txn.stat(db)["entries"]

    @contextlib.contextmanager
    def batch(self) -> Iterator[Batch]:
        """One atomic, durable transaction: ``with store.batch() as tx: tx.put(...)``.

        An exception inside the block aborts it and nothing is written. Batches do not
        nest, and the store's own write methods must not be called inside one (same
        thread): use the ``tx`` methods. If the map fills up, the map is grown and
        StoreFullError raised: run the batch again.
        """
        self._check_writable()
        if getattr(self._local, "in_batch", False):
            raise StoreError(
                "a batch is already open in this thread: write through its tx, batches do not nest"
            )
        txn = self._begin(write=True)
        tx = Batch(self, txn)
        self._local.in_batch = True
        full: lmdb.MapFullError | None = None
        try:
            try:
                yield tx
            except lmdb.MapFullError as exc:
                full = exc
                txn.abort()
            except BaseException:
                txn.abort()
                raise
            else:
                try:
                    if self._map.held_full:  # a filled map (fill_map): this write finds it full
                        raise lmdb.MapFullError("MDB_MAP_FULL: the map was filled (fill_map)")
                    txn.commit()
                except lmdb.MapFullError as exc:
                    full = exc
                    with contextlib.suppress(lmdb.Error):
                        txn.abort()
                except lmdb.Error as exc:
                    raise StoreError(f"{self._path}: commit failed, nothing was written: {exc}") from exc
        finally:
            tx._done = True
            self._local.in_batch = False
            self._release()
        if full is not None:
            self._map.found_full()
            raise StoreFullError(
                f"{self._path}: the map is full; it has been grown, run the batch again"
            ) from full

    def apply(self, ops: Sequence[StoreOp]) -> list[Any]:
        """Several typed operations in one atomic, durable transaction; each op's result.

        Run again while the map had to grow (a failed attempt wrote nothing; each growth
        doubles the map), so a full map never drops a durable write.
        """
        return self._run(lambda tx: [apply_op(tx, op) for op in ops], attempts=APPLY_ATTEMPTS)

    def run_writes(self, writes: Sequence[Callable[[Batch], Any]]) -> list[Any]:
        """Several writes (functions of one batch) in one atomic, durable transaction: a group
        commit (:mod:`actors.store.group_commit`); run again while the map had to grow."""
        return self._run(lambda tx: [write(tx) for write in writes], attempts=APPLY_ATTEMPTS)

    # ------------------------------------------------------------------ write-ahead orders
    def record_intent(self, order: Order) -> bool:
        """See :meth:`Batch.record_intent`: durable when it returns; call the venue after."""
        return self._run(lambda tx: tx.record_intent(order))

    def record_answer(
        self,
        client_id: str,
        status: OrderStatus | str,
        venue_order_id: str | None = None,
        filled_qty: Decimal | None = None,
        *,
        updated_ms: int | None = None,
    ) -> Order:
        """See :meth:`Batch.record_answer`."""
        return self._run(
            lambda tx: tx.record_answer(client_id, status, venue_order_id, filled_qty, updated_ms=updated_ms)
        )

    def record_fill(self, fill: Fill) -> bool:
        """See :meth:`Batch.record_fill`; prefer recording it in a batch with the position it changes."""
        return self._run(lambda tx: tx.record_fill(fill))

    def unanswered_intents(self) -> list[Order]:
        """Intents the venue never answered (PENDING), oldest first.

        On recovery each must be looked up at the venue by client id, then answered or
        rejected here; never re-sent blindly.
        """
        return self._indexed_orders({OrderStatus.PENDING})

    def open_orders(self) -> list[Order]:
        """Every non-terminal order (pending intents included), oldest first, from the index."""
        return self._indexed_orders(None)

    def orders(
        self,
        status: OrderStatus | str | Iterable[OrderStatus | str] | None = None,
        strategy: str | None = None,
    ) -> list[Order]:
        """Orders filtered by status (one or several) and strategy, oldest first."""
        wanted: set[OrderStatus] | None
        if status is None:
            wanted = None
        elif isinstance(status, str):
            wanted = {OrderStatus(status)}
        else:
            wanted = {OrderStatus(s) for s in status}
        if wanted and not any(s.is_terminal for s in wanted):
            found = self._indexed_orders(wanted)
        else:
            found = [
                o
                for o in self._models("order", Order, self.items("order"))
                if wanted is None or o.status in wanted
            ]
        if strategy is not None:
            found = [o for o in found if o.strategy == strategy]
        return sorted(found, key=lambda o: (o.created_ms, o.client_id))

    def fills(self, since_ms: int | None = None, client_id: str | None = None) -> list[Fill]:
        """Fills at or after ``since_ms`` (and of one order), in time order."""
        found = [
            f
            for f in self._models("fill", Fill, self.items("fill"))
            if (since_ms is None or f.ts_ms >= since_ms) and (client_id is None or f.client_id == client_id)
        ]
        return sorted(found, key=lambda f: (f.ts_ms, f.fill_id))

    # ------------------------------------------------------------------ trade log
    def append_trade(self, round_trip: Mapping[str, Any] | BaseModel) -> int:
        """See :meth:`Batch.append_trade`."""
        return self._run(lambda tx: tx.append_trade(round_trip))

    def trades(
        self, strategy: str | None = None, since_ms: int | None = None
    ) -> list[tuple[int, dict[str, Any]]]:
        """``(seq, round trip)`` in log order, filtered by strategy and close time."""
        return [
            (int(key), data)
            for key, data in self.items("trade")
            if (strategy is None or data.get("strategy") == strategy)
            and (since_ms is None or int(data.get("ts_ms", 0)) >= since_ms)
        ]

    # ------------------------------------------------------------------ backup
    def export_json(self, out: Path | str | IO[str]) -> int:
        """Write every record as JSON lines ``{"kind","key","v","data"}``; returns the count.

        One read transaction, so the export is a consistent snapshot. To a path it writes
        a temporary file, fsyncs and renames, so a backup is never half-written.
        Undecodable values are reported and left out.
        """
        if isinstance(out, str | Path):
            return write_atomically(Path(out), self._export_to)
        return self._export_to(out)

    def import_json(self, src: Path | str | IO[str], *, replace: bool = False) -> int:
        """Load an :meth:`export_json` file, atomically; returns the number of records.

        Refuses a store that holds records unless ``replace=True`` (which drops them first,
        in the same transaction). An older file is migrated like an older store; a newer
        one is refused. Registered secrets are refused here too.
        """
        self._check_writable()
        if isinstance(src, str | Path):
            with open(src, encoding="utf-8") as fh:
                records, file_version = parse_export(fh, str(src), self.schema_version, self._path)
        else:
            records, file_version = parse_export(src, "<stream>", self.schema_version, self._path)
        with self.batch() as tx:
            non_empty = [k for k in DATA_KINDS if tx.count(k)]
            if non_empty and not replace:
                raise StoreError(
                    f"{self._path}: refusing to import into a non-empty store (has {', '.join(non_empty)}); "
                    "pass replace=True to overwrite it"
                )
            for name in (*KINDS, *INDEXES):
                tx._txn.drop(self._db_or_raise(name), delete=False)
            for kind, key, v, data in records:
                tx._write(kind, key, data, v)
            schema.write_schema(tx, file_version, imported=True)
            if file_version < self.schema_version:
                schema.migrate(self, tx, file_version)
        return len(records)

    # ------------------------------------------------------------------ inspection
    def inspect(self, *, verify: bool = False) -> dict[str, Any]:
        """Counts per kind, schema versions and environment stats, for ``raytrader status``.

        With ``verify=True`` every value is decoded and the undecodable keys listed.
        """
        info = self._env.info()
        stat = self._env.stat()
        data_file = self._path / "data.mdb"
        meta = self.get("meta", SCHEMA_KEY) or {}
        report: dict[str, Any] = {
            "path": str(self._path),
            "readonly": self._readonly,
            "schema_version": meta.get("version"),
            "code_schema_version": self.schema_version,
            "counts": {kind: self.count(kind) for kind in KINDS},
            "open_orders": self._count_index(IDX_OPEN_ORDER),
            "env": {
                "map_size": info["map_size"],
                "used_bytes": (info["last_pgno"] + 1) * stat["psize"],
                "file_size": data_file.stat().st_size if data_file.exists() else 0,
                "last_txnid": info["last_txnid"],
                "num_readers": info["num_readers"],
                "max_readers": info["max_readers"],
                "page_size": stat["psize"],
                "lmdb_version": ".".join(map(str, self._env.lib_version())),
            },
            "decode_errors": dict(self._decode_errors),
        }
        if verify:
            report["corrupt"] = [f"{kind}/{key}" for kind in KINDS for key, _why in self.unreadable(kind)]
        return report

    def unreadable(self, kind: str) -> list[tuple[str, str]]:
        """``(key, reason)`` of every record of ``kind`` that does not decode: ``items`` skips
        them, so whoever lists records to act on (the positions to restore) asks for these too."""
        bad: list[tuple[str, str]] = []
        for key, raw in self._raw_items(kind, ""):
            try:
                self._decode(kind, raw)
            except BadRecordError as exc:
                bad.append((key, str(exc)))
        return bad

    @property
    def decode_errors(self) -> dict[str, int]:
        """Undecodable values met by this process, per kind (each read counts)."""
        return dict(self._decode_errors)

    # ================================================================== internals
    def _open_env(self, map_size: int, *, create: bool) -> lmdb.Environment:
        exists = (self._path / "data.mdb").exists()
        if not exists and (self._readonly or not create):
            raise StoreNotFoundError(f"{self._path}: no state store here")
        try:
            return lmdb.open(
                str(self._path),
                map_size=map_size,
                subdir=True,
                readonly=self._readonly,
                lock=True,  # lock=False is unsafe with a concurrent writer
                sync=True,
                metasync=True,
                writemap=False,
                map_async=False,
                max_dbs=MAX_DBS,
                mode=0o700,
                create=create,
            )
        except lmdb.Error as exc:
            raise StoreError(f"{self._path}: cannot open the state store: {exc}") from exc

    def _open_dbs_readonly(self) -> None:
        for name in (*KINDS, *INDEXES):
            try:
                self._dbs[name] = self._env.open_db(name.encode(), create=False)
            except lmdb.NotFoundError:
                continue  # a kind added by a later writer; reads see it as empty

    # ------------------------------------------------------------------ transactions
    def _begin(self, *, write: bool) -> lmdb.Transaction[bytes]:
        """Begin a transaction on the map (counted: the map is resized only when none is open)."""
        self._check_open()
        return self._map.begin(write=write)

    def _release(self) -> None:
        self._map.release()

    @contextlib.contextmanager
    def _read(self) -> Iterator[lmdb.Transaction[bytes]]:
        txn = self._begin(write=False)
        try:
            yield txn
        finally:
            txn.abort()
            self._release()

    def _run(self, fn: Callable[[Batch], T], attempts: int = 2) -> T:
        """A write in one batch, run again (up to ``attempts`` in all) while the map had to grow;
        a failed attempt wrote nothing."""
        for attempt in range(attempts):
            try:
                with self.batch() as tx:
                    return fn(tx)
            except StoreFullError:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ the map
    def fill_map(self) -> int:
        """Chaos only: make the map full so the next write must grow it (:meth:`LmdbMap.fill`)."""
        self._check_writable()
        return self._map.fill()

    @property
    def map_held_full(self) -> bool:
        """A filled map no write has found full yet."""
        return self._map.held_full

    @property
    def map_full_events(self) -> int:
        """Writes that found the map full (each grew it and ran again)."""
        return self._map.full_events

    # ------------------------------------------------------------------ helpers
    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self._path}: the store is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self._readonly:
            raise ReadOnlyStoreError(f"{self._path}: opened read-only; only the Store actor writes")

    @staticmethod
    def _check_kind(kind: str) -> None:
        if kind not in KINDS:
            raise StoreError(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}")

    def _db_or_none(self, kind: str) -> Any:
        self._check_kind(kind)
        self._check_open()
        return self._dbs.get(kind)

    def _db_or_raise(self, name: str) -> Any:
        db = self._dbs.get(name)
        if db is None:
            raise StoreError(f"{self._path}: no sub-database {name!r}")
        return db

    def _key(self, key: str) -> bytes:
        if not isinstance(key, str) or not key:
            raise StoreError(f"a key is a non-empty str, not {key!r}")
        bkey = key.encode("utf-8")
        if len(bkey) > self._env.max_key_size():
            raise StoreError(
                f"key too long ({len(bkey)} bytes > {self._env.max_key_size()}): {key[:40]!r}..."
            )
        return bkey

    def _decode(self, kind: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        """Envelope -> (version, data); raises BadRecordError with the reason."""
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRecordError(f"not UTF-8 JSON ({type(exc).__name__})") from None
        if not isinstance(obj, dict):
            raise BadRecordError("envelope is not an object")
        v, env_kind, data = obj.get("v"), obj.get("kind"), obj.get("data")
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise BadRecordError(f"bad envelope version {v!r}")
        if v > self.schema_version:
            raise BadRecordError(f"record schema v{v} is newer than the code's v{self.schema_version}")
        if env_kind != kind:
            raise BadRecordError(f"envelope kind {env_kind!r} in sub-database {kind!r}")
        if not isinstance(data, dict):
            raise BadRecordError("envelope data is not an object")
        return v, data

    def _decode_or_raise(self, kind: str, key: str, raw: bytes) -> dict[str, Any]:
        try:
            return self._decode(kind, raw)[1]
        except BadRecordError as exc:
            self._report_bad(kind, key, str(exc))
            raise CorruptRecordError(f"{self._path}: {kind}/{key} does not decode: {exc}") from None

    def _report_bad(self, kind: str, key: str, reason: str) -> None:
        self._decode_errors[kind] = self._decode_errors.get(kind, 0) + 1
        log.warning("store %s: undecodable value at %s/%s skipped: %s", self._path, kind, key, reason)

    def _raw_items(self, kind: str, prefix: str) -> Iterator[tuple[str, bytes]]:
        """Raw ``(key, value)`` pairs in key order, read in short chunked transactions."""
        db = self._db_or_none(kind)
        if db is None:
            return
        start = prefix.encode("utf-8")
        after: bytes | None = None
        while True:
            chunk: list[tuple[bytes, bytes]] = []
            exhausted = True
            with self._read() as txn:
                cur = txn.cursor(db=db)
                ok = cur.set_range(after or start) if (after or start) else cur.first()
                if ok and after is not None and cur.key() == after:
                    ok = cur.next()
                while ok:
                    k = cur.key()
                    if not k.startswith(start):
                        break
                    if len(chunk) == READ_CHUNK:
                        exhausted = False
                        break
                    chunk.append((k, cur.value()))
                    ok = cur.next()
            for k, raw in chunk:
                yield k.decode("utf-8", "replace"), raw
            if exhausted:
                return
            after = chunk[-1][0]

    def _models(self, kind: str, model: type[M], rows: Iterable[tuple[str, dict[str, Any]]]) -> Iterator[M]:
        for key, data in rows:
            try:
                yield load_model(model, data)
            except ValidationError as exc:
                self._report_bad(kind, key, f"not a valid {model.__name__}: {exc.error_count()} errors")

    def _indexed_orders(self, statuses: set[OrderStatus] | None) -> list[Order]:
        idx, orders_db = self._dbs.get(IDX_OPEN_ORDER), self._dbs.get("order")
        if idx is None or orders_db is None:
            return []
        found: list[Order] = []
        with self._read() as txn:
            rows = [
                (k, txn.get(k, db=orders_db))
                for k, status in txn.cursor(db=idx).iternext()
                if statuses is None or status.decode() in statuses
            ]
        for bkey, raw in rows:
            key = bkey.decode("utf-8", "replace")
            if raw is None:
                self._report_bad("order", key, "indexed as open but missing")
                continue
            try:
                _, data = self._decode("order", raw)
            except BadRecordError as exc:
                self._report_bad("order", key, str(exc))
                continue
            found.extend(self._models("order", Order, [(key, data)]))
        return sorted(found, key=lambda o: (o.created_ms, o.client_id))

    def _count_index(self, name: str) -> int:
        db = self._dbs.get(name)
        if db is None:
            return 0
        with self._read() as txn:
            return txn.stat(db)["entries"]

    def _export_to(self, fh: IO[str]) -> int:
        n = 0
        with self._read() as txn:
            for kind in KINDS:
                db = self._dbs.get(kind)
                if db is None:
                    continue
                for bkey, raw in txn.cursor(db=db).iternext():
                    key = bkey.decode("utf-8", "replace")
                    try:
                        v, data = self._decode(kind, raw)
                    except BadRecordError as exc:
                        self._report_bad(kind, key, f"{exc}; left out of the export")
                        continue
                    line = {"kind": kind, "key": key, "v": v, "data": data}
                    fh.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
                    n += 1
        return n
