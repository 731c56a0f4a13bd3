"""A real Prometheus server (Debian's package) scrapes a running paper system; its API has our series."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from supervisor.control import runtime
from tests.paths import REPO_ROOT
from tests.runtime_harness import binance_settings, wait_for

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_local")]
ROOT = REPO_ROOT
PROMETHEUS = shutil.which("prometheus")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _query(port: int, expr: str) -> list[dict[str, object]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.loads(response.read())
    except OSError:
        return []
    result: list[dict[str, object]] = body["data"]["result"]
    return result


def test_real_prometheus_scrapes_raytrader_series(tmp_path: Path) -> None:
    if PROMETHEUS is None:
        if os.environ.get("CI") == "true":
            pytest.fail("prometheus is not installed (CI installs Debian's package)")
        pytest.skip("prometheus is not installed here (apt-get install prometheus)")
    metrics_port = _free_port()
    settings = binance_settings(tmp_path, "t-prom", extra=(f"metrics.port={metrics_port}",))
    # the shipped scrape config, pointed at this system's port, without Ray's file or Alertmanager
    config = yaml.safe_load((ROOT / "ops/prometheus/prometheus.yml").read_text())
    config["scrape_configs"] = [c for c in config["scrape_configs"] if c["job_name"] == "raytrader"]
    config["scrape_configs"][0]["static_configs"] = [{"targets": [f"127.0.0.1:{metrics_port}"]}]
    config["global"]["scrape_interval"] = "1s"
    config["global"]["scrape_timeout"] = "1s"
    config.pop("alerting", None)
    config["rule_files"] = [str(ROOT / "ops/prometheus/alerts.yml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    prom_port = _free_port()
    runtime.start_system(settings)
    prometheus = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        up = wait_for(
            "the raytrader target up",
            lambda: [r for r in _query(prom_port, 'up{job="raytrader"}') if r["value"][1] == "1"],
            timeout_s=90,
        )  # type: ignore[index]
        assert up
        events = wait_for(
            "feed events in Prometheus", lambda: _query(prom_port, "raytrader_events_total"), timeout_s=90
        )
        assert any(r["metric"]["feed"] == "binance:BTC/USDT" for r in events)  # type: ignore[index]
        actors = wait_for(
            "actor health in Prometheus", lambda: _query(prom_port, "raytrader_actor_up == 1"), timeout_s=60
        )
        kinds = {r["metric"]["kind"] for r in actors}  # type: ignore[index]
        assert {"feed", "strategy", "portfolio", "venue"} <= kinds
        rules = json.loads(
            urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/api/v1/rules", timeout=5).read()
        )
        names = {r["name"] for g in rules["data"]["groups"] for r in g["rules"]}
        assert "RaytraderActorDown" in names
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)
        runtime.stop_system(settings, cancel_orders=True, teardown=True)
