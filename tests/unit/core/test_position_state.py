"""PositionCore idempotence, anomalies and state: duplicate fills, unknown ids, late acks, round trips."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from actors.core.position import PositionCore
from actors.domain.model import Command, Fill, OrderStatus, Side
from tests.unit.core.position_helpers import BINARY, CFG, T0, D, fill, opened, target_ids


def test_duplicate_fill_changes_nothing() -> None:
    core, _ = opened()
    t1, _ = target_ids(core)
    f = fill(core, t1, "0.46", "40", fee="0.01")
    core.on_fill(f)
    before = core.state()
    assert core.on_fill(f) == []
    assert core.state() == before


def test_unknown_client_id_ignored_and_reported() -> None:
    core, _ = opened()
    stray = Fill(
        fill_id="x",
        client_id="nope",
        market=BINARY.market_id,
        side=Side.SELL,
        price=D("0.5"),
        qty=D(1),
        ts_ms=T0,
    )
    before = core.state()
    assert core.on_fill(stray) == []
    assert core.on_order_update("nope", OrderStatus.FILLED, D(1), T0) == []
    assert core.state()["position"] == before["position"]
    assert len(core.anomalies) == 2


def test_late_open_ack_does_not_move_order_backward() -> None:
    core, _ = opened()
    t1, _ = target_ids(core)
    core.on_fill(fill(core, t1, "0.46", "100"))
    core.on_order_update(t1, OrderStatus.OPEN, D(0), T0 + 1, venue_order_id="v1")
    assert core.orders[t1].status is OrderStatus.FILLED
    assert core.orders[t1].venue_order_id == "v1"


def test_state_round_trip_yields_identical_commands() -> None:
    core, _ = opened()
    core.on_price(D("0.47"), T0 + 1)
    restored = PositionCore.from_state(json.loads(json.dumps(core.state())), BINARY, CFG)
    assert restored.state() == core.state()
    t1, t2 = target_ids(core)
    steps: list[Callable[[PositionCore], list[Command]]] = [
        lambda c: c.on_price(D("0.43"), T0 + 5),
        lambda c: c.on_order_update(t1, OrderStatus.CANCELLED, D(0), T0 + 6),
        lambda c: c.on_order_update(t2, OrderStatus.CANCELLED, D(0), T0 + 7),
    ]
    for step in steps:
        assert step(restored) == step(core)
    assert restored.state() == core.state()


def test_from_state_rejects_unknown_version() -> None:
    core, _ = opened()
    with pytest.raises(ValueError, match="version"):
        PositionCore.from_state({**core.state(), "version": 99}, BINARY, CFG)
