"""Quiet bands end to end (README, "Quiet bands"): a feed that skips a held position's prices inside
its band, and marks it itself, leaves the same fills and trades as a feed that sends every price to
every position. (The feed's marks are the core's own arithmetic, tests/unit/core/test_position_quiet.py:
these holds are not the portfolio's, so it books no marks of them.)

Five positions are held on real BTC/USDT 1m data, three with an exit plan one rule of which the data
reaches (a trailing stop, the targets, a time exit), two with exits it never reaches (a plain stop:
the price never falls back to it after the entry). Their entries are limit buys
below every low of the first 409 bars, so each fills on bar 409 however late its actor placed it, and
the two runs (bands on, bands off) see the same prices in the same order: any difference is the bands'.
"""

from __future__ import annotations

import re
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import ray

from actors.core.position import PositionCore
from actors.data.replay import BINANCE_BTCUSDT
from actors.shells.position import position_record
from actors.shells.store import store_path
from actors.store.lmdb_store import StateStore
from config.models import ExitConfig, Settings
from supervisor.control import runtime
from tests.runtime_harness import binance_settings, run_to_end

OFFSET, ROWS = 21_000, 1_400
"""Bars 21,000-22,399 of the bundled file: the entries fill on bar 409, the low of what follows."""
ENTRY_LIMIT = Decimal("67520.00")
"""Just below the lowest low of the slice's first 409 bars (67,520.01); bar 409 goes below it."""
HOLDS = {
    "stop": ExitConfig(stop_pct=0.01, target_one_pct=0.9, target_two_pct=1.0, trailing_activate_pct=1.0),
    "trail": ExitConfig(
        stop_pct=0.02,
        target_one_pct=0.9,
        target_two_pct=1.0,
        trailing_activate_pct=0.003,
        trailing_lock_pct=0.001,
        trailing_distance_pct=0.002,
    ),
    "targets": ExitConfig(
        stop_pct=0.05, target_one_pct=0.002, target_two_pct=0.004, trailing_activate_pct=1.0
    ),
    "timed": ExitConfig(
        stop_pct=0.05,
        target_one_pct=0.9,
        target_two_pct=1.0,
        trailing_activate_pct=1.0,
        time_exit_s=3600,
        time_exit_band_pct=0.02,
    ),
    "held": ExitConfig(stop_pct=0.9, target_one_pct=0.9, target_two_pct=1.0, trailing_activate_pct=1.0),
}


@pytest.fixture(scope="module", autouse=True)
def ray_local() -> Any:
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20)
    yield
    ray.shutdown()


def _settings(tmp: Path, bands: bool) -> Settings:
    tmp.mkdir(parents=True, exist_ok=True)
    name = f"t-quiet-{'on' if bands else 'off'}"
    extra = (f"runtime.quiet_bands={str(bands).lower()}", "replay.speed=2000")
    settings = binance_settings(tmp, name, rows=ROWS, extra=extra, start=OFFSET)
    # the strategies stay, the feed's usual consumers, but with no allocation they never enter
    muted = [s.model_copy(update={"allocation": 0.0}) for s in settings.strategies]
    return settings.model_copy(update={"strategies": muted})


def _write_holds(settings: Settings, first_ts_ms: int) -> None:
    store_path(settings).parent.mkdir(parents=True, exist_ok=True)
    with StateStore(store_path(settings)) as db:
        for name, exits in HOLDS.items():
            core, _entry = PositionCore.enter(
                position_id=f"hold-{name}",
                strategy="hold",
                instrument=BINANCE_BTCUSDT,
                qty=Decimal("0.01"),
                limit_price=ENTRY_LIMIT,
                signal_strength=1.0,
                now_ms=first_ts_ms,
                config=exits.model_copy(update={"entry_timeout_s": 10**9}),
            )
            db.put("position", core.position.position_id, position_record(core, core.config))


def _skips(settings: Settings) -> float:
    port = runtime.status(settings)["metrics_port"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    found = re.findall(r'^raytrader_feed_quiet_skips_total\{feed="binance:BTC/USDT"\} (\S+)$', text, re.M)
    return float(found[0]) if found else 0.0


def _run(tmp: Path, bands: bool) -> dict[str, Any]:
    settings = _settings(tmp, bands)
    with (tmp / "btc.csv").open() as f:
        next(f)
        first_ts_ms = int(next(f).split(",")[0])
    _write_holds(settings, first_ts_ms)
    runtime.start_system(settings)
    try:
        run_to_end(settings, timeout_s=300)
        skips = _skips(settings)
    finally:
        runtime.stop_system(settings, cancel_orders=True, teardown=True)
    with StateStore(store_path(settings), readonly=True) as db:
        trades = sorted(
            (
                t["position_id"],
                t["exit_reason"],
                t["entry_time_ms"],
                t["exit_time_ms"],
                t["exit_price"],
                t["pnl"],
            )
            for _seq, t in db.trades()
        )
        fills = sorted((f.client_id, f.price, f.qty, f.ts_ms) for f in db.fills())
        entries = {o.client_id for o in db.orders() if o.purpose == "entry"}
    return {
        "trades": trades,
        "fills": fills,
        "entry_fill_times": {f[3] for f in fills if f[0] in entries},
        "skips": skips,
    }


def test_skipping_quiet_prices_leaves_the_same_trades_and_fills(tmp_path: Path) -> None:
    on = _run(tmp_path / "on", bands=True)
    off = _run(tmp_path / "off", bands=False)
    assert off["skips"] == 0
    assert on["skips"] > 0
    # every hold entered on bar 409 in both runs: the comparison is of the same prices
    assert len(on["entry_fill_times"]) == 1
    assert on["entry_fill_times"] == off["entry_fill_times"]
    assert on["fills"] == off["fills"]
    assert on["trades"] == off["trades"]
    reasons = {t[1] for t in on["trades"]}
    assert reasons == {"trailing", "target_two", "time_exit"}, on["trades"]  # not a vacuous comparison
    assert {t[0] for t in on["trades"]} == {"hold-trail", "hold-targets", "hold-timed"}
