"""The real strategy actor with ml_momentum: fits in its worker thread, a restart between a fit's
start and its swap bar, and the same signals as the core gives in process, never stopped.

Only the store and a recording portfolio run beside it (no feed, no supervisor): the test hands
the actor its bars in feed-sized batches, checkpoints it, SIGKILLs its worker while a fit is
pending and hands the restarted actor the rest.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray

from actors.core.strategies.book import StrategyBook
from actors.core.strategies.ml_momentum import MlMomentum
from actors.domain.model import Signal
from actors.domain.names import PORTFOLIO, STORE, strategy_name
from actors.shells.base import actor_options, remote
from actors.shells.store import StoreActor, store_path
from actors.shells.strategy import StrategyActor
from config.loader import load_settings
from config.models import Settings
from tests.runtime_harness import wait_for
from tests.unit.core.test_ml_momentum import MARKET, real_candles, small_config

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_local")]

NAME = "ml_momentum"
BATCH = 16


@ray.remote
class RecordingPortfolio:
    """The portfolio's one method the strategy calls, keeping what it was sent."""

    def __init__(self) -> None:
        self.signals: list[Signal] = []

    async def on_signals(self, signals: list[Signal], _ingest_ns: int) -> int:
        self.signals.extend(signals)
        return len(signals)

    async def received(self) -> list[Signal]:
        return self.signals


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    base = load_settings(
        None,
        env={},
        overrides=[f'state_dir="{tmp_path / "state"}"', 'runtime.namespace="t-ml-fit"', "metrics.port=0"],
    )
    config = small_config(name=NAME).model_copy(update={"markets": (MARKET,)})
    yield base.model_copy(update={"strategies": [config]})
    for name in (strategy_name(NAME), PORTFOLIO, STORE):
        with contextlib.suppress(Exception):
            ray.kill(ray.get_actor(name, namespace="t-ml-fit"), no_restart=True)


def _deliver(strategy: Any, candles: list[Any]) -> None:
    for start in range(0, len(candles), BATCH):
        ray.get(strategy.on_events.remote(candles[start : start + BATCH], 0))


def _restarted(strategy: Any, before: str) -> bool:
    try:
        return bool(ray.get(strategy.ping.remote(), timeout=5) != before)
    except Exception:  # still coming back
        return False


def test_strategy_actor_killed_between_fit_and_swap_sends_the_signals_of_one_never_stopped(
    settings: Settings,
) -> None:
    candles = list(real_candles()[:700])
    book = StrategyBook(settings.strategy(NAME))
    expected = [s for c in candles for s in book.on_candle(c)]
    probe = MlMomentum(settings.strategy(NAME))
    pending_at = [i for i, c in enumerate(candles) if probe.on_candle(c) is not None and probe.pending_fits]
    k = pending_at[len(pending_at) // 2]  # a bar after which a fit is started and not yet in use

    store_path(settings).parent.mkdir(parents=True)
    store = remote(StoreActor).options(**actor_options(settings, STORE)).remote(settings)
    portfolio = RecordingPortfolio.options(name=PORTFOLIO, namespace=settings.runtime.namespace).remote()
    ray.get([store.ping.remote(), portfolio.received.remote()])  # both up before the strategy looks
    strategy = (
        remote(StrategyActor).options(**actor_options(settings, strategy_name(NAME))).remote(settings, NAME)
    )
    _deliver(strategy, candles[: k + 1])
    ray.get(strategy.checkpoint.remote())
    before = ray.get(strategy.ping.remote())
    os.kill(ray.get(strategy.pid.remote()), signal.SIGKILL)
    wait_for("the strategy actor to come back", lambda: _restarted(strategy, before), timeout_s=60)
    assert ray.get(strategy.heartbeat_detail.remote())["restored_from"] == candles[k].close_ms
    _deliver(strategy, candles[k + 1 :])

    got = ray.get(portfolio.received.remote())
    assert got == expected
    assert len(got) > 20
