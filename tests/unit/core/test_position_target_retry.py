"""PositionCore: a target the venue keeps refusing (a rejection window: insufficient balance, a
raised minimum notional, a changed tick) or keeps dropping (stops and resumes cancel it) runs out
of its attempts and leaves the position without exits at the venue. A re-drive, which the
supervisor sends after one detection interval unarmed, must give each dropped leg one more try."""

from __future__ import annotations

from actors.core.position import MAX_TARGET_ATTEMPTS
from actors.domain.model import ExitStatus, OrderStatus
from tests.unit.core.position_helpers import T0, D, opened, places, target_ids


def _reject_target_one(core, now: int) -> list[str]:  # type: ignore[no-untyped-def]
    """The venue refuses every placement of target one; returns the client ids it refused."""
    refused: list[str] = []
    t1, _t2 = target_ids(core)
    cid = t1
    while True:
        refused.append(cid)
        cmds = core.on_order_update(cid, OrderStatus.REJECTED, D(0), now)
        again = [p.order for p in places(cmds) if p.order.purpose == "target_one"]
        if not again:
            return refused
        cid = again[0].client_id


def test_target_refused_until_attempts_run_out_is_placed_again_on_redrive() -> None:
    core, _placed = opened()
    refused = _reject_target_one(core, T0 + 5)
    assert len(refused) == MAX_TARGET_ATTEMPTS
    assert core.position.status is ExitStatus.OPEN
    assert not core.exits_armed()  # half the position has no exit at the venue
    cmds = core.retry_targets(T0 + 20_000)
    again = [p.order for p in places(cmds)]
    assert [o.purpose for o in again] == ["target_one"]
    assert again[0].client_id not in refused  # a new attempt, a new client id
    assert again[0].qty == D("100")
    assert again[0].price == core.position.target_one_price
    core.on_order_update(again[0].client_id, OrderStatus.OPEN, D(0), T0 + 20_001)
    assert core.exits_armed()


def test_redrive_places_nothing_while_every_leg_rests() -> None:
    core, _placed = opened()
    t1, t2 = target_ids(core)
    core.on_order_update(t1, OrderStatus.OPEN, D(0), T0 + 1)
    core.on_order_update(t2, OrderStatus.OPEN, D(0), T0 + 1)
    assert core.retry_targets(T0 + 20_000) == []
    assert core.exits_armed()


def test_redrive_gives_one_attempt_per_call_never_a_burst() -> None:
    core, _placed = opened()
    _reject_target_one(core, T0 + 5)
    cmds = core.retry_targets(T0 + 20_000)
    (order,) = [p.order for p in places(cmds)]
    after = core.on_order_update(order.client_id, OrderStatus.REJECTED, D(0), T0 + 20_001)
    assert places(after) == []  # still refused: wait for the next re-drive
    assert len(places(core.retry_targets(T0 + 40_000))) == 1
