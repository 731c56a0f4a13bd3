"""PositionCore targets: the two resting targets, their fills and sizes, and unmanaged positions."""

from __future__ import annotations

from actors.domain.model import HOUR_MS, ExitReason, ExitStatus, OrderStatus, deterministic_id
from config.models import ExitConfig
from tests.unit.core.position_helpers import (
    T0,
    D,
    cancels,
    closed,
    enter,
    fill,
    opened,
    places,
    status,
    target_ids,
)


def test_target_one_fill_moves_to_half_closed() -> None:
    core, _ = opened()
    t1, _t2 = target_ids(core)
    core.on_fill(fill(core, t1, "0.46", "100", fee="0.02", ts=T0 + 9))
    assert status(core) is ExitStatus.HALF_CLOSED
    assert core.position.target_one_filled_ms == T0 + 9
    assert core.exits_armed()


def test_target_two_partial_after_half_moves_to_closing() -> None:
    core, _ = opened()
    t1, t2 = target_ids(core)
    core.on_fill(fill(core, t1, "0.46", "100"))
    core.on_fill(fill(core, t2, "0.48", "30"))
    assert status(core) is ExitStatus.CLOSING
    assert core.exit_trigger is None
    # the stop still watches the rest
    cmds = core.on_price(D("0.43"), T0 + 10)
    assert cancels(cmds)[0].client_id == t2


def test_both_targets_close_with_target_two_and_exact_pnl() -> None:
    core, _ = opened()
    t1, t2 = target_ids(core)
    core.on_fill(fill(core, t1, "0.46", "100", fee="0.02"))
    cmds = core.on_fill(fill(core, t2, "0.48", "100", fee="0.03", ts=T0 + 99))
    (done,) = closed(cmds)
    # 100*0.46 + 100*0.48 - 200*0.45 - (0.09 + 0.02 + 0.03)
    assert done.realized_pnl == D("3.86")
    assert (done.exit_reason, done.fees, done.ts_ms) == (ExitReason.TARGET_TWO, D("0.14"), T0 + 99)
    assert status(core) is ExitStatus.CLOSED


def test_target_fills_delivered_in_reverse_still_target_two() -> None:
    core, _ = opened()
    t1, t2 = target_ids(core)
    core.on_fill(fill(core, t2, "0.48", "100"))
    assert status(core) is ExitStatus.HALF_CLOSED
    (done,) = closed(core.on_fill(fill(core, t1, "0.46", "100")))
    assert done.exit_reason is ExitReason.TARGET_TWO


def test_half_below_min_size_rests_whole_at_target_one() -> None:
    core, targets = opened(qty="8")  # halves of 4 are below the 5-share minimum
    assert [(p.order.purpose, p.order.qty) for p in targets] == [("target_one", D("8"))]
    (done,) = closed(core.on_fill(fill(core, targets[0].order.client_id, "0.46", "8")))
    assert done.exit_reason is ExitReason.TARGET_ONE


def test_dust_below_min_size_places_nothing_and_reports_unarmed() -> None:
    core, entry_id = enter(qty="200")
    core.on_fill(fill(core, entry_id, "0.45", "3"))
    cmds = core.on_order_update(entry_id, OrderStatus.CANCELLED, D("3"), T0)
    assert places(cmds) == []
    assert status(core) is ExitStatus.OPEN
    assert not core.exits_armed()
    assert any("minimum" in a for a in core.anomalies)
    (done,) = closed(core.on_settlement(D(1), T0 + HOUR_MS))
    assert done.realized_pnl == D("1.65")  # 3 * (1 - 0.45)


def test_binary_targets_capped_below_one() -> None:
    _core, targets = opened(qty="100", price="0.97")
    assert [p.order.price for p in targets] == [D("0.99"), D("0.99")]


def test_venue_cancelled_target_is_re_placed_with_new_attempt() -> None:
    core, _ = opened()
    t1, _ = target_ids(core)
    cmds = core.on_order_update(t1, OrderStatus.CANCELLED, D(0), T0 + 1)
    (again,) = places(cmds)
    assert again.order.client_id == deterministic_id("rt", "p1", "target_one", 1)
    assert (again.order.qty, again.order.price) == (D("100"), D("0.46"))
    assert any("by the venue" in a for a in core.anomalies)
    assert core.exits_armed()


UNMANAGED = ExitConfig(managed=False)


def test_unmanaged_position_places_no_targets_and_ignores_stop_and_time() -> None:
    core, targets = opened(config=UNMANAGED)
    assert targets == []
    assert status(core) is ExitStatus.OPEN
    assert core.on_price(D("0.30"), T0 + 1) == []  # far through the would-be stop
    assert core.on_timer(T0 + 10 * HOUR_MS) == []  # long past the time exit
    assert core.exits_armed()
    assert status(core) is ExitStatus.OPEN


def test_unmanaged_position_closes_whole_on_exit_signal() -> None:
    core, _ = opened(config=UNMANAGED)
    core.on_price(D("0.50"), T0 + 1)
    (sell,) = places(core.on_exit_signal(T0 + 2))
    assert (sell.order.qty, sell.order.purpose) == (D("200"), "signal")
    (done,) = closed(core.on_fill(fill(core, sell.order.client_id, "0.50", "200", fee="0.10")))
    assert done.exit_reason is ExitReason.SIGNAL
    assert done.realized_pnl == D("0.50") * 200 - D("0.45") * 200 - D("0.09") - D("0.10")
