"""The kill switch, its flatten option and the health alerts, through the CLI, on a real local Ray
runtime (paper venue on the bundled BTCUSDT replay, real LMDB): `kill-switch` freezes positions
with their exits cancelled, `kill-switch --flatten` closes them all within the slippage cap and
stays latched; the supervisor's no-activity alert rises on a stalled feed and clears when it
resumes; `raytrader watch` reads the store's health record from outside Ray."""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import ray
from typer.testing import CliRunner, Result

from actors.domain.model import ExitReason
from actors.domain.names import feed_name, venue_name
from actors.domain.topology import topology
from actors.shells.base import get_actor
from actors.store.lmdb_store import StateStore
from config.models import Settings
from supervisor import cli  # noqa: F401  (registers every command on the app)
from supervisor.cli.app import app
from supervisor.control import runtime
from supervisor.control.watchdog import HEALTH_KEY, HEALTH_KIND
from tests.runtime_harness import binance_settings, wait_for

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_local")]

HOLDING = ("open", "half_closed")


def _cli(settings: Settings, *args: str) -> Result:
    """A `raytrader` command in this process (already joined to the cluster), aimed at the system."""
    namespace = f'runtime.namespace="{settings.runtime.namespace}"'
    return CliRunner().invoke(app, [*args, "--set", namespace])


def _holding_with_feed_paused(settings: Settings, feed: Any) -> list[str]:
    """Positions holding something, asked directly once the feed is paused (a heartbeat may be stale)."""
    for _attempt in range(20):
        ray.get(feed.pause.remote(False))
        wait_for(
            "an open position",
            lambda: [
                p for p in runtime.status(settings)["positions"] if p["detail"].get("status") in HOLDING
            ],
            timeout_s=180,
        )
        ray.get(feed.pause.remote(True))
        holding = []
        for p in runtime.status(settings)["positions"]:
            with contextlib.suppress(Exception):
                if ray.get(get_actor(settings, p["name"]).snapshot.remote())["status"] in HOLDING:
                    holding.append(str(p["name"]))
        if holding:
            return holding
    raise AssertionError("no position stayed open across a feed pause")


def _feed(settings: Settings) -> Any:
    """The one market feed of the system (its name follows the topology's feed ids)."""
    (feed,) = topology(settings).feeds
    return get_actor(settings, feed_name(feed))


def _position_records(settings: Settings) -> dict[str, dict[str, Any]]:
    with StateStore(Path(settings.state_dir) / "store", readonly=True) as db:
        return {f"position:{key}": record for key, record in db.items("position")}


def _assert_invariants(settings: Settings) -> None:
    failed = [r.as_dict() for r in runtime.verify_from_store(settings) if not r.ok]
    assert not failed, failed


def test_kill_switch_freezes_then_flatten_closes_every_position_and_stays_latched(tmp_path: Path) -> None:
    settings = binance_settings(tmp_path, "t-flatten")
    runtime.start_system(settings)
    try:
        venue = get_actor(settings, venue_name("binance"))
        holding = _holding_with_feed_paused(settings, _feed(settings))

        # a plain kill switch: everything cancelled, positions frozen as they are, latched
        plain = _cli(settings, "kill-switch")
        assert plain.exit_code == 0, plain.output
        answer = json.loads(plain.stdout)
        assert answer["latched"]
        assert answer["cancelled"] >= len(holding)  # at least each one's resting exits
        assert "flattened" not in answer
        assert ray.get(venue.open_orders.remote()) == []
        frozen = wait_for(
            "frozen positions to report",
            lambda: set(holding) <= set(runtime.status(settings)["frozen_positions"]),
        )
        assert frozen
        records = _position_records(settings)
        assert all(records[name]["open"] and records[name]["frozen"] for name in holding)
        status = _cli(settings, "status")
        assert "kill switch LATCHED" in status.output

        # flatten: every position closes at market within the cap; the closes need the next bar,
        # so with the market paused `--wait` reports them still open (exit 1)
        flat = _cli(settings, "kill-switch", "--flatten", "--wait", "2")
        assert flat.exit_code == 1, flat.output
        answer = json.loads(flat.stdout)
        assert answer["latched"]
        assert answer["flatten_failed"] == {}
        assert set(holding) <= set(answer["flattened"])
        assert {answer["flattened"][name] for name in holding} == {"closing"}
        assert set(holding) <= set(answer["open_positions"])
        closes = [o for o in ray.get(venue.open_orders.remote()) if o.purpose == ExitReason.KILL_SWITCH.value]
        assert {f"position:{o.position_id}" for o in closes} == set(holding)

        ray.get(_feed(settings).pause.remote(False))  # the market goes on
        wait_for(
            "every position closed",
            lambda: not [r for r in _position_records(settings).values() if r["open"]],
            timeout_s=120,
        )
        assert wait_for("no order left at the venue", lambda: ray.get(venue.open_orders.remote()) == [])
        after = runtime.status(settings)
        assert after["kill_switch_latched"]
        assert after["portfolio"].get("halted")
        assert after["frozen_positions"] == []
    finally:
        runtime.stop_system(settings, cancel_orders=True, teardown=True)
    trades = {f"position:{t.position_id}": t for t in runtime.read_trades(settings)}
    for name in holding:
        assert trades[name].exit_reason is ExitReason.KILL_SWITCH, trades[name]
    with StateStore(Path(settings.state_dir) / "store", readonly=True) as db:
        assert (db.get("portfolio", "supervisor") or {})["frozen"]  # still latched for the next run
    _assert_invariants(settings)


