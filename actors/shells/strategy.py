"""The strategy actor: one strategy (a core per market it trades), its checkpoints, its signals.

State is checkpointed periodically with the data time of the last event it covers; a
restarted strategy restores it and asks its feeds for the events since, so its indicators
carry on exactly (cores ignore events they have already seen).

Model fits (ml_momentum's retraining) run in a worker thread: a core starts one at bar N and uses
it from a later bar (``model_swap_delay_bars``); a candle that needs a fit still running awaits it
here, so the actor's loop (heartbeats, checkpoints, other calls) never blocks and neither does the
core. Which model serves which bar does not depend on the thread: it is fixed by the data.

Warm-up: a live feed first delivers its market's history flagged ``warmup`` (``actors.data.live``);
the cores learn from those bars like any others, and the signals they give on them are dropped
here, so the portfolio never trades on history. Per market the heartbeat counts the bars learnt
as warm-up, the live bars and the signals sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import ray

from actors.core.strategies.book import StrategyBook
from actors.data.replay import event_time
from actors.domain.model import Candle, Instrument, MarketEvent, OrderBook, Signal
from actors.domain.names import PORTFOLIO, feed_name, strategy_name
from actors.domain.topology import feed_of_market, watched_markets
from actors.shells.base import ActorShell
from config.models import Settings

log = logging.getLogger(__name__)

WARMUP, BARS, SIGNALS = "warmup", "bars", "signals"
"""Per-market counters of the heartbeat: warm-up bars learnt, live bars, signals sent."""


async def feed_core(core: StrategyBook, event: MarketEvent) -> list[Signal]:
    """One event through the cores; a candle whose model fit is still running first awaits it.

    The await yields the event loop, so the actor answers other calls meanwhile. A failed fit is
    not raised here: the core raises it on the candle, which then counts as rejected.
    """
    if isinstance(event, Candle):
        waits = core.waits_for(event)
        if waits:
            await asyncio.wait([asyncio.wrap_future(f) for f in waits])
        return core.on_candle(event)
    if isinstance(event, OrderBook):
        return core.on_book(event)
    if isinstance(event, Instrument):
        return core.on_instrument(event)
    return []


@ray.remote
class StrategyActor(ActorShell):
    kind = "strategy"

    def __init__(self, settings: Settings, name: str) -> None:
        self._shell_init(strategy_name(name), settings)
        self.name = name
        self.core = StrategyBook(settings.strategy(name))
        # One worker: fits queue in order; scikit-learn's tree building releases the GIL.
        self._fits = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"fit-{name}")
        self.core.offload_with(self._fits.submit)  # before restore: its pending fits go there too
        self.signals = 0
        self.markets: dict[str, dict[str, int]] = {
            m: {WARMUP: 0, BARS: 0, SIGNALS: 0} for m in watched_markets(self.core.config)
        }
        self._dirty = False
        saved = ray.get(self.store.get.remote("strategy", name))
        self.restored_from: int | None = None
        if saved is not None:
            self.core.restore(saved["state"])
            self.last_event_ms = saved.get("last_event_ms")
            self.restored_from = self.last_event_ms
            log.info("strategy %s restored at data time %s", name, self.last_event_ms)
        self._caught_up = asyncio.Event()
        self._shell_start()
        self._spawn(self._checkpoint_loop())
        if self.restored_from is not None:
            self._spawn(self._catch_up(self.restored_from))
        else:
            self._caught_up.set()

    def heartbeat_detail(self) -> dict[str, Any]:
        return {
            "signals": self.signals,
            "restored_from": self.restored_from,
            "markets": {m: dict(counts) for m, counts in self.markets.items()},
        }

    def _count(self, market: str, what: str, n: int = 1) -> None:
        counts = self.markets.get(market)  # the markets it watches; a series' tokens only in the total
        if counts is not None:
            counts[what] += n

    async def _catch_up(self, since_ms: int) -> None:
        """Ask the feeds of the markets it watches for what this strategy missed while it was down."""
        for feed in sorted({feed_of_market(m) for m in watched_markets(self.core.config)}):
            handle = self.handle(feed_name(feed))
            if handle is not None:
                try:
                    await handle.replay_since.remote(self.actor_id, since_ms)
                except Exception as exc:
                    log.warning("strategy %s: catch-up from %s failed: %s", self.name, feed, exc)
        self._caught_up.set()

    async def on_events(
        self, events: Sequence[MarketEvent], ingest_ns: int, replay: bool = False, warmup: bool = False
    ) -> int:
        """Events from a feed: the core turns them into signals for the portfolio.

        After a restore, live events wait until the missed ones (``replay``) are in, so the
        core sees them in order. ``warmup``: history before the first live bar; the core
        learns from it and its signals are dropped (0 is returned).
        """
        if not replay:
            await self._caught_up.wait()
        signals: list[Signal] = []
        for event in events:
            try:
                signals += await feed_core(self.core, event)
                if isinstance(event, Candle):
                    self._count(event.market, WARMUP if warmup else BARS)
            except Exception:  # one bad event must not take the strategy down
                log.exception("strategy %s: event rejected: %r", self.name, event)
                self.metrics.inc("raytrader_bad_messages_total", {"source": self.actor_id})
        if events:
            self.progressed(event_time(events[-1]))
            self._dirty = True
        if warmup:
            if signals:
                log.info("strategy %s: %d signals on warm-up bars dropped", self.name, len(signals))
            return 0
        for signal in signals:
            self._count(signal.market, SIGNALS)
            self.metrics.inc("raytrader_signals_total", {"strategy": self.name, "side": signal.side.value})
        self.signals += len(signals)
        if signals:  # the core has moved on: the signals must reach the portfolio, even across its restart
            await self.call_with_retry(PORTFOLIO, "on_signals", signals, ingest_ns)
        return len(signals)

    async def checkpoint(self) -> None:
        """Persist the core's state with the data time it covers."""
        if not self._dirty:
            return
        self._dirty = False
        await self.store_call(
            "put", "strategy", self.name, {"state": self.core.state(), "last_event_ms": self.last_event_ms}
        )

    async def _checkpoint_loop(self) -> None:
        await self._every(
            "checkpoint", lambda: self.settings.runtime.strategy_checkpoint_s, self._checkpoint_turn
        )

    async def _checkpoint_turn(self) -> None:
        try:
            await self.checkpoint()
        except Exception:
            self._dirty = True  # the next turn writes it again
            raise
