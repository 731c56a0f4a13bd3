"""Shared by the state store tests: orders, fills and positions with exact decimals, stores of older
and newer schemas with their migration steps, a populated store."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from typing import Any, ClassVar

from actors.domain.model import ExitStatus, Fill, Liquidity, Order, Position, Side
from actors.store.lmdb_store import MIGRATIONS, Migration, StateStore


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


class V0Store(StateStore):
    schema_version: ClassVar[int] = 0


def double_step(kind: str, key: str, data: dict[str, Any]) -> dict[str, Any] | None:
    if kind != "strategy":
        return data
    if key == "drop":
        return None
    return {**data, "b": data["a"] * 2}


def rename_step(kind: str, key: str, data: dict[str, Any]) -> dict[str, Any] | None:
    if kind != "strategy":
        return data
    out = dict(data)
    out["c"] = out.pop("b")
    return out


class V3Store(StateStore):
    schema_version: ClassVar[int] = 3
    migrations: ClassVar[dict[int, Migration]] = {**MIGRATIONS, 1: double_step, 2: rename_step}


def raw_versions(store: StateStore) -> set[int]:
    buf = io.StringIO()
    store.export_json(buf)
    return {json.loads(line)["v"] for line in buf.getvalue().splitlines()}


def populate(store: StateStore) -> None:
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
