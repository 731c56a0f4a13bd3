"""The market feed actor: one per market feed, delivering events to everyone who needs them.

Delivery order per batch mirrors the in-process driver: the venue first (it fills orders
resting from earlier events), then positions (prices, settlements), then strategies and the
portfolio. Each stage is awaited, so a replay at speed ``max`` runs exactly as fast as its
slowest consumer and never builds an unbounded queue (backpressure instead of buffering).
A consumer that was restarted asks for the events it missed from a bounded replay buffer.

With ``runtime.detach_strategies`` the feed waits for the venue and the positions only: each
strategy and the portfolio is a :class:`Lane` with one call in flight, the events that arrive
meanwhile coalesced into its next call, so a strategy's stall (a model refit) never holds the
positions' prices back. Each consumer still gets every event, in order; the feed waits for one
only when it holds more than ``runtime.detached_max_pending`` unsent events, and its checkpoint
never passes the oldest event a lane has not delivered. Signals then depend on timing (fills of
entries at speed ``max`` too), so replays keep the default, every stage awaited.

The feed's position is written to the store every ``runtime.feed_checkpoint_batches`` batches
or ``runtime.feed_checkpoint_ms``, whichever comes first (not a durable commit per batch), and
always when it finishes, pauses (a stop), subscribes or warms up. A crash re-delivers what came
after the last write: strategy cores, position cores, the portfolio's correlation and the paper
venue ignore data older than what they have seen (README: repeated market data).

Live, a Binance feed may first get its market's history (``actors.data.live.History``: a fresh
start, or an outage longer than the buffer holds): it goes to the strategies watching the market
alone, flagged ``warmup`` (they learn from it, their signals on it are dropped), in chunks of
``WARMUP_CHUNK`` bars, before the first live bar.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import ray

from actors.core.correlation import is_bar_close
from actors.core.position_quiet import PositionPriced, QuietBand, QuietNotice
from actors.data.live import History
from actors.data.replay import binance_instrument, candle_events, event_time, polymarket_events
from actors.domain.messages import PositionMarked
from actors.domain.model import Candle, Instrument, MarketEvent, OrderBook, Settlement
from actors.domain.names import PORTFOLIO, feed_name, market_venue, strategy_name, venue_name
from actors.domain.topology import live_data, topology, venue_of_feed
from actors.shells.base import ActorShell, try_actor
from config.models import Settings

log = logging.getLogger(__name__)

WARMUP_CHUNK = 1000
"""History bars per warm-up delivery to a strategy."""

BINANCE = "binance"
POLYMARKET = "polymarket"
"""The venues whose data a feed can read (see actors.domain.topology.FEED_VENUES)."""


def replay_source(settings: Settings, feed_id: str) -> tuple[list[Instrument], Iterator[MarketEvent]]:
    """The bundled data of one feed as (instruments known up front, time-ordered events).

    A Binance feed is one market and reads that market's candle file (``replay.candles``); the
    Polymarket feed reads the bundled day (its markets, their modelled books, Chainlink prices).
    """
    replay = settings.replay
    venue = venue_of_feed(feed_id)
    if venue == BINANCE:
        path = replay.candles.get(feed_id)
        if path is None:
            raise ValueError(
                f"no replay data for market {feed_id!r}: add it to replay.candles "
                f"(has {', '.join(sorted(replay.candles)) or 'none'})"
            )
        from actors.data.candles import load_table  # not at module level: every caller loads this class

        instrument = binance_instrument(feed_id)
        return [instrument], iter(candle_events(load_table(Path(path)), instrument.market_id))
    if venue == POLYMARKET:
        return polymarket_events(
            Path(replay.polymarket_markets),
            Path(replay.chainlink_ticks),
            book_interval_ms=settings.runtime.book_interval_ms,
        )
    raise ValueError(f"no replay data for feed {feed_id!r} (venue {venue!r}); known: {BINANCE}, {POLYMARKET}")


def known_instruments(settings: Settings, venue: str | None = None) -> list[Instrument]:
    """Every market the configured feeds (of ``venue``, or all) will trade, known before their
    listing events. Actors that need them learn them here rather than from their creator: Ray
    cannot restart an actor whose constructor arguments were too big to travel inline once the
    process that created it has died (the Polymarket day lists hundreds of markets)."""
    instruments: list[Instrument] = []
    for feed in topology(settings).feeds:
        if venue is None or venue_of_feed(feed) == venue:
            if venue_of_feed(feed) == BINANCE:  # a pair's instrument needs none of its candles
                instruments.append(binance_instrument(feed))
                continue
            if live_data(settings):  # the venue's own listing arrives as the feed's first events
                continue
            known, _events = replay_source(settings, feed)
            instruments += known
    return instruments


def paced_time(batch: Sequence[MarketEvent]) -> int | None:
    """The data time a paced replay waits for before delivering ``batch``: its last market event's
    (candle, book, settlement). Listings are not market data: a batch of them goes at once, so a
    day of markets listed ahead of their trading (the Polymarket day) takes no wall time."""
    for event in reversed(batch):
        if not isinstance(event, Instrument):
            return event_time(event)
    return None


class CheckpointPacer:
    """When a feed writes its position: after ``every_batches`` delivered batches or ``every_ms``
    since the last write, whichever comes first; pure (the caller passes its clock)."""

    def __init__(self, every_batches: int, every_ms: float, now_ms: float) -> None:
        self.every_batches = every_batches
        self.every_ms = every_ms
        self.unsaved = 0
        self.saved_ms = now_ms

    def delivered(self, now_ms: float) -> bool:
        """One more batch delivered; is a write due?"""
        self.unsaved += 1
        return self.due(now_ms)

    def due(self, now_ms: float) -> bool:
        if self.unsaved == 0:
            return False
        return self.unsaved >= self.every_batches or now_ms - self.saved_ms >= self.every_ms

    def saved(self, now_ms: float) -> None:
        """A write of everything delivered so far has started (it covers those batches)."""
        self.unsaved = 0
        self.saved_ms = now_ms

    def failed(self) -> None:
        """That write failed: the batches it covered are unsaved again (the next turn retries)."""
        self.unsaved = max(self.unsaved, 1)


Floor = tuple[int, int | None]
"""A feed position and its resume time: where a restart would re-deliver from."""

LANE_RETRY_S = 0.2


@dataclasses.dataclass
class Lane:
    """A detached consumer's events not yet sent and the floor of those in flight: a checkpoint
    must not pass the oldest event it has not delivered."""

    method: str
    pending: list[MarketEvent] = dataclasses.field(default_factory=list)
    pending_ingest_ns: int | None = None
    pending_floor: Floor | None = None
    inflight_floor: Floor | None = None
    task: asyncio.Task[None] | None = None
    calls: int = 0
    events: int = 0

    def add(self, events: Sequence[MarketEvent], ingest_ns: int, floor: Floor) -> None:
        if not self.pending:
            self.pending_floor = floor
            self.pending_ingest_ns = ingest_ns
        self.pending.extend(events)

    def take(self) -> tuple[list[MarketEvent], int]:
        """Everything unsent, as one call (its ingest time: the oldest event's)."""
        events, self.pending = self.pending, []
        self.inflight_floor, self.pending_floor = self.pending_floor, None
        ingest_ns = self.pending_ingest_ns or time.time_ns()
        self.pending_ingest_ns = None
        return events, ingest_ns

    def sent(self, events: list[MarketEvent]) -> None:
        self.inflight_floor = None
        self.calls += 1
        self.events += len(events)

    def failed(self, events: list[MarketEvent], ingest_ns: int) -> None:
        """Not delivered: first in line again."""
        self.pending = events + self.pending
        self.pending_floor = self.inflight_floor
        self.pending_ingest_ns = ingest_ns
        self.inflight_floor = None

    def floor(self) -> Floor | None:
        return self.inflight_floor or self.pending_floor


def _monotonic_ms() -> float:
    return time.monotonic() * 1000.0


def _market_of(event: MarketEvent) -> str:
    if isinstance(event, Instrument):
        return event.market_id
    return event.market


@ray.remote
class FeedActor(ActorShell):
    kind = "feed"

    def __init__(self, settings: Settings, feed_id: str) -> None:
        self._shell_init(feed_name(feed_id), settings)
        self.feed_id = feed_id
        self.live = live_data(settings)
        self.instruments: list[Instrument] = []
        self._source: Iterator[MarketEvent] = iter(())
        if not self.live:
            self.instruments, self._source = replay_source(settings, feed_id)
        saved = ray.get(self.store.get.remote("feed", feed_id)) or {}
        self.position: int = int(saved.get("position", 0))
        self.restored_from: int | None = self.position if saved else None
        """The written position this incarnation started from: what came after it is re-delivered."""
        self.subscribers: dict[str, list[str]] = dict(saved.get("subscribers", {}))
        self.done = bool(saved.get("done", False))
        self.paused = False
        self.buffer: deque[tuple[int, MarketEvent]] = deque(maxlen=settings.runtime.feed_buffer)
        self.delivered = 0
        self.lag_s = 0.0
        self.last_event_ms = saved.get("last_event_ms")
        self.resume_ms: int | None = self.last_event_ms
        """``last_event_ms`` of the last batch fully delivered: what a checkpoint records (a pause or a
        subscription may write while a batch is in flight; a restart must not resume past it)."""
        if not self.live:
            for _ in range(self.position):  # fast-forward to where the last incarnation stopped
                if next(self._source, None) is None:
                    break
        self.topology = topology(settings)
        self.pending: deque[MarketEvent | History] = deque()
        self.warmup_bars = 0
        self.conflated = 0
        self.dropped = 0
        self._arrived = asyncio.Event()
        runtime = settings.runtime
        self.pacer = CheckpointPacer(
            runtime.feed_checkpoint_batches, runtime.feed_checkpoint_ms, _monotonic_ms()
        )
        self._checkpoint_lock = asyncio.Lock()
        self._venue_of: dict[str, str] = {}
        self._watchers: dict[str, tuple[str, ...]] = {}
        self._kind_labels: dict[type, dict[str, str]] = {}
        self.lanes: dict[str, Lane] = {}
        """Detached consumers (``runtime.detach_strategies``) by actor name."""
        self.quiet_notices: dict[str, QuietNotice] = {}
        """Each subscribed position's quiet band as it last said (in memory: a restart sends every
        price again until each answers)."""
        self._shell_start()
        if self.live:
            self.done = False
            self._spawn(self._read_live())
        self._spawn(self._run())
        self._spawn(self._flush_loop())

    def heartbeat_detail(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "done": self.done,
            "paused": self.paused,
            "subscribers": sum(len(v) for v in self.subscribers.values()),
            "lag_s": round(self.lag_s, 6),
            "warmup_bars": self.warmup_bars,
            "unsent": {name: len(lane.pending) for name, lane in self.lanes.items() if lane.pending},
        }

    def digest_source(self) -> Any:
        return self.position

    # ------------------------------------------------------------------ control

    async def status(self) -> dict[str, Any]:
        return {
            "feed": self.feed_id,
            **self.heartbeat_detail(),
            "last_event_ms": self.last_event_ms,
            "restored_from": self.restored_from,
        }

    async def pause(self, paused: bool = True) -> None:
        """Pause (or resume) delivery; a pause writes the position first (a stop must not lose it;
        a batch still in flight is written by the loop when it ends)."""
        self.paused = paused
        if paused:
            await self._checkpoint()

    async def subscribe(self, actor: str, market: str) -> None:
        """A position actor wants this market's prices and settlements (idempotent, durable); a
        (re)started one is sent every price until it answers with its band."""
        self.quiet_notices.pop(actor, None)
        names = self.subscribers.setdefault(market, [])
        if actor not in names:
            names.append(actor)
            await self._checkpoint()

    async def quiet(self, actor: str, notice: QuietNotice) -> None:
        """A position's new quiet band (None: send it every price), pushed when something other
        than this feed's prices changed it (a fill, an exit signal, a timer, a freeze)."""
        self._note_quiet(actor, notice)

    def _note_quiet(self, actor: str, notice: QuietNotice) -> None:
        """Keep the newest notice: a pushed one and a call's answer may arrive in either order."""
        known = self.quiet_notices.get(actor)
        if known is None or notice.at_ns >= known.at_ns:
            self.quiet_notices[actor] = notice

    def _quiet_band(self, actor: str) -> QuietBand | None:
        notice = self.quiet_notices.get(actor) if self.settings.runtime.quiet_bands else None
        return None if notice is None else notice.band

    async def unsubscribe(self, actor: str) -> None:
        self.quiet_notices.pop(actor, None)
        changed = False
        for names in self.subscribers.values():
            if actor in names:
                names.remove(actor)
                changed = True
        self.subscribers = {m: n for m, n in self.subscribers.items() if n}
        if changed:
            await self._checkpoint()

    async def replay_since(self, actor: str, since_ms: int) -> int:
        """Re-deliver buffered events newer than ``since_ms`` to one restored strategy actor."""
        handle = try_actor(self.settings, actor)
        if handle is None:
            return 0
        events = [e for t, e in self.buffer if t > since_ms]
        if events:
            await handle.on_events.remote(events, time.time_ns(), True)
        return len(events)

    async def _checkpoint(self) -> None:
        """Write the position, subscribers and resume time as they are now. One write at a time:
        two in flight could land out of order and leave the older position in the store."""
        async with self._checkpoint_lock:
            position, resume_ms = self._floor()
            data = {
                "position": position,
                "subscribers": self.subscribers,
                "done": self.done and position == self.position,
                "last_event_ms": resume_ms,
            }
            self.pacer.saved(_monotonic_ms())
            try:
                await self.store_call("put", "feed", self.feed_id, data)
            except BaseException:
                self.pacer.failed()
                raise

    def _floor(self) -> Floor:
        """Where a restart must re-deliver from: the oldest event a detached lane has not
        delivered, else everything delivered so far."""
        floors = [f for f in (lane.floor() for lane in self.lanes.values()) if f is not None]
        return min(floors, key=lambda f: f[0], default=(self.position, self.resume_ms))

    async def _checkpoint_if_due(self, force: bool = False) -> None:
        """The paced write; a failure is logged (the next turn writes it: replay is idempotent)."""
        if not (force and self.pacer.unsaved) and not self.pacer.due(_monotonic_ms()):
            return
        try:
            await self._checkpoint()
        except Exception:
            log.exception("feed %s: checkpoint failed", self.feed_id)

    async def _flush_loop(self) -> None:
        """Write a position left unsaved when batches stop coming (a quiet live market, a pause)."""
        await self._every(
            "checkpoint",
            lambda: max(0.05, self.settings.runtime.feed_checkpoint_ms / 1000.0),
            self._checkpoint_if_due,
        )

    # ------------------------------------------------------------------ live data

    def _enqueue(self, event: MarketEvent | History) -> None:
        """Bounded, conflating buffer: a newer book replaces a pending one of the same market."""
        if isinstance(event, OrderBook):
            for i, waiting in enumerate(self.pending):
                if isinstance(waiting, OrderBook) and waiting.market == event.market:
                    del self.pending[i]
                    self.conflated += 1
                    self.metrics.inc("raytrader_feed_conflated_total", {"feed": self.feed_id})
                    break
        self.pending.append(event)
        if len(self.pending) > self.settings.runtime.feed_buffer:
            self.pending.popleft()
            self.dropped += 1
            self.metrics.inc("raytrader_bad_messages_total", {"source": f"{self.actor_id}:overflow"})
        self._arrived.set()

    async def _read_live(self) -> None:
        """Read the venue's stream forever; a broken stream is reopened with backoff."""
        from actors.data.live import binance_live, polymarket_live

        source = {BINANCE: binance_live, POLYMARKET: polymarket_live}[venue_of_feed(self.feed_id)]
        delay = 0.5
        while True:
            try:
                async for event in source(self.settings, self.feed_id, self.last_event_ms):
                    self._enqueue(event)
                    delay = 0.5
            except Exception as exc:
                log.warning("feed %s: live stream failed (%s); reopening in %.1fs", self.feed_id, exc, delay)
                self.metrics.inc(
                    "raytrader_venue_errors_total", {"venue": self.feed_id, "error": type(exc).__name__}
                )
            await asyncio.sleep(delay)
            delay = min(10.0, delay * 2)

    async def _next_live_batch(self) -> list[MarketEvent] | History:
        """The next events up to ``feed_batch``, or a warm-up ``History`` on its own."""
        while not self.pending:
            self._arrived.clear()
            await self._arrived.wait()
        first = self.pending[0]
        if isinstance(first, History):
            self.pending.popleft()
            return first
        batch: list[MarketEvent] = []
        while self.pending and len(batch) < self.settings.runtime.feed_batch:
            event = self.pending[0]
            if isinstance(event, History):
                break
            batch.append(event)
            self.pending.popleft()
        return batch

    async def _warm_up(self, history: History) -> None:
        """The market's history to every strategy watching it, flagged warm-up; retried until taken
        (a core ignores bars it has seen, so a repeat is harmless). Never to the venue, the
        positions or the portfolio: nothing is traded on it. Detached lanes deliver what they hold
        first: a strategy sees its bars in time order."""
        await self._drain_lanes()
        candles = list(history.candles)
        for start in range(0, len(candles), WARMUP_CHUNK):
            chunk = candles[start : start + WARMUP_CHUNK]
            while True:
                try:
                    await asyncio.gather(
                        *(
                            handle.on_events.remote(chunk, time.time_ns(), False, True)
                            for name in self.topology.strategies_watching(history.market)
                            if (handle := self.handle(strategy_name(name))) is not None
                        )
                    )
                    break
                except Exception:
                    log.exception("feed %s: warm-up delivery failed; retrying", self.feed_id)
                    self._handles.clear()
                    await asyncio.sleep(0.2)
        self.warmup_bars += len(candles)
        log.info("feed %s: %d bars of history learnt by its strategies", self.feed_id, len(candles))
        self.progressed(candles[-1].close_ms)
        self.resume_ms = self.last_event_ms
        await self._checkpoint()

    # ------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        speed = self.settings.replay.speed
        batch_size = self.settings.runtime.feed_batch
        wall0: float | None = None
        data0: int | None = None
        while not self.done:
            if self.paused:
                await self._checkpoint_if_due(force=True)  # the batch that was in flight at the pause
                await asyncio.sleep(0.05)
                continue
            batch: list[MarketEvent] = []
            if self.live:
                got = await self._next_live_batch()
                if isinstance(got, History):
                    if got.candles:
                        await self._warm_up(got)
                    continue
                batch = got
            for event in self._source:  # empty when live
                batch.append(event)
                if len(batch) >= batch_size:
                    break
            if not batch:
                await self._drain_lanes()
                self.done = True
                await self._checkpoint()
                log.info("feed %s finished after %d events", self.feed_id, self.position)
                break
            t = None if speed == "max" or self.live else paced_time(batch)
            if t is not None:
                if wall0 is None or data0 is None:
                    wall0, data0 = time.monotonic(), t
                wait = wall0 + (t - data0) / 1000.0 / float(speed) - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            try:
                await self._deliver(batch, time.time_ns())
            except Exception:
                log.exception("feed %s: delivery failed; retrying the batch", self.feed_id)
                self._handles.clear()  # a consumer may have been re-created: look every name up again
                self.metrics.inc("raytrader_bad_messages_total", {"source": self.actor_id})
                await asyncio.sleep(0.2)
                self._source = _prepend(batch, self._source)
                continue
            self.position += len(batch)
            self.resume_ms = self.last_event_ms
            self.pacer.delivered(_monotonic_ms())
            await self._checkpoint_if_due(force=self.paused)

    async def _deliver(self, batch: Sequence[MarketEvent], ingest_ns: int) -> None:
        """One batch to the venue, then the positions, then the strategies and the portfolio; one
        pass over the batch sorts it per consumer (a market's venue and watchers are looked up once)."""
        self.buffer.extend((event_time(e), e) for e in batch)
        for kind, n in Counter(type(e) for e in batch).items():
            self.metrics.inc("raytrader_events_total", self._labels_of(kind), n)
        self.progressed(self._resume_ms(batch))
        venue_events: dict[str, list[MarketEvent]] = {}
        strategy_events: dict[str, list[MarketEvent]] = {}
        portfolio_events: list[MarketEvent] = []
        for event in batch:
            market = _market_of(event)
            venue_events.setdefault(self._venue(market), []).append(event)
            for name in self._watching(market):
                strategy_events.setdefault(name, []).append(event)
            if _for_portfolio(event):
                portfolio_events.append(event)
        venue_calls = []
        for venue, events in venue_events.items():
            handle = self.handle(venue_name(venue))
            if handle is not None:
                venue_calls.append(handle.on_market.remote(events))
        await asyncio.gather(*venue_calls)
        await self._to_positions(batch, ingest_ns)
        if self.settings.runtime.detach_strategies:
            self._detach(strategy_events, portfolio_events, ingest_ns)
            await self._bound_lanes()
        else:
            await self._await_strategies(strategy_events, portfolio_events, ingest_ns)
        self.delivered += len(batch)
        self.lag_s = (time.time_ns() - ingest_ns) / 1e9
        self.metrics.set("raytrader_feed_lag_seconds", self.lag_s, {"feed": self.feed_id})

    async def _await_strategies(
        self,
        strategy_events: dict[str, list[MarketEvent]],
        portfolio_events: list[MarketEvent],
        ingest_ns: int,
    ) -> None:
        calls = []
        for name in self.topology.strategies:  # config order, as before
            mine = strategy_events.get(name)
            strategy = self.handle(strategy_name(name)) if mine else None
            if mine and strategy is not None:
                calls.append(strategy.on_events.remote(mine, ingest_ns))
        portfolio = self.handle(PORTFOLIO)
        if portfolio_events and portfolio is not None:
            calls.append(portfolio.on_market.remote(portfolio_events))
        await asyncio.gather(*calls)

    def _detach(
        self,
        strategy_events: dict[str, list[MarketEvent]],
        portfolio_events: list[MarketEvent],
        ingest_ns: int,
    ) -> None:
        """Hand each consumer its events; a lane with no call in flight sends at once."""
        floor: Floor = (self.position, self.resume_ms)  # this batch is not counted yet
        work = [
            (strategy_name(name), "on_events", strategy_events.get(name)) for name in self.topology.strategies
        ]
        work.append((PORTFOLIO, "on_market", portfolio_events))
        for actor, method, events in work:
            if not events:
                continue
            lane = self.lanes.get(actor)
            if lane is None:
                lane = self.lanes[actor] = Lane(method)
            lane.add(events, ingest_ns, floor)
            if lane.task is None:
                lane.task = asyncio.get_running_loop().create_task(self._drain(actor, lane))

    async def _drain(self, actor: str, lane: Lane) -> None:
        """Send a lane's events, one call at a time, until none is left; a failed call is sent
        again (after a pause, the name looked up again), never skipped."""
        try:
            while lane.pending:
                events, ingest_ns = lane.take()
                try:
                    handle = self.handle(actor)
                    if handle is None:
                        raise LookupError(f"{actor} is not running")
                    if lane.method == "on_events":
                        await handle.on_events.remote(events, ingest_ns)
                    else:
                        await handle.on_market.remote(events)
                except Exception as exc:
                    lane.failed(events, ingest_ns)
                    self.forget(actor)
                    self.metrics.inc("raytrader_bad_messages_total", {"source": self.actor_id})
                    log.warning(
                        "feed %s: %d events not delivered to %s (%s); again",
                        self.feed_id,
                        len(events),
                        actor,
                        exc,
                    )
                    await asyncio.sleep(LANE_RETRY_S)
                    continue
                lane.sent(events)
        finally:
            lane.task = None

    async def _bound_lanes(self) -> None:
        """Wait for a consumer holding more unsent events than the bound (bounded lag and memory)."""
        bound = self.settings.runtime.detached_max_pending
        for lane in list(self.lanes.values()):
            if len(lane.pending) > bound and lane.task is not None:
                await asyncio.shield(lane.task)

    async def _drain_lanes(self) -> None:
        """Every detached consumer has every event (the replay's end)."""
        for lane in list(self.lanes.values()):
            if lane.task is not None:
                await asyncio.shield(lane.task)

    def _labels_of(self, kind: type) -> dict[str, str]:
        labels = self._kind_labels.get(kind)
        if labels is None:
            labels = self._kind_labels[kind] = {"feed": self.feed_id, "type": kind.__name__.lower()}
        return labels

    def _venue(self, market: str) -> str:
        venue = self._venue_of.get(market)
        if venue is None:
            venue = self._venue_of[market] = market_venue(market)
        return venue

    def _watching(self, market: str) -> tuple[str, ...]:
        """The strategies consuming ``market`` (the topology is fixed for the actor's life)."""
        names = self._watchers.get(market)
        if names is None:
            names = self._watchers[market] = self.topology.strategies_watching(market)
        return names

    def _resume_ms(self, batch: Sequence[MarketEvent]) -> int | None:
        """Where a reopened stream resumes (``last_event_ms``): a live Binance feed back-fills candles
        from it, so its books (stamped mid-bar) must not move it past a bar not yet delivered."""
        if self.live and venue_of_feed(self.feed_id) == BINANCE:
            candles = [e for e in batch if isinstance(e, Candle)]
            return event_time(candles[-1]) if candles else None
        return event_time(batch[-1])

    async def _to_positions(self, batch: Sequence[MarketEvent], ingest_ns: int) -> None:
        if not self.subscribers:
            return
        per_actor: dict[str, list[MarketEvent]] = {}
        for event in batch:
            if isinstance(event, (Candle, OrderBook, Settlement)):
                for actor in self.subscribers.get(event.market, ()):
                    per_actor.setdefault(actor, []).append(event)
        names: list[str] = []
        calls = []
        marks: list[PositionMarked] = []
        skipped = 0
        for actor, events in per_actor.items():
            band = self._quiet_band(actor)
            price = None if band is None else band.last_price(events)
            if band is not None and price is not None:  # its exits cannot act: mark it here
                marks.append(band.mark(price))
                skipped += 1
                continue
            handle = self.handle(actor)
            if handle is not None:
                names.append(actor)
                calls.append(handle.on_market.remote(events, ingest_ns))
        if skipped:
            self.metrics.inc("raytrader_feed_quiet_skips_total", {"feed": self.feed_id}, skipped)
        results = await asyncio.gather(*calls, return_exceptions=True)
        for actor, result in zip(names, results, strict=False):
            if isinstance(result, PositionPriced):
                if result.mark is not None:
                    marks.append(result.mark)
                self._note_quiet(actor, result.notice)
            elif isinstance(result, Exception):
                self.quiet_notices.pop(actor, None)
                self.forget(actor)
                log.warning(
                    "feed %s: %s missed prices (%s); it re-syncs on restore", self.feed_id, actor, result
                )
        portfolio = self.handle(PORTFOLIO)
        if marks and portfolio is not None:  # one call for all, and before the strategies see the batch
            try:
                await portfolio.on_marks.remote(marks)
            except Exception as exc:  # the next batch's marks replace these
                self.forget(PORTFOLIO)
                log.warning("feed %s: marks not delivered to the portfolio (%s)", self.feed_id, exc)


def _for_portfolio(event: MarketEvent) -> bool:
    """Listings and books (gates), and bar closes (the rolling correlation; not 1 s reference ticks)."""
    if isinstance(event, Candle):
        return is_bar_close(event)
    return isinstance(event, (Instrument, OrderBook))


def _prepend(batch: Sequence[MarketEvent], rest: Iterator[MarketEvent]) -> Iterator[MarketEvent]:
    yield from batch
    yield from rest
