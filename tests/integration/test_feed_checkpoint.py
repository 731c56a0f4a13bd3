"""A feed that writes its position only now and then (``runtime.feed_checkpoint_batches`` > 1) and
is SIGKILLed mid-run comes back from an older position and re-delivers what it had already sent:
the venue, the open position, the strategies and the portfolio must take those events again
without a second signal, order or fill, and every invariant must hold."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray

from actors.core.strategies.book import StrategyBook
from actors.data.candles import load_table
from actors.data.replay import candle_events
from actors.domain.names import STORE, feed_name
from actors.shells.base import get_actor
from actors.shells.store import store_path
from actors.store.lmdb_store import StateStore
from config.models import Settings
from supervisor.control import runtime
from tests.runtime_harness import binance_settings, run_to_end, wait_for

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_local")]

MARKET = "binance:BTC/USDT"
ROWS = 3000


@pytest.fixture
def system(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Settings]:
    """A paper system whose feed writes its position after 1,000 batches or 10 minutes only (so
    in practice when a position subscribes, at a pause and at the end)."""
    settings = binance_settings(
        tmp_path,
        f"t-{request.node.name[:40]}",
        rows=ROWS,
        extra=("runtime.feed_checkpoint_batches=1000", "runtime.feed_checkpoint_ms=600000"),
    )
    runtime.start_system(settings)
    yield settings
    runtime.stop_system(settings, cancel_orders=True, teardown=True)


def _expected_signals(settings: Settings) -> int:
    """The signals the strategies' cores give on the replay, each bar seen once (in process)."""
    (path,) = settings.replay.candles.values()
    candles = list(candle_events(load_table(Path(path)), MARKET))
    total = 0
    for strategy in settings.strategies:
        book = StrategyBook(settings.strategy(strategy.name))
        total += sum(len(book.on_candle(c)) for c in candles)
    return total


def _strategies(settings: Settings) -> list[dict[str, Any]]:
    return [a for a in runtime.status(settings)["actors"] if a["kind"] == "strategy"]


def _signals_reported(settings: Settings) -> int:
    return sum(int(a["detail"].get("signals", 0)) for a in _strategies(settings))


def _open_position(settings: Settings) -> bool:
    return any(
        p["detail"].get("status") in ("open", "half_closed") for p in runtime.status(settings)["positions"]
    )


def _at_least(value: int, floor: int) -> int | None:
    return value if value >= floor else None


def _written(store: Any) -> int | None:
    record = ray.get(store.get.remote("feed", MARKET), timeout=10)
    return None if record is None else int(record["position"])


def _status(feed: Any) -> dict[str, Any]:
    result: dict[str, Any] = ray.get(feed.status.remote(), timeout=10)
    return result


def _feed_now(settings: Settings) -> tuple[int, dict[str, Any]] | None:
    """(pid, status) of the feed actor under its name now, None while it is down. Looked up each
    time: on a loaded machine the supervisor may re-create a feed it found silent (a new actor)."""
    try:
        feed = get_actor(settings, feed_name(MARKET))
        return int(ray.get(feed.pid.remote(), timeout=10)), _status(feed)
    except Exception:
        return None


def _position_past(settings: Settings, floor: int) -> tuple[int, int] | None:
    now = _feed_now(settings)
    return None if now is None or now[1]["position"] < floor else (now[0], now[1]["position"])


def _back(settings: Settings, old_pid: int) -> dict[str, Any] | None:
    now = _feed_now(settings)
    return None if now is None or now[0] == old_pid else now[1]


def test_feed_killed_between_checkpoints_redelivers_and_invariants_hold(system: Settings) -> None:
    store = get_actor(system, STORE)
    wait_for("an open position", lambda: _open_position(system), timeout_s=120, poll_s=0.05)
    written_before = _written(store) or 0  # its subscription wrote the feed's position
    pid, live = wait_for(
        "batches delivered since the last write",
        lambda: _position_past(system, written_before + 64),
        timeout_s=60,
        poll_s=0.02,
    )
    os.kill(pid, signal.SIGKILL)
    restarted = wait_for("the feed to come back", lambda: _back(system, pid), timeout_s=60)
    written = restarted["restored_from"]
    assert written is not None
    assert written < live, (written, live)  # the events after it went out twice

    snapshot = run_to_end(system)
    assert snapshot["restarts"] >= 1
    runtime.stop_system(system, cancel_orders=True, teardown=False)
    with StateStore(store_path(system), readonly=True) as db:
        record = db.get("feed", MARKET)
    assert record is not None
    assert record["done"]
    assert record["position"] == ROWS  # read to its end, no event skipped or counted twice
    expected = _expected_signals(system)
    assert expected > 0
    if not any(a["restarts"] for a in _strategies(system)):  # a restarted one counts from its restore
        reported = wait_for("the strategies' beats", lambda: _at_least(_signals_reported(system), expected))
        assert reported == expected  # a re-delivered bar gave no second signal
    assert runtime.read_trades(system)
    failed = [r.as_dict() for r in runtime.verify_from_store(system) if not r.ok]
    assert not failed, failed


def test_pause_writes_the_position_at_once(system: Settings) -> None:
    """A stop pauses the feeds: the position they reached must be in the store then, not a
    thousand batches later (the batch in flight at the pause is written when it ends)."""
    store = get_actor(system, STORE)
    wait_for("some progress", lambda: _position_past(system, 200), timeout_s=120, poll_s=0.05)
    feed = get_actor(system, feed_name(MARKET))
    ray.get(feed.pause.remote(True))
    wait_for(
        "the paused position in the store",
        lambda: _written(store) == _status(feed)["position"],
        timeout_s=10,
    )
    ray.get(feed.pause.remote(False))
