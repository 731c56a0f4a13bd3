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
from ops.sandbox_harness import http_json
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
