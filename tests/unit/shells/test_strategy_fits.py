"""The strategy actor's model fits run in a worker thread, awaited only by the candle that needs them.

``feed_core`` is the actor's per-event step (``StrategyActor.on_events`` calls it for each event).
Its event loop must stay free while a fit runs, and the signals must be those of an inline fit.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from actors.core.strategies.book import StrategyBook
from actors.core.strategies.ml_momentum import MlMomentum
from actors.domain.model import Candle, Signal
from actors.shells.strategy import feed_core
from config.models import MlMomentumConfig
from tests.unit.core.test_ml_momentum import MARKET, real_candles, small_config

CANDLES = 700


def book(config: MlMomentumConfig | None = None) -> StrategyBook:
    return StrategyBook((config or small_config()).model_copy(update={"markets": (MARKET,)}))


def ml_core(strategies: StrategyBook) -> MlMomentum:
    core = strategies.cores[MARKET]
    assert isinstance(core, MlMomentum)
    return core


async def feed_all(strategies: StrategyBook, candles: tuple[Candle, ...]) -> list[list[Signal]]:
    return [await feed_core(strategies, c) for c in candles]


def inline_signals(config: MlMomentumConfig | None = None) -> list[list[Signal]]:
    strategies = book(config)
    return [strategies.on_candle(c) for c in real_candles()[:CANDLES]]


def test_fits_in_a_worker_thread_give_the_inline_signals() -> None:
    strategies = book()
    with ThreadPoolExecutor(max_workers=1) as pool:
        strategies.offload_with(pool.submit)
        got = asyncio.run(feed_all(strategies, real_candles()[:CANDLES]))
    assert got == inline_signals()
    assert any(got)


def test_loop_answers_another_call_while_a_fit_runs_and_the_candle_waits_for_it() -> None:
    release = threading.Event()
    strategies = book()
    core = ml_core(strategies)
    fits: list[Future[Any]] = []

    with ThreadPoolExecutor(max_workers=1) as pool:

        def slow_submit(job: Callable[[], Any], /) -> Future[Any]:
            def slow() -> Any:
                release.wait()  # the fit runs until the test lets it finish
                return job()

            fits.append(pool.submit(slow))
            return fits[-1]

        strategies.offload_with(slow_submit)

        async def scenario() -> list[list[Signal]]:
            task = asyncio.create_task(feed_all(strategies, real_candles()[:CANDLES]))
            await asyncio.sleep(0)  # one turn: the task feeds every bar it can, then parks on the fit
            # This coroutine is the other call (a heartbeat): it runs while the fit is unfinished.
            ((_, _, ready),) = core.pending_fits
            assert not task.done()
            assert len(fits) == 1
            assert not fits[0].done()
            assert core.bars_seen == ready  # every bar before the swap bar went through; that one waits
            assert core.training_window is None
            release.set()
            return await task

        got = asyncio.run(scenario())
    assert got == inline_signals()


def test_failed_fit_rejects_each_swap_bar_and_the_core_keeps_learning() -> None:
    strategies = book()
    core = ml_core(strategies)
    submitted: list[Future[Any]] = []

    def failing(job: Callable[[], Any], /) -> Future[Any]:
        future: Future[Any] = Future()
        submitted.append(future)
        future.set_exception(MemoryError("no room for the forest"))
        return future

    strategies.offload_with(failing)
    candles = real_candles()[:CANDLES]

    async def scenario() -> tuple[int, int]:
        rejected = 0
        for candle in candles:
            try:
                await feed_core(strategies, candle)
            except MemoryError:
                rejected += 1
        return rejected, core.bars_seen

    rejected, seen = asyncio.run(scenario())
    assert seen == len(candles)  # a rejected bar is still learnt: the failure is the fit's alone
    assert rejected == len(submitted) - len(core.pending_fits) > 1  # each swap bar, retries included
    assert core.training_window is None
