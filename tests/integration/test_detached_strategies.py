"""A feed with detached strategies (``runtime.detach_strategies``), on a real local Ray instance.

The mean-reversion strategy actor is the real one with its event handler held at a gate the test
opens: while it is held the feed must go on delivering to the venue and the positions, and once
it opens the strategy must get every bar, once and in order, in fewer calls than the feed's
batches (coalesced).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import ray

from actors.domain.model import Candle, MarketEvent
from actors.domain.names import feed_name, strategy_name
from actors.domain.topology import feed_of_market
from actors.shells.base import actor_options, get_actor, remote
from actors.shells.strategy import StrategyActor
from config.models import Settings
from supervisor.control import runtime
from tests.runtime_harness import binance_settings, run_to_end, wait_for

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_local")]

MARKET = "binance:BTC/USDT"
ROWS = 1500
AHEAD = 300
"""How far past the held strategy the feed must get: an awaited feed stops at one batch."""
BOUND = 400
"""Unsent events a lane may hold before the feed waits for it (more than ``AHEAD``)."""


class HeldStrategy(StrategyActor.__ray_actor_class__):  # type: ignore[misc,name-defined]
    """The real strategy actor; each call waits at a gate first, and the bars it got are kept."""

    def __init__(self, settings: Settings, name: str) -> None:
        super().__init__(settings, name)
        self.gate = asyncio.Event()
        self.bars: list[int] = []
        self.calls = 0

    async def on_events(
        self, events: Sequence[MarketEvent], ingest_ns: int, replay: bool = False, warmup: bool = False
    ) -> int:
        self.calls += 1
        self.bars += [e.ts_ms for e in events if isinstance(e, Candle)]
        await self.gate.wait()
        count: int = await super().on_events(events, ingest_ns, replay, warmup)
        return count

    async def release(self) -> None:
        self.gate.set()

    async def received(self) -> dict[str, Any]:
        return {"bars": list(self.bars), "calls": self.calls}


def _feed_position(settings: Settings) -> int:
    status: dict[str, Any] = ray.get(get_actor(settings, feed_name(feed_of_market(MARKET))).status.remote())
    return int(status["position"])


def test_held_strategy_does_not_hold_the_feed_and_gets_every_bar_in_order(tmp_path: Path) -> None:
    settings = binance_settings(
        tmp_path,
        "t-detached",
        rows=ROWS,
        extra=("runtime.detach_strategies=true", f"runtime.detached_max_pending={BOUND}"),
    )
    name = next(s.name for s in settings.strategies if s.kind == "mean_reversion")
    held = (
        remote(ray.remote(HeldStrategy))
        .options(**actor_options(settings, strategy_name(name)))
        .remote(settings, name)
    )
    runtime.start_system(settings)
    try:
        first = wait_for("the strategy's first call", lambda: ray.get(held.received.remote())["bars"])
        wait_for(
            "the feed to run ahead of the held strategy",
            lambda: _feed_position(settings) >= len(first) + AHEAD,
        )
        ray.get(held.release.remote())
        run_to_end(settings)
        got = ray.get(held.received.remote())
        batches = -(-ROWS // settings.runtime.feed_batch)
    finally:
        runtime.stop_system(settings, cancel_orders=True, teardown=True)
    assert got["bars"] == sorted(set(got["bars"])), "bars repeated or out of order"
    assert len(got["bars"]) == ROWS
    assert got["calls"] < batches  # what arrived while a call was in flight went as one call
    results = runtime.verify_from_store(settings)
    assert not [r.as_dict() for r in results if not r.ok]
