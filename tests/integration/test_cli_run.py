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

from tests.runtime_harness import slice_csv, wait_for

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
    return text if "raytrader_events_total{" in text else None


def test_run_with_duration_trades_serves_metrics_and_exits_zero(tmp_path: Path) -> None:
    data = slice_csv(tmp_path / "btc.csv", 4000)
    port = _free_port()
    summary = tmp_path / "s.json"
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
        str(tmp_path / "state"),
        "--metrics-port",
        str(port),
        "--report",
        str(tmp_path / "report"),
        "--set",
        f'replay.candles={{"binance:BTC/USDT" = "{data}"}}',
        "--set",
        'runtime.namespace="cli-run-test"',
        "--set",
        "strategies.polymarket_lag.enabled=false",
        "--set",
        "strategies.ml_momentum.enabled=false",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        metrics = wait_for("the metrics endpoint", lambda: _scrape(port), timeout_s=120, poll_s=0.5)
        assert "raytrader_actor_up{" in metrics
        _out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    result = json.loads(summary.read_text())
    assert result["trades"] > 0
    assert result["mode"] == "paper"
    assert result["reason"] in ("replay finished", "duration")
    assert (tmp_path / "report" / "report.md").exists()
    assert (tmp_path / "report" / "equity.png").stat().st_size > 10_000
