"""The store's schema on open: written on a new store, migrated on an older one, refused when newer.

The version lives in ``meta/schema`` (:data:`~actors.store.records.SCHEMA_KEY`). The writer
(:class:`~actors.store.lmdb_store.StateStore` opened read-write) creates the sub-databases and
checks, writes or migrates the schema in one transaction, so a store is never half-migrated; a
read-only store only checks it (an older store is migrated by the writer, not by a reader). An
import (:meth:`~actors.store.lmdb_store.StateStore.import_json`) writes the file's schema and
migrates it the same way.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from actors.store.batch import Batch
from actors.store.records import DATA_KINDS, INDEXES, KINDS, SCHEMA_KEY, BadRecordError, SchemaError

if TYPE_CHECKING:
    from actors.store.lmdb_store import StateStore

log = logging.getLogger(__name__)


def open_writer(store: StateStore) -> None:
    """Create the sub-databases and check, write or migrate the schema in one transaction."""
    env, dbs = store._env, store._dbs
    txn = env.begin(write=True)
    try:
        for name in (*KINDS, *INDEXES):
            dbs[name] = env.open_db(name.encode(), txn=txn, create=True)
        tx = Batch(store, txn)
        raw = txn.get(SCHEMA_KEY.encode(), db=dbs["meta"])
        if raw is None:
            non_empty = [k for k in DATA_KINDS if tx.count(k)]
            if non_empty:
                raise SchemaError(f"{store.path}: holds records ({', '.join(non_empty)}) but no meta/schema")
            write_schema(tx, store.schema_version)
        else:
            stored = schema_of(store, raw)
            if stored > store.schema_version:
                raise too_new(store, stored)
            if stored < store.schema_version:
                migrate(store, tx, stored)
        txn.commit()
    except BaseException:
        txn.abort()
        dbs.clear()
        raise


def check_readonly(store: StateStore) -> None:
    """A reader's check: the schema is there and is exactly this code's."""
    raw = None
    if "meta" in store._dbs:
        with store._read() as txn:
            raw = txn.get(SCHEMA_KEY.encode(), db=store._dbs["meta"])
    if raw is None:
        raise SchemaError(f"{store.path}: no meta/schema (not a state store, or never opened by a writer)")
    stored = schema_of(store, raw)
    if stored > store.schema_version:
        raise too_new(store, stored)
    if stored < store.schema_version:
        raise SchemaError(
            f"{store.path}: store schema v{stored} is older than this code's v{store.schema_version}; "
            "it is migrated when the writer (the Store actor) opens it, not read-only"
        )


def too_new(store: StateStore, stored: int) -> SchemaError:
    return SchemaError(
        f"{store.path}: store schema v{stored} is newer than this code's v{store.schema_version}; "
        "upgrade raytrader (downgrading a store is not supported)"
    )


def schema_of(store: StateStore, raw: bytes) -> int:
    """The version in a raw ``meta/schema`` envelope; :class:`SchemaError` if it is unreadable."""
    try:
        _, data = store._decode("meta", raw)
        version = data["version"]
    except (BadRecordError, KeyError) as exc:
        raise SchemaError(f"{store.path}: unreadable meta/schema: {exc}") from exc
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise SchemaError(f"{store.path}: invalid schema version {version!r}")
    return version


def write_schema(tx: Batch, version: int, **extra: Any) -> None:
    data = {"version": version, "written_ms": int(time.time() * 1000), **extra}
    tx._write("meta", SCHEMA_KEY, data, version)


def migrate(store: StateStore, tx: Batch, stored: int) -> None:
    """Run the chain stored -> code version over every record, inside ``tx`` (all or nothing)."""
    missing = [v for v in range(stored, store.schema_version) if v not in store.migrations]
    if missing:
        raise SchemaError(
            f"{store.path}: store schema v{stored} cannot be migrated to v{store.schema_version}: "
            f"no migration from v{', v'.join(map(str, missing))}"
        )
    for version in range(stored, store.schema_version):
        step = store.migrations[version]
        for kind in DATA_KINDS:
            cur = tx._txn.cursor(db=store._dbs[kind])
            rows = [(k.decode("utf-8", "replace"), v) for k, v in cur.iternext()]
            for key, raw in rows:
                try:
                    _, data = store._decode(kind, raw)
                except BadRecordError as exc:
                    store._report_bad(kind, key, f"{exc}; left as is by migration v{version}")
                    continue
                new = step(kind, key, data)
                if new is None:
                    tx._remove(kind, key)
                else:
                    tx._write(kind, key, new, version + 1)
        log.info("store %s: migrated schema v%d -> v%d", store.path, version, version + 1)
    write_schema(tx, store.schema_version, migrated_from=stored)
