"""The store's record layout: kinds, the JSON envelope, schema versions and migrations, errors.

Shared by the store and its write batches.

On-disk layout (stable; other tools such as ``mdb_dump -s order <dir>`` can read it):

- one environment directory (``data.mdb`` + ``lock.mdb``), LMDB data format v1 (0.9.x);
- one named sub-database per kind, named after the kind (``position``, ``order``,
  ``fill``, ``strategy``, ``feed``, ``portfolio``, ``venue``, ``trade``, ``meta``);
  the key inside it is the id, UTF-8: so ``order/<client_id>`` is key ``<client_id>`` in
  sub-database ``order``. ``trade`` keys are the sequence number zero-padded to 20 digits
  so they sort numerically;
- two internal index sub-databases (``_idx/open_order``: client id -> status of every
  non-terminal order; ``_idx/trade_position``: position id -> trade seq), maintained in
  the same transaction as the records they index and never exported;
- every value is UTF-8 JSON in an envelope ``{"v": <schema>, "kind": <kind>, "data": {...}}``.
  Decimals are JSON strings (``"0.10"`` keeps its exponent) and come back exactly through
  ``Model.model_validate``; ``get`` returns plain JSON types, ``get_model`` typed models.
  Python's ``json`` is used on purpose (NaN/Infinity floats round-trip, as Python reads them).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from decimal import Decimal
from enum import Enum
from typing import Any, Final, TypeVar

from pydantic import BaseModel

from actors.domain.model import OrderStatus

log = logging.getLogger(__name__)

SCHEMA_VERSION: Final = 1
"""Version of the record layout this code writes; bump it together with a migration."""

KINDS: Final = ("position", "order", "fill", "strategy", "feed", "portfolio", "venue", "trade", "meta")
DATA_KINDS: Final = tuple(k for k in KINDS if k != "meta")
"""Kinds that hold records (everything but ``meta``): what migrations and emptiness see."""

DEFAULT_MAP_SIZE: Final = 4 << 30
"""4 GiB of address space; on Linux the file only grows as pages are used. Grown on demand."""

MAX_DBS: Final = 32  # room for kinds added by later schema versions
IDX_OPEN_ORDER: Final = "_idx/open_order"
IDX_TRADE_POSITION: Final = "_idx/trade_position"
INDEXES: Final = (IDX_OPEN_ORDER, IDX_TRADE_POSITION)
SCHEMA_KEY: Final = "schema"
_SEQ_WIDTH: Final = 20
READ_CHUNK: Final = 256
GROW_AT: Final = 0.5  # grow the map when more than this fraction is in use
MIN_SECRET_LEN: Final = 6

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
Migration = Callable[[str, str, dict[str, Any]], dict[str, Any] | None]
"""``(kind, key, data) -> new data`` or ``None`` to delete; upgrades one record by one version."""

MIGRATIONS: dict[int, Migration] = {}
"""``from_version -> migration`` to ``from_version + 1``; run in order, in one transaction."""


# --------------------------------------------------------------------------- errors


class StoreError(Exception):
    """Anything the store refuses or cannot do; the message names the store's path."""


class StoreNotFoundError(StoreError):
    """``create=False`` or ``readonly=True`` and there is no store at the path."""


class SchemaError(StoreError):
    """The store's schema is newer than the code, or cannot be migrated to it."""


class CorruptRecordError(StoreError):
    """A stored value does not decode; ``get`` raises it rather than pretend the key is absent."""


class SecretLeakError(StoreError):
    """A record contains a registered secret value; the message never contains the secret."""


class ReadOnlyStoreError(StoreError):
    """A write on a store opened with ``readonly=True``."""


class StoreFullError(StoreError):
    """The map filled during a batch; the map has been grown, so retrying the batch succeeds."""


class OrderConflictError(StoreError):
    """A client id reused for a different order, or answered with a second venue order id."""


