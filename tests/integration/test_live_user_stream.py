"""Live mode with pushed fills: the runtime gets its fills from Binance's user data stream (real
ccxt and aiohttp against the sandbox on loopback), REST polling kept only as the backstop that
catches up after a dropped stream; the books match the venue's ground truth."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray

from actors.domain.model import Fill
from actors.domain.names import venue_name
from actors.shells.base import actor_options, remote
from actors.shells.venue import VenueShell
from actors.venues.gateway import VenueError, VenueErrorKind
from config.models import Settings
from ops.sandbox_harness import http_json, sandbox_ground_truth
from supervisor.control import runtime
from tests.integration.test_live_sandbox import _assert_books_match_the_venue, _earlier_orders
from tests.runtime_harness import live_settings, sandbox_venues, wait_for

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_local")]

POLLING_OFF = "runtime.venue_poll_s=3600"
"""The REST fill poll's period: an hour, so within a test only pushes (and catch-ups) bring fills."""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[dict[str, Any]]:
    """Both sandbox venues on loopback, in a thread with their own event loop (20 bars per second)."""
    yield from sandbox_venues(speed=1200.0)


def _settings(tmp: Path, sandbox: dict[str, Any], name: str) -> Settings:
    extra = [POLLING_OFF, "live.binance.user_stream.reconnect_s=0.2", "strategies.ml_momentum.enabled=false"]
    return live_settings(tmp, sandbox, name, extra)


def _ours(sandbox: dict[str, Any], earlier: set[str]) -> list[Fill]:
    """This run's fills at the venue (the module's sandbox is shared by its tests)."""
    _orders, fills = sandbox_ground_truth(sandbox["binance"]["rest_url"])
    return [f for f in fills if f.client_id.startswith("rt-") and f.client_id not in earlier]


def _metric(settings: Settings, name: str) -> float:
    """A binance-labelled sample of the supervisor's /metrics text (0 before it is first seen)."""
    text = ray.get(runtime.supervisor_handle(settings).metrics_text.remote())
    found = re.search(rf'^{name}\{{venue="binance"\}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_live_run_with_polling_off_gets_its_fills_from_the_user_stream(
    tmp_path: Path, sandbox: dict[str, Any]
) -> None:
    settings = _settings(tmp_path, sandbox, "t-push")
    earlier = _earlier_orders(sandbox)
    runtime.start_system(settings)
    try:
        wait_for("two fills of this run at the venue", lambda: len(_ours(sandbox, earlier)) >= 2, 240)
        # every fill the venue made is recorded, and each came pushed: the poll sleeps for an hour
        recorded = wait_for(
            "the fills recorded",
            lambda: (n := _metric(settings, "raytrader_fills_total")) >= 2 and n,
            60,
        )
        assert _metric(settings, "raytrader_pushed_fills_total") == recorded
        assert _metric(settings, "raytrader_user_stream_up") == 1
    finally:
        runtime.stop_system(settings, cancel_orders=True, teardown=True)
    _assert_books_match_the_venue(tmp_path, settings, sandbox, earlier)


def test_dropped_user_stream_is_reopened_and_caught_up_without_a_lost_fill(
    tmp_path: Path, sandbox: dict[str, Any]
) -> None:
    settings = _settings(tmp_path, sandbox, "t-push-drop")
    base = sandbox["binance"]["rest_url"]
    earlier = _earlier_orders(sandbox)
    runtime.start_system(settings)
    try:
        wait_for("the user stream", lambda: _metric(settings, "raytrader_user_stream_up") == 1, 120)
        (stream,) = http_json("GET", f"{base}/_sandbox/state")["user_streams"]
        # while this rule is in force every message the stream would carry drops it instead: the
        # fills made meanwhile reach the runtime only through the catch-up poll after each re-open
        rule = http_json(
            "POST", f"{base}/_sandbox/faults", {"path": f"/ws/{stream['listen_key']}", "kind": "drop_ws"}
        )["rules"][0]
        before = len(_ours(sandbox, earlier))
        wait_for("a fill while the stream drops", lambda: len(_ours(sandbox, earlier)) > before, 240)
        http_json("DELETE", f"{base}/_sandbox/faults/{rule['id']}")
        at_venue = len(_ours(sandbox, earlier))
        wait_for(
            "every fill made while dropped recorded",
            lambda: _metric(settings, "raytrader_fills_total") >= at_venue,
            60,
        )
        assert _metric(settings, "raytrader_user_stream_reconnects_total") >= 1
        assert _metric(settings, "raytrader_pushed_fills_total") < _metric(settings, "raytrader_fills_total")
    finally:
        runtime.stop_system(settings, cancel_orders=True, teardown=True)
    _assert_books_match_the_venue(tmp_path, settings, sandbox, earlier)


class FailingReadVenue(VenueShell):
    """The live venue actor, except that a poll's first order read after it found a new fill fails
    as a 503 would: the poll used to mark the fill seen before that read, so the failed poll lost it
    for the whole run (no later poll or push took it again)."""

    def __init__(self, settings: Settings, venue: str) -> None:
        super().__init__(settings, venue)
        self.failed: str | None = None
        found: list[str] = []
        fills, order = self.gateway.fills, self.gateway.order

        async def polled(market: str, since_ms: int | None = None) -> list[Fill]:
            out = await fills(market, since_ms)
            if self.failed is None and self.poll_lock.locked():
                found[:] = [
                    f.fill_id for f in out if f.fill_id not in self.seen_fills and f.client_id in self.intents
                ]
            return out

        async def read(client_id: str, market: str) -> Any:
            if self.failed is None and found and self.poll_lock.locked():
                self.failed = found[0]
                raise VenueError("binance", VenueErrorKind.UNAVAILABLE, "injected: 503 reading the order")
            return await order(client_id, market)

        self.gateway.fills = polled  # type: ignore[method-assign]
        self.gateway.order = read  # type: ignore[method-assign]

    async def failed_fill(self) -> str | None:
        return self.failed


def test_poll_failing_after_a_new_fill_takes_that_fill_on_the_next_poll(
    tmp_path: Path, sandbox: dict[str, Any]
) -> None:
    """Streams off (fills by polling alone): a poll cut short by a venue error keeps its fill."""
    extra = [
        "runtime.venue_poll_s=0.3",
        "live.binance.user_stream.enabled=false",
        "strategies.ml_momentum.enabled=false",
    ]
    settings = live_settings(tmp_path, sandbox, "t-poll-fails", extra)
    venue = (
        remote(ray.remote(FailingReadVenue))
        .options(**actor_options(settings, venue_name("binance")))
        .remote(settings, "binance")
    )
    earlier = _earlier_orders(sandbox)
    runtime.start_system(settings)
    try:
        failed = wait_for("a poll to fail on a new fill", lambda: ray.get(venue.failed_fill.remote()), 240)
        at_venue = len(_ours(sandbox, earlier))  # the failed one among them: taken by a later poll
        wait_for("the fills recorded", lambda: _metric(settings, "raytrader_fills_total") >= at_venue, 60)
        assert _metric(settings, "raytrader_pushed_fills_total") == 0
    finally:
        runtime.stop_system(settings, cancel_orders=True, teardown=True)
    _orders, fills, _intents = _assert_books_match_the_venue(tmp_path, settings, sandbox, earlier)
    assert failed in {f.fill_id for f in fills}
