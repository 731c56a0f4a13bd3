"""How a :class:`~actors.core.position.PositionCore` snapshot encodes its private state as JSON.

One table instead of two hand-written lists (snapshot and restore) that must be kept in step:
a field added to the core is added here once, and older snapshots without it still load.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from actors.domain.model import ExitReason


def _identity(value: Any) -> Any:
    return value


def _opt_decimal(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _opt_reason(value: ExitReason | None) -> str | None:
    return None if value is None else value.value


def _decimals(values: dict[str, Decimal]) -> dict[str, str]:
    return {k: str(v) for k, v in values.items()}


def _last_price(value: tuple[Decimal, int] | None) -> list[Any] | None:
    return None if value is None else [str(value[0]), value[1]]


_Codec = tuple[Callable[[Any], Any], Callable[[Any], Any]]
_DECIMAL_MAP: _Codec = (_decimals, lambda raw: {k: Decimal(v) for k, v in raw.items()})
_ID_SET: _Codec = (list, dict.fromkeys)
_REASON: _Codec = (_opt_reason, lambda raw: None if raw is None else ExitReason(raw))
STATE_FIELDS: dict[str, _Codec] = {
    "entry_id": (_identity, str),
    "entry_cost": (str, Decimal),
    "seen_fills": _ID_SET,
    "venue_filled": _DECIMAL_MAP,
    "cancel_requested": _ID_SET,
    "attempts": (dict, lambda raw: {k: int(v) for k, v in raw.items()}),
    "leg_plan": _DECIMAL_MAP,
    "leg_sold": _DECIMAL_MAP,
    "opened_ms": (_identity, _identity),
    "high": (_opt_decimal, lambda raw: None if raw is None else Decimal(raw)),
    "band_since_ms": (_identity, _identity),
    "last_price": (_last_price, lambda raw: None if raw is None else (Decimal(raw[0]), int(raw[1]))),
    "trigger": _REASON,
    "pending_exit": _REASON,
    "trailing": (_identity, bool),
    "last_sale_reason": _REASON,
    "close_rejections": (_identity, int),
    "close_retry_ms": (_identity, _identity),
}
"""Each private attribute a snapshot carries (``_<name>``), with its JSON encoder and decoder."""
