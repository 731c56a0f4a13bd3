"""`raytrader run` as a person runs it: a subprocess with its own local Ray instance."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from actors.data.polymarket import load_markets
from config.loader import load_settings
from supervisor.control.runtime import read_trades
from tests.runtime_harness import wait_for

pytestmark = pytest.mark.ray


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _scrape(port: int) -> str | None:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None
    return text if "raytrader_events_total{" in text and "raytrader_actor_up{" in text else None


def test_default_run_trades_several_markets_serves_metrics_and_exits_zero(tmp_path: Path) -> None:
    """What `raytrader run --duration 120 --speed max --json s.json` does on a fresh machine: the
    default portfolio (four strategies, four Binance markets, the Polymarket day) trades on at least
    three markets and never holds both sides of a Polymarket window."""
    port = _free_port()
    summary = tmp_path / "s.json"
    state = tmp_path / "state"
    cmd = [
        sys.executable,
        "-m",
        "supervisor.cli",
        "run",
        "--duration",
        "120",
        "--speed",
        "max",
        "--json",
        str(summary),
        "--state-dir",
        str(state),
        "--metrics-port",
        str(port),
        "--report",
        str(tmp_path / "report"),
        "--set",
        'runtime.namespace="cli-run-test"',
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        metrics = wait_for("the metrics endpoint", lambda: _scrape(port), timeout_s=120, poll_s=0.5)
        assert "raytrader_actor_up{" in metrics
        _out, err = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    result = json.loads(summary.read_text())
    assert result["mode"] == "paper"
    assert result["reason"] in ("replay finished", "duration")
    binance = {m for m in result["trades_by_market"] if m.startswith("binance:")}
    assert len(binance) >= 3, result["trades_by_market"]
    assert sum(result["trades_by_market"].values()) == result["trades"]
    assert (tmp_path / "report" / "report.md").exists()
    assert (tmp_path / "report" / "equity.png").stat().st_size > 10_000

    settings = load_settings(None, env={}, overrides=[f'state_dir="{state}"'])
    condition = {
        f"polymarket:{token}": market.condition_id
        for market in load_markets(settings.replay.polymarket_markets)
        for token in market.token_ids
    }
    held: dict[str, list[tuple[str, int, int]]] = {}
    for trip in read_trades(settings):
        if trip.market in condition:
            held.setdefault(condition[trip.market], []).append(
                (trip.market, trip.entry_time_ms, trip.exit_time_ms)
            )
    for window, trips in held.items():
        for i, (market_a, start_a, end_a) in enumerate(trips):
            for market_b, start_b, end_b in trips[i + 1 :]:
                overlap = start_a < end_b and start_b < end_a
                assert not (market_a != market_b and overlap), f"both sides of window {window} held"
