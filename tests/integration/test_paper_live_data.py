"""Issue 12, done when: a paper run on the sandbox's live feeds trades through the paper venue,
no order reaches the venue, and its trades are marked as made on live data (so they count
towards the live.min_paper_trades rule). No secret is configured: market data is public.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config.loader import load_settings
from config.models import Mode, Settings
from ops.sandbox_harness import SandboxThread, http_json
from supervisor.control import runtime
from tests.integration.test_live_warmup import STRATEGY as WARM_MR
from tests.runtime_harness import sandbox_venues, wait_for

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_local")]

STRATEGY = WARM_MR.model_copy(update={"name": "paper_live_mr"})
"""Enters and exits on most bars once warm (from the venue's history), as in the warm-up test."""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[dict[str, Any]]:
    yield from sandbox_venues(speed=1200.0)


def _settings(tmp: Path, sandbox: dict[str, Any]) -> Settings:
    binance = sandbox["binance"]
    settings = load_settings(
        None,
        env={},  # no secrets at all
        overrides=[
            'feeds="live"',
            f'live.binance.url="{binance["rest_url"]}"',
            f'live.binance.ws_url="{binance["ws_url"]}"',
            f'state_dir="{tmp / "state"}"',
            'runtime.namespace="t-paper-live"',
            "metrics.port=0",
            "supervision.heartbeat_interval_s=0.5",
        ],
    )
    return settings.model_copy(update={"strategies": [STRATEGY]})


def test_paper_run_on_live_feeds_trades_without_sending_an_order_and_marks_trades_live(
    tmp_path: Path, sandbox: dict[str, Any]
) -> None:
    settings = _settings(tmp_path, sandbox)
    assert settings.mode is Mode.PAPER
    base = sandbox["binance"]["rest_url"]
    runtime.start_system(settings)
    try:
        trades = wait_for(
            "a paper round trip on live data", lambda: runtime.read_trades(settings), timeout_s=240
        )
    finally:
        runtime.stop_system(settings, cancel_orders=True, teardown=True)
    assert trades
    assert {t.data for t in trades} == {"live"}
    assert http_json("GET", f"{base}/_sandbox/orders")["orders"] == []
    paper_dir = settings.state_dir
    assert runtime.paper_trade_counts(paper_dir)[STRATEGY.name] == len(runtime.read_trades(settings))


def test_paper_run_on_live_polymarket_feeds_trades_windows_on_the_rtds_reference(tmp_path: Path) -> None:
    """The Polymarket bot's own way to paper trade: the CLOB's live books and listing and the
    Chainlink reference from RTDS (the sandbox replays the day its markets settle on), fills by
    the one matching engine, no wallet key, no order at the venue; each trade marked live."""
    thread = SandboxThread(speed=60.0)  # a 5-minute window in 5 s
    base = thread.info["polymarket"]["url"]
    defaults = load_settings(None, env={})
    settings = load_settings(
        None,
        env={},
        overrides=[
            'feeds="live"',
            f'live.polymarket.url="{base}"',
            f'state_dir="{tmp_path / "state"}"',
            'runtime.namespace="t-paper-live-pm"',
            "runtime.listing_refresh_s=5",  # 5 min of venue time: books of the next windows in time
            "metrics.port=0",
            "supervision.heartbeat_interval_s=0.5",
        ],
    ).model_copy(update={"strategies": [s for s in defaults.strategies if s.kind == "polymarket_lag"]})
    assert settings.secrets.polymarket_private_key is None
    runtime.start_system(settings)
    try:
        trades = wait_for(
            "a paper round trip on a live Polymarket window",
            lambda: runtime.read_trades(settings),
            timeout_s=300,
        )
    finally:
        runtime.stop_system(settings, cancel_orders=True, teardown=True)
        orders_at_venue = http_json("GET", f"{base}/_sandbox/orders")["orders"]
        thread.stop()
    assert {t.data for t in trades} == {"live"}
    assert all(t.market.startswith("polymarket:") for t in trades)
    assert orders_at_venue == []
    assert runtime.paper_trade_counts(settings.state_dir)["polymarket_lag"] == len(
        runtime.read_trades(settings)
    )