# --------------------------------------------------------------------------- health


class _Webhook(BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        return


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    bodies: list[dict[str, Any]] = []
    handler = type("Hook", (_Webhook,), {"bodies": bodies})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", bodies
    server.shutdown()


def _metric(port: int, name: str) -> float | None:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def _health(settings: Settings) -> dict[str, Any]:
    with StateStore(Path(settings.state_dir) / "store", readonly=True) as db:
        return db.get(HEALTH_KIND, HEALTH_KEY) or {}


def test_no_activity_alert_on_a_stalled_feed_clears_on_resume_and_watch_reads_the_store(
    tmp_path: Path, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, bodies = webhook
    extra = ("notify.no_activity_s=3", f'notify.webhook_url="{url}"', "notify.cooldown_s=0")
    settings = binance_settings(tmp_path, "t-no-activity", extra=extra)
    runtime.start_system(settings)
    state = ["--state-dir", str(settings.state_dir)]
    try:
        port = runtime.status(settings)["metrics_port"]
        feed = _feed(settings)
        wait_for(
            "the replay to flow", lambda: ray.get(feed.status.remote())["position"] >= 200, timeout_s=120
        )
        # trading: the health record says so (a start-up silence on a busy machine is over)
        wait_for("activity", lambda: _health(settings).get("no_activity") is False)
        ok = _cli(settings, "watch", "--once", *state)
        assert ok.exit_code == 0, ok.output
        assert ok.stdout.startswith("ok: health record written")

        ray.get(feed.pause.remote(True))  # the market data stops; every actor still beats
        health = wait_for("the no-activity alert", lambda: (h := _health(settings)).get("no_activity") and h)
        since = str(health["last_activity_ms"])  # one silence, one key
        assert _metric(port, "raytrader_no_activity") == 1.0
        assert (_metric(port, "raytrader_activity_age_seconds") or 0.0) >= 3.0
        (raised,) = wait_for("the alert at the webhook", lambda: [b for b in bodies if b["key"] == since])
        assert raised["kind"] == "no_activity"
        assert raised["severity"] == "warning"
        assert raised["details"]["limit_s"] == 3.0
        watched = _cli(settings, "watch", "--once", *state)  # the system is not silent: it writes
        assert watched.exit_code == 0, watched.output
        assert "no-activity alert up" in watched.stdout

        ray.get(feed.pause.remote(False))
        wait_for("the alert to clear", lambda: _metric(port, "raytrader_no_activity") == 0.0, timeout_s=30)
        (resumed,) = wait_for(
            "the resumed notice", lambda: [b for b in bodies if b["key"] == f"{since}:resumed"]
        )
        assert resumed["severity"] == "info"
        assert resumed["details"]["silent_s"] >= 3.0
        assert [b for b in bodies if b["key"] == since] == [raised]  # once per silence, not every tick
    finally:
        runtime.stop_system(settings, cancel_orders=True, teardown=True)
    stopped = _cli(settings, "watch", "--once", *state)
    assert stopped.exit_code == 0, stopped.output
    assert stopped.stdout.startswith("stopped: stopped cleanly")
    silent = _cli(settings, "watch", "--once", "--silent-after", "0.001", *state)
    assert silent.exit_code == 0  # a clean stop is never silence, however old
    _assert_invariants(settings)
