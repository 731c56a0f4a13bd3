"""Live mode against the sandbox with a capital too small for Binance's minimum notional: every entry
the strategies size is refused by the venue actor before it leaves (a rejected update, counted in
``raytrader_orders_refused_total``), and the venue never sees an order to reject."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ops.sandbox_harness import http_json
from supervisor.control import runtime
from tests.runtime_harness import live_settings, sandbox_venues, wait_for

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_local")]

REFUSED = re.compile(r'^raytrader_orders_refused_total\{rule="notional",venue="binance"\} (\S+)$', re.M)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[dict[str, Any]]:
    yield from sandbox_venues(speed=1200.0)


def _refused(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        found = REFUSED.search(resp.read().decode())
    return float(found.group(1)) if found else 0.0


def test_live_orders_under_min_notional_refused_locally_and_counted_never_sent(
    tmp_path: Path, sandbox: dict[str, Any]
) -> None:
    # 10 USDT of capital: an allocation's entry is worth less than BTCUSDT's 5 USDT minimum notional
    extra = [
        'portfolio.initial_capital="10"',
        "runtime.venue_poll_s=0.3",
        "strategies.ml_momentum.enabled=false",
    ]
    settings = live_settings(tmp_path, sandbox, "t-rules", extra)
    base = sandbox["binance"]["rest_url"]
    started = runtime.start_system(settings)
    try:
        refused = wait_for(
            "an entry refused locally", lambda: _refused(started["metrics_port"]), timeout_s=180
        )
        assert refused >= 1
    finally:
        runtime.stop_system(settings, cancel_orders=True, teardown=True)
    assert http_json("GET", f"{base}/_sandbox/rejections")["rejections"] == []
    ours = [
        o for o in http_json("GET", f"{base}/_sandbox/orders")["orders"] if o["client_id"].startswith("rt-")
    ]
    assert ours == []
