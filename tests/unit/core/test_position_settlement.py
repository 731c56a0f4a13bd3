"""PositionCore settlement of a binary market: the payout per share held, on spot ignored."""

from __future__ import annotations

import pytest

from actors.domain.model import HOUR_MS, ExitReason, ExitStatus
from tests.unit.core.position_helpers import SPOT, T0, D, cancels, closed, fill, opened, status, target_ids


@pytest.mark.parametrize(("payout", "pnl"), [("1", "109.91"), ("0", "-90.09")])
def test_settlement_pays_payout_per_share_held(payout: str, pnl: str) -> None:
    core, _ = opened()
    t1, t2 = target_ids(core)
    cmds = core.on_settlement(D(payout), T0 + HOUR_MS)
    assert [c.client_id for c in cancels(cmds)] == [t1, t2]
    (done,) = closed(cmds)
    assert (done.exit_reason, done.realized_pnl) == (ExitReason.SETTLEMENT, D(pnl))
    assert core.on_settlement(D(payout), T0 + HOUR_MS) == []


def test_settlement_after_half_pays_the_rest() -> None:
    core, _ = opened()
    t1, _ = target_ids(core)
    core.on_fill(fill(core, t1, "0.46", "100"))
    (done,) = closed(core.on_settlement(D(1), T0 + HOUR_MS))
    assert done.realized_pnl == D("46") + D("100") - D("90") - D("0.09")


def test_settlement_records_the_shares_and_value_left_to_redeem() -> None:
    """Issue 12: a resolved market's winning shares are money only once redeemed on chain; the
    position keeps how many it held at resolution and what they pay, for the pending list."""
    core, _ = opened()
    t1, _ = target_ids(core)
    core.on_fill(fill(core, t1, "0.46", "100"))
    core.on_settlement(D(1), T0 + HOUR_MS)
    assert (core.position.settled_qty, core.position.settled_value) == (D(100), D(100))
    restored = type(core).from_state(core.state(), core.instrument, core.config)
    assert restored.position.settled_value == D(100)
    lost, _ = opened()
    lost.on_settlement(D(0), T0 + HOUR_MS)
    assert (lost.position.settled_qty, lost.position.settled_value) == (D(200), D(0))


def test_settlement_on_spot_is_ignored_and_reported() -> None:
    core, _ = opened(SPOT, qty="0.01", price="60000")
    assert core.on_settlement(D(1), T0) == []
    assert status(core) is ExitStatus.OPEN
    assert any("non-binary" in a for a in core.anomalies)
