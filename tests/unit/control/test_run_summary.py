"""The run summary (`raytrader run --json`) counts trades per market as the gates count markets.

A real LMDB store is written with the records a run leaves (positions with their instruments, the
trade log), then summarised by the same code `raytrader run` uses.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from actors.core.position_runner import trade_record
from actors.data.polymarket import load_markets
from actors.domain.model import ExitReason, Instrument, RoundTrip
from actors.shells.store import store_path
from actors.store.lmdb_store import StateStore
from config.loader import load_settings
from supervisor.control.runtime import summary


def _trip(position_id: str, market: str, pnl: str) -> RoundTrip:
    return RoundTrip(
        position_id=position_id,
        strategy="polymarket_lag" if market.startswith("polymarket:") else "mean_reversion",
        market=market,
        qty=Decimal(10),
        entry_time_ms=1_000,
        exit_time_ms=2_000,
        entry_price=Decimal("0.4"),
        exit_price=Decimal(1),
        exit_reason=ExitReason.SETTLEMENT,
        fees=Decimal("0.01"),
        pnl=Decimal(pnl),
    )


def test_summary_counts_up_and_down_of_one_polymarket_window_as_one_market(tmp_path: Path) -> None:
    settings = load_settings(env={}, overrides=[f"state_dir={tmp_path}"])
    first, second = load_markets(settings.replay.polymarket_markets)[:2]
    up, down = first.instruments()
    other_up, _other_down = second.instruments()
    btc = Instrument(
        venue="binance", symbol="BTC/USDT", tick_size=Decimal("0.01"), lot_size=Decimal("0.00001")
    )
    held = {"p1": up, "p2": down, "p3": other_up, "p4": btc}
    with StateStore(store_path(settings)) as db:
        for position_id, instrument in held.items():
            db.put(
                "position",
                position_id,
                {
                    "instrument": instrument.model_dump(mode="json"),
                    "market": instrument.market_id,
                    "open": False,
                },
            )
            db.append_trade(trade_record(_trip(position_id, instrument.market_id, "1.5")))
    doc = summary(settings, {}, "done", {})
    assert doc["trades"] == 4
    assert doc["trades_by_market"] == {
        "binance:BTC/USDT": 1,
        f"polymarket:{first.condition_id}": 2,
        f"polymarket:{second.condition_id}": 1,
    }
