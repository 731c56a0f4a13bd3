"""Pending redemptions read from stored position records (issue 12): a resolved Polymarket market's
winning shares are listed with what they pay until redeemed on chain, which this project cannot send."""

from __future__ import annotations

from pathlib import Path

from actors.domain.model import HOUR_MS
from actors.shells.position import position_record
from actors.store.lmdb_store import StateStore
from actors.store.records import pending_redemption
from config.models import ExitConfig
from tests.unit.core.position_helpers import T0, D, opened


def test_won_settlement_is_pending_redemption_lost_and_open_are_not(tmp_path: Path) -> None:
    won, _ = opened()
    won.on_settlement(D(1), T0 + HOUR_MS)
    lost, _ = opened()
    lost.on_settlement(D(0), T0 + HOUR_MS)
    still_open, _ = opened()
    with StateStore(tmp_path / "store") as db:
        for key, core in (("won", won), ("lost", lost), ("open", still_open)):
            db.put("position", key, position_record(core, ExitConfig()))
        found = [r for key, rec in db.items("position") if (r := pending_redemption(key, rec)) is not None]
    assert found == [
        {
            "position_id": "won",
            "market": won.position.market,
            "shares": "200",
            "usdc": "200",
            "resolved_ms": T0 + HOUR_MS,
        }
    ]


def test_record_from_before_settlement_was_kept_has_nothing_to_redeem() -> None:
    old = {"market": "polymarket:1", "core": {"position": {"sold_qty": "200", "sale_proceeds": "200"}}}
    assert pending_redemption("old", old) is None
