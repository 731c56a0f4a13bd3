"""The 30-paper-trades rule counts only paper trades made on live data, per strategy.

A real LMDB store is written with trades of both kinds (and one from before trades said where
their prices came from), then read back by the same code `raytrader run --mode live` uses.
"""

from __future__ import annotations

from pathlib import Path

from actors.domain.topology import data_source
from actors.store.lmdb_store import StateStore
from config.loader import load_settings
from config.models import Feeds, Mode, Settings
from supervisor.control import runtime

SECRETS = {
    "RAYTRADER_SECRETS__BINANCE_API_KEY": "k",
    "RAYTRADER_SECRETS__BINANCE_API_SECRET": "s",
    "RAYTRADER_SECRETS__POLYMARKET_PRIVATE_KEY": "0x" + "1" * 64,
}


def _trade(n: int, strategy: str, data: str | None, exit_reason: str = "target") -> dict[str, object]:
    record: dict[str, object] = {
        "position_id": f"{strategy}-{data}-{n}",
        "strategy": strategy,
        "exit_reason": exit_reason,
        "ts_ms": 1_700_000_000_000 + n,
    }
    if data is not None:
        record["data"] = data
    return record


def _paper_store(paper_dir: Path) -> None:
    with StateStore(paper_dir / "store") as db:
        for n in range(3):
            db.append_trade(_trade(n, "mean_reversion", "live"))
        db.append_trade(_trade(9, "mean_reversion", "live", exit_reason="unfilled"))
        for n in range(5):
            db.append_trade(_trade(n, "mean_reversion", "replay"))
            db.append_trade(_trade(n, "momentum_breakout", "replay"))
        db.append_trade(_trade(0, "momentum_breakout", None))  # stored before trades were marked
        db.append_trade(_trade(0, "polymarket_lag", "live"))


def _live(paper_dir: Path, minimum: int) -> Settings:
    settings = load_settings(None, env=SECRETS, overrides=['mode="live"'])
    return settings.model_copy(
        update={
            "live": settings.live.model_copy(
                update={
                    "paper_state_dir": paper_dir,
                    "min_paper_trades": minimum,
                    "override_paper_minimum": False,
                }
            )
        }
    )


def test_store_with_live_and_replay_trades_counts_only_live_ones(tmp_path: Path) -> None:
    _paper_store(tmp_path)
    assert runtime.paper_trade_counts(tmp_path) == {"mean_reversion": 3, "polymarket_lag": 1}


def test_strategy_with_only_replay_paper_trades_is_below_minimum(tmp_path: Path) -> None:
    _paper_store(tmp_path)
    problems = runtime.live_problems(_live(tmp_path, 3), confirmed=True)
    assert any("momentum_breakout has 0 completed paper trades on live data" in p for p in problems)
    assert any("polymarket_lag has 1 completed paper trades on live data" in p for p in problems)
    assert not any("mean_reversion" in p for p in problems)


def test_paper_progress_lists_each_enabled_strategy_with_the_minimum(tmp_path: Path) -> None:
    _paper_store(tmp_path)
    progress = runtime.paper_trade_progress(_live(tmp_path, 30))
    assert progress["minimum"] == 30
    assert progress["live_data"] == {
        "mean_reversion": 3,
        "ml_momentum": 0,
        "momentum_breakout": 0,
        "polymarket_lag": 1,
    }


def test_paper_mode_on_live_feeds_needs_no_secrets() -> None:
    settings = load_settings(None, env={}, overrides=['feeds="live"'])
    assert settings.mode is Mode.PAPER
    assert settings.feeds is Feeds.LIVE


def test_data_source_of_each_mode_and_feed_choice_is_as_configured(tmp_path: Path) -> None:
    assert data_source(load_settings(None, env={})) == "replay"
    assert data_source(load_settings(None, env={}, overrides=['feeds="live"'])) == "live"
    assert data_source(_live(tmp_path, 30)) == "live"  # live orders always trade on live data