class UnknownOrderError(StoreError):
    """An answer for a client id with no recorded intent."""


class FillConflictError(StoreError):
    """A fill id already stored for a different execution: fill ids must be globally unique."""


class BadRecordError(Exception):
    """Internal: a value failed to decode; carries the reason."""


# --------------------------------------------------------------------------- codec


def dump_model(model: BaseModel) -> dict[str, Any]:
    """JSON-safe dict of a model; Decimals become strings that keep their exact digits."""
    return model.model_dump(mode="json")


def load_model(model: type[M], data: Mapping[str, Any]) -> M:
    """Inverse of :func:`dump_model`: strings back to exact Decimals, values to enums."""
    return model.model_validate(data)


def _json_default(obj: object) -> Any:
    """Encode what ``json`` cannot: Decimals as exact strings, nested models, plain enums."""
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, Enum):
        return obj.value
    raise TypeError(f"{type(obj).__name__} is not storable as JSON")


def jsonable(data: Mapping[str, Any] | BaseModel) -> dict[str, Any]:
    """Normalise a record to plain JSON types (what a reader will get back)."""
    if isinstance(data, BaseModel):
        return dump_model(data)
    if not isinstance(data, Mapping):
        raise TypeError(f"a record is a dict or a pydantic model, not {type(data).__name__}")
    out = json.loads(json.dumps(data, default=_json_default))
    assert isinstance(out, dict)
    return out


def encode_envelope(kind: str, data: Mapping[str, Any] | BaseModel, v: int) -> str:
    payload = dump_model(data) if isinstance(data, BaseModel) else data
    if not isinstance(payload, Mapping):
        raise TypeError(f"a record is a dict or a pydantic model, not {type(payload).__name__}")
    return json.dumps(
        {"v": v, "kind": kind, "data": payload},
        default=_json_default,
        ensure_ascii=False,
        separators=(",", ":"),
    )


def seq_key(seq: int) -> str:
    return f"{seq:0{_SEQ_WIDTH}d}"


def record_field(data: Mapping[str, Any] | BaseModel, name: str) -> Any:
    return getattr(data, name, None) if isinstance(data, BaseModel) else data.get(name)


STATUS_RANK: Final = {
    OrderStatus.PENDING: 0,
    OrderStatus.OPEN: 1,
    OrderStatus.PARTIALLY_FILLED: 2,
    OrderStatus.FILLED: 3,
    OrderStatus.CANCELLED: 3,
    OrderStatus.REJECTED: 3,
}
INTENT_FIELDS: Final = (
    "market",
    "side",
    "type",
    "tif",
    "price",
    "qty",
    "position_id",
    "strategy",
    "purpose",
)
FILL_IDENTITY: Final = ("client_id", "market", "side", "price", "qty")


def register_migration(from_version: int) -> Callable[[Migration], Migration]:
    """Register the record migration from ``from_version`` to ``from_version + 1``."""

    def deco(fn: Migration) -> Migration:
        if from_version in MIGRATIONS:
            raise ValueError(f"a migration from schema v{from_version} is already registered")
        MIGRATIONS[from_version] = fn
        return fn

    return deco


@register_migration(0)
def _v0_to_v1(_kind: str, _key: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """v0 (pre-release) and v1 share the record layout: the example of a no-op step."""
    return data


def pending_redemption(position_id: str, record: dict[str, Any]) -> dict[str, Any] | None:
    """A stored position's winning shares at its market's resolution and what they pay, to redeem
    on chain (``None``: nothing to redeem). Records from before settlement was kept have none."""
    position = (record.get("core") or {}).get("position") or {}
    value = Decimal(str(position.get("settled_value") or 0))
    if value <= 0:
        return None
    return {
        "position_id": position_id,
        "market": record.get("market"),
        "shares": str(position.get("settled_qty")),
        "usdc": str(value),
        "resolved_ms": position.get("closed_ms"),
    }
