"""ml_momentum's retraining: how long it holds the strategy actor, inline vs in the worker thread.

    python ops/bench/ml_retrain.py [--out ops/bench/results/ml_retrain.json] [--repeats 2]

In-process, through the actor's own per-event step (``actors.shells.strategy.feed_core``) on a
``StrategyBook`` of the default ml_momentum config, except ``min_train_rows = 20,000``: its first
fit (bar 20,030 of the bundled BTC/USDT 1m data) is then a full-size retrain (20,000 rows, 100
trees, depth 8) without the 14 smaller fits before it. The book is fed to the bar before once and
restored from that state for each repeat. Per repeat:

* ``inline`` (``model_swap_delay_bars = 0``, the behaviour before): the retrain bar's call, all of
  it spent in the fit, with the actor's event loop blocked throughout;
* ``threaded`` (the default delay, ``d`` bars): the retrain bar's call (it only starts the fit), the
  longest call of the ``d - 1`` bars between, and the swap bar's call, which awaits what is left of
  the fit with the loop free. ``fast``: the bars come as fast as the core takes them (a replay: the
  fit is mostly still running at the swap bar); ``paced``: ``d`` bars span 1.25 fits (1m bars
  span a fit many times over), so nothing is left to wait for;
* ``loop_stall_max_s``: the longest the event loop went without running a 1 ms ticker coroutine
  during the run (what a heartbeat would wait);
* ``fit_s``: the fit alone, ``n_jobs`` 1 (used) and 2 (the same trees; see README).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from actors.core.strategies import ml_momentum  # noqa: E402
from actors.core.strategies.book import StrategyBook  # noqa: E402
from actors.data.candles import read_csv  # noqa: E402
from actors.data.replay import candle_events  # noqa: E402
from actors.domain.model import Candle  # noqa: E402
from actors.shells.strategy import feed_core  # noqa: E402
from config.models import MlMomentumConfig  # noqa: E402
from ops.bench.runtime_proc import machine  # noqa: E402

DEFAULT_OUT = ROOT / "ops/bench/results/ml_retrain.json"
DATA = ROOT / "ops/data/binance/BTCUSDT-1m-2024-03-01_2024-03-22.csv"
MARKET = "binance:BTC/USDT"
TICK_S = 0.001


def config(delay: int) -> MlMomentumConfig:
    return MlMomentumConfig(
        name="ml_momentum", market=MARKET, min_train_rows=20_000, model_swap_delay_bars=delay
    )


class Ticker:
    """Measures the event loop's longest stall: the gap between two turns of a 1 ms sleeper."""

    def __init__(self) -> None:
        self.stall_max_s = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(TICK_S)
            self.stall_max_s = max(self.stall_max_s, time.perf_counter() - start - TICK_S)

    def __enter__(self) -> Ticker:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def run_bars(book: StrategyBook, bars: list[Candle], pace_s: float) -> dict[str, float]:
    """Per-call durations of ``feed_core`` over ``bars`` (the first is the retrain bar)."""
    calls: list[float] = []
    with Ticker() as ticker:
        await asyncio.sleep(TICK_S)  # the ticker's first turn
        for candle in bars:
            start = time.perf_counter()
            await feed_core(book, candle)
            calls.append(time.perf_counter() - start)
            if pace_s:
                await asyncio.sleep(pace_s)
        await asyncio.sleep(2 * TICK_S)  # a last turn, so a stall just ended is counted
    out = {"retrain_bar_call_s": calls[0], "loop_stall_max_s": ticker.stall_max_s}
    if len(calls) > 1:
        out |= {"between_call_max_s": max(calls[1:-1], default=0.0), "swap_bar_call_s": calls[-1]}
    return out


def training_rows(candles: list[Candle]) -> tuple[Any, Any]:
    """The retrain bar's 20,000 rows and labels, as the core builds them."""
    core = ml_momentum.MlMomentum(config(0))
    for candle in candles[:-1]:
        core.on_candle(candle)
    last = core.bars_seen - core.config.horizon
    return core._training_set(last - core.config.max_train_rows + 1, last)


def fit_seconds(rows: tuple[Any, Any], n_jobs: int) -> float:
    """The fit alone (``n_jobs`` set on the core's own forest)."""
    forest = ml_momentum._forest(config(0))
    forest.set_params(n_jobs=n_jobs)
    start = time.perf_counter()
    forest.fit(*rows)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    delay = MlMomentumConfig(name="x", market=MARKET).model_swap_delay_bars
    candles = list(candle_events(read_csv(DATA), MARKET))
    warm = StrategyBook(config(0))
    retrain_bar = ml_momentum.FIRST_FEATURE_BAR + config(0).horizon + config(0).min_train_rows - 1
    for candle in candles[:retrain_bar]:
        warm.on_candle(candle)
    state = warm.state()
    window = candles[retrain_bar : retrain_bar + delay + 1]

    def restored(d: int) -> StrategyBook:
        book = StrategyBook(config(d))
        book.restore(state)
        return book

    runs: dict[str, list[dict[str, float]]] = {"inline": [], "threaded_fast": [], "threaded_paced": []}
    with ThreadPoolExecutor(max_workers=1) as pool:
        for _ in range(args.repeats):
            runs["inline"].append(asyncio.run(run_bars(restored(0), window[:1], 0.0)))
            book = restored(delay)
            book.offload_with(pool.submit)
            runs["threaded_fast"].append(asyncio.run(run_bars(book, window, 0.0)))
        pace = 1.25 * statistics.median(r["retrain_bar_call_s"] for r in runs["inline"]) / delay
        book = restored(delay)
        book.offload_with(pool.submit)
        runs["threaded_paced"].append(asyncio.run(run_bars(book, window, pace)))
    rows = training_rows(candles[: retrain_bar + 1])
    fits = {str(n): [fit_seconds(rows, n) for _ in range(args.repeats)] for n in (1, 2)}

    def summary(rows: list[dict[str, float]]) -> dict[str, float]:
        return {k: round(statistics.median(r[k] for r in rows), 6) for k in rows[0]}

    result: dict[str, Any] = {
        "what": "strategy actor call durations around a full-size ml_momentum retrain (see module doc)",
        "machine": machine(),
        "retrain_rows": config(0).max_train_rows,
        "n_estimators": config(0).n_estimators,
        "model_swap_delay_bars": delay,
        "repeats": args.repeats,
        "paced_bar_interval_s": round(pace, 4),
        "median": {name: summary(rows) for name, rows in runs.items()},
        "runs": runs,
        "fit_s": fits,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("median", "fit_s", "machine")}, indent=2))


if __name__ == "__main__":
    main()
