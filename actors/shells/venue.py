"""The venue actor: one shell over any venue gateway (paper, Binance, Polymarket).

Positions call it alike whatever is behind it. Every answer and fill is committed to the
store before the call returns, so a restarted venue actor knows every order and fill it ever
acknowledged. Updates nobody asked for (a resting order filled by market data, a fill the
venue reports later) are pushed to the owning position actor.

Two ways a gateway reports what happened after a call:
- a simulated gateway (paper) hands over the engine's exact updates (``take_updates``) and
  is checkpointed whole, since nothing outside this process remembers its orders;
- a real venue remembers its orders: a submit whose answer is lost (timeout, 5xx, 429) is
  looked up by client id before it is sent again, and fills are polled by market.

A real venue that pushes (Binance's user data stream, ``live.<venue>.user_stream``) hands its
order updates and fills over as they happen (``on_pushed``): committed and dispatched as a poll's
are, under the same lock, and a fill seen both ways is applied once (``seen_fills``). Polling
stays as the backstop, slower while the stream is up (``backstop_poll_s``); each time the stream
(re)connects one poll catches up on what was pushed while it was down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import ray

from actors.core.fees import FeeModel
from actors.domain.messages import OrderUpdate, PutRecord, RecordAnswer, RecordFill, StoreOp, UpdateKind
from actors.domain.model import Fill, Instrument, MarketEvent, Order, OrderStatus
from actors.domain.names import market_venue, position_name, venue_name
from actors.shells.base import ActorShell, try_actor, wall_ms
from actors.shells.feed import known_instruments
from actors.venues.factory import make_gateway
from actors.venues.gateway import OrderRefusedError, VenueError, VenueErrorKind, VenueGateway
from actors.venues.user_stream import StreamState, UserStreamGateway
from config.models import Mode, Settings, UserStreamConfig

if TYPE_CHECKING:  # imported by a simulated venue when it starts: every actor that calls a venue
    # loads this class (Ray imports it to make the handle) and would compile the matching engine
    from actors.venues.faults import VenueFaults
    from actors.venues.paper import PaperGateway

log = logging.getLogger(__name__)

LOOKUP_ATTEMPTS = 5


class VenueShell(ActorShell):
    """The venue actor's class before Ray wraps it (drills and fault-injection tests extend it)."""

    kind = "venue"

    def __init__(
        self, settings: Settings, venue: str, instruments: Sequence[Instrument] | None = None
    ) -> None:
        self._shell_init(venue_name(venue), settings)
        self.venue = venue
        self.paper: PaperGateway | None = None
        self.gateway: VenueGateway
        if settings.mode is Mode.LIVE:
            self.gateway = make_gateway(settings, venue)
        else:
            from actors.venues.faults import VenueFaults
            from actors.venues.paper import PaperGateway

            faults = VenueFaults(venue) if settings.runtime.fault_injection else None
            self.paper = PaperGateway(venue, FeeModel(settings.costs), faults=faults)
            self.gateway = self.paper
        self.intents: dict[str, Order] = {}
        self.views: dict[str, Order] = {}
        self.seen_fills: set[str] = set()
        self.accounted: dict[str, Decimal] = {}
        """Quantity of each order's fills already seen: an order filled beyond it has fills to fetch."""
        self.update_seq = 0
        self.errors: dict[str, int] = {}
        self.ready = asyncio.Event()
        self.start_error: str | None = None
        self.registered: set[str] = set()
        self.unregistered: dict[str, Order] = {}
        """Orders a gateway could not re-register at start-up (venue errors): retried by the poll loop."""
        self.poll_lock = asyncio.Lock()
        """One fill poll at a time: a fill one poll has marked seen is still on its way to its owner."""
        self.deliveries: set[asyncio.Future[Any]] = set()
        """Pushes to positions not yet applied: a stop's last look waits for them too."""
        self.stream_up = False
        """The venue's push stream is connected: polling is only the (slower) backstop."""
        if self.paper is not None:
            self._restore_paper(known_instruments(settings, venue) if instruments is None else instruments)
            self.ready.set()
            self._shell_start()
        else:
            self._shell_start()
            self._spawn(self._startup())

    # ------------------------------------------------------------------ startup

    def _restore_paper(self, instruments: Sequence[Instrument]) -> None:
        """A simulated venue's memory is its checkpoint: restore it before serving any call."""
        from actors.venues.paper import restore_venue_history

        assert self.paper is not None
        saved = ray.get(self.store.get.remote("venue", self.venue))
        if saved is not None:
            self.paper.restore(saved["engine"])
            if saved["engine"].get("history") is False:  # the history is the store's records
                orders, fills = ray.get([self.store.orders.remote(), self.store.fills.remote()])
                restore_venue_history(self.paper.engine, self.venue, orders, fills)
            log.info(
                "venue %s restored: %d orders, %d fills",
                self.venue,
                len(self.paper.engine.orders()),
                self.paper.engine.fill_count,
            )
        for instrument in instruments:
            self.paper.add_instrument(instrument)

    async def _startup(self) -> None:
        """Connect (retrying), learn our orders and fills from the store, then poll for fills."""
        delay = 0.2
        while True:
            try:
                await self.gateway.start()
                break
            except Exception as exc:
                self.start_error = f"{type(exc).__name__}: {exc}"
                self._count_error(exc)
                log.error(
                    "venue %s: cannot start the gateway (%s); retrying in %.1fs", self.venue, exc, delay
                )
                await asyncio.sleep(delay)
                delay = min(10.0, delay * 2)
        self.start_error = None
        try:
            for order in await self.store_call("orders"):
                if market_venue(order.market) == self.venue:
                    self.intents[order.client_id] = order
            for fill in await self.store_call("fills"):
                self._account(fill)
            for order in self.intents.values():
                if self._awaiting_fills(order):  # unfinished, or filled beyond the fills we hold
                    self.views[order.client_id] = order
            await self._register_unfinished()
        except Exception:  # never leave every caller waiting: what failed is retried by the poll loop
            log.exception("venue %s: startup incomplete; serving anyway", self.venue)
        finally:
            self.ready.set()
        self._spawn(self._poll_loop())
        config = self._stream_config()
        if config is not None and isinstance(self.gateway, UserStreamGateway):
            self._spawn(self._stream_loop(self.gateway, config))

    async def _register_unfinished(self) -> None:
        """Gateways that derive venue ids from the order relearn them, for the orders that still
        matter (open, or with fills to fetch): not the whole history, and never blocking start-up
        on a venue error (a 429, a 5xx, a resolved market's 404)."""
        register = getattr(self.gateway, "register", None)
        if register is None:
            return
        self.unregistered = {
            cid: o
            for cid, o in self.views.items()
            if o.status is not OrderStatus.REJECTED and cid not in self.registered
        }
        for client_id, order in list(self.unregistered.items()):
            try:
                await register(order)
            except VenueError as exc:
                self._count_error(exc)
                if exc.retryable:
                    log.warning("venue %s: %s not re-registered yet (%s)", self.venue, client_id, exc)
                    continue  # the next poll tries again
                log.error("venue %s: %s cannot be re-registered: %s", self.venue, client_id, exc)
            except Exception as exc:
                self._count_error(exc)
                log.error("venue %s: %s cannot be re-registered: %s", self.venue, client_id, exc)
            self.registered.add(client_id)
            self.unregistered.pop(client_id, None)

    def _account(self, fill: Fill) -> None:
        self.seen_fills.add(fill.fill_id)
        self.accounted[fill.client_id] = self.accounted.get(fill.client_id, Decimal(0)) + fill.qty

    def _awaiting_fills(self, order: Order) -> bool:
        """Open, or reported filled beyond the fills we have seen (fills still to fetch)."""
        return order.is_open or order.filled_qty > self.accounted.get(order.client_id, Decimal(0))

    def heartbeat_detail(self) -> dict[str, Any]:
        if self.paper is not None:
            engine = self.paper.engine
            return {"open_orders": len(engine.open_orders()), "fills": engine.fill_count}
        return {
            "ready": self.ready.is_set(),
            "start_error": self.start_error,
            "tracked_orders": sum(1 for o in self.views.values() if o.is_open),
            "unregistered_orders": len(self.unregistered),
            "user_stream_up": self.stream_up,
            "errors": dict(self.errors),
        }

    def owned_orders(self) -> tuple[str, ...]:
        if self.paper is not None:
            return tuple(o.client_id for o in self.paper.engine.open_orders())
        return tuple(cid for cid, o in self.views.items() if o.is_open)

    def _count_error(self, exc: BaseException) -> None:
        if isinstance(exc, OrderRefusedError):  # refused before sending: no venue error happened
            self.metrics.inc("raytrader_orders_refused_total", {"venue": self.venue, "rule": exc.rule})
            return
        kind = exc.kind.value if isinstance(exc, VenueError) else type(exc).__name__
        self.errors[kind] = self.errors.get(kind, 0) + 1
        self.metrics.inc("raytrader_venue_errors_total", {"venue": self.venue, "error": kind})

    # ------------------------------------------------------------------ answers

    def _merge(self, view: Order) -> Order:
        """The venue's view of an order, with what only we know (owner, purpose) put back."""
        intent = self.intents.get(view.client_id)
        if intent is None:
            return view
        return view.model_copy(
            update={"position_id": intent.position_id, "strategy": intent.strategy, "purpose": intent.purpose}
        )

    def _update(
        self, kind: UpdateKind, order: Order, fill: Fill | None = None, detail: str = ""
    ) -> OrderUpdate:
        self.update_seq += 1
        return OrderUpdate(
            seq=self.update_seq, kind=kind, ts_ms=wall_ms(), order=order, fill=fill, detail=detail
        )

    async def _commit(self, updates: list[OrderUpdate]) -> None:
        """Answers, fills (and a simulated venue's whole state) in one store transaction."""
        ops: list[StoreOp] = []
        for u in updates:
            if u.kind is UpdateKind.UNCHANGED:
                continue
            o = u.order
            self.metrics.inc("raytrader_orders_total", {"venue": self.venue, "status": o.status.value})
            if u.kind is not UpdateKind.REJECTED or o.status is not OrderStatus.PENDING:
                ops.append(RecordAnswer(o, u.ts_ms))
            if u.fill is not None:
                ops.append(RecordFill(u.fill))
                self.metrics.inc("raytrader_fills_total", {"venue": self.venue})
        if self.paper is not None:
            ops.append(PutRecord("venue", self.venue, {"engine": self.paper.checkpoint()}))
            self.metrics.set(
                "raytrader_open_orders", len(self.paper.engine.open_orders()), {"venue": self.venue}
            )
        if ops:
            await self.store_call("batch", ops)
        self.progressed()

    def _taken(self) -> list[OrderUpdate]:
        """A simulated venue's own updates of the call just made (``[]`` for a real venue)."""
        return self.paper.take_updates() if self.paper is not None else []

    # ------------------------------------------------------------------ orders

    async def submit(self, order: Order, origin_ns: int | None = None) -> list[OrderUpdate]:
        """Place an order; a lost answer is resolved by looking the client id up, never by a blind resend."""
        await self.ready.wait()
        self.intents[order.client_id] = order
        view: Order | None = None
        try:
            view = await self.gateway.submit(order)
        except VenueError as exc:
            self._count_error(exc)
            if not exc.retryable:
                rejected = order.model_copy(update={"status": OrderStatus.REJECTED})
                updates = [self._update(UpdateKind.REJECTED, rejected, detail=exc.message)]
                await self._commit(updates)
                return updates
            log.warning(
                "venue %s: submit %s answer lost (%s); looking it up", self.venue, order.client_id, exc
            )
            view = await self._resolve_lost_submit(order, exc)
        if view is None:
            return []
        if self.paper is not None:
            updates = self._taken()
        else:
            merged = self._merge(view)
            self.views[order.client_id] = merged
            updates = [self._update(UpdateKind.ACCEPTED, merged)]
        await self._commit(updates)
        if origin_ns is not None and any(u.kind is UpdateKind.ACCEPTED for u in updates):
            self.metrics.observe("raytrader_tick_to_order_seconds", (time.time_ns() - origin_ns) / 1e9)
        return updates

    async def _resolve_lost_submit(self, order: Order, first: VenueError) -> Order | None:
        delay = first.retry_after_s or 0.2
        for _attempt in range(LOOKUP_ATTEMPTS):
            await asyncio.sleep(delay)
            try:
                seen = await self.gateway.order(order.client_id, order.market)
                if seen is not None:
                    return seen  # it did arrive: adopt it
                return await self.gateway.submit(order)  # it never arrived: now it is safe to send
            except VenueError as exc:
                self._count_error(exc)
                if not exc.retryable:
                    log.error("venue %s: %s refused while resolving: %s", self.venue, order.client_id, exc)
                    return None
                delay = min(5.0, (exc.retry_after_s or delay) * 2)
        log.error(
            "venue %s: %s still unresolved; the position reconciles it later", self.venue, order.client_id
        )
        self.views[order.client_id] = order  # polled as unfinished: if it did arrive, its fills are fetched
        return None

    def _market_of(self, client_id: str) -> str | None:
        known = self.intents.get(client_id) or self.views.get(client_id)
        if known is None and self.paper is not None:
            known = self.paper.engine.order(client_id)
        return None if known is None else known.market

    async def cancel(self, client_id: str) -> list[OrderUpdate]:
        await self.ready.wait()
        market = self._market_of(client_id)
        if market is None:
            return []
        try:
            view = self._merge(await self.gateway.cancel(client_id, market))
        except VenueError as exc:
            self._count_error(exc)
            if exc.kind is VenueErrorKind.NOT_FOUND:
                return []
            raise
        if self.paper is not None:
            updates = self._taken()
        else:
            self.views[client_id] = view
            kind = UpdateKind.CANCELLED if view.status is OrderStatus.CANCELLED else UpdateKind.UNCHANGED
            updates = [self._update(kind, view)]
        await self._commit(updates)
        return updates

    async def cancel_all(self, market: str | None = None) -> list[OrderUpdate]:
        await self.ready.wait()
        views = await self.gateway.cancel_all(market)
        if self.paper is not None:
            updates = self._taken()
        else:
            updates = [self._update(UpdateKind.CANCELLED, self._merge(v)) for v in views]
            for u in updates:
                self.views[u.order.client_id] = u.order
        await self._commit(updates)
        return updates

    async def order(self, client_id: str) -> Order | None:
        await self.ready.wait()
        if client_id in self.unregistered:  # "never seen" would invite a resend: answer only when known
            await self._register_unfinished()
            if client_id in self.unregistered:
                raise VenueError(self.venue, VenueErrorKind.UNAVAILABLE, f"{client_id} not re-registered yet")
        market = self._market_of(client_id)
        if market is None:
            return None
        view = await self.gateway.order(client_id, market)
        return None if view is None else self._merge(view)

    async def fills_for(self, client_id: str) -> list[Fill]:
        await self.ready.wait()
        market = self._market_of(client_id)
        if market is None:
            return []
        return [f for f in await self.gateway.fills(market) if f.client_id == client_id]

    async def open_orders(self, market: str | None = None) -> list[Order]:
        await self.ready.wait()
        return [self._merge(o) for o in await self.gateway.open_orders(market)]

    async def engine_clock(self) -> int:
        """The venue's clock: the latest data time a simulated venue saw, else the wall clock."""
        return self.paper.clock_ms() if self.paper is not None else wall_ms()

    # ------------------------------------------------------------------ a simulated venue's extras

    def _simulated(self) -> PaperGateway:
        if self.paper is None:
            raise TypeError(f"venue {self.venue} is live: its ground truth is the venue's own")
        return self.paper

    async def all_orders(self) -> list[Order]:
        return self._simulated().all_orders()

    async def all_fills(self) -> list[Fill]:
        return self._simulated().all_fills()

    async def freeze(self, market: str, frozen: bool = True) -> None:
        """Stop matching one market (tests and drills: an exit order that never fills)."""
        self._simulated().freeze(market, frozen)

    def _faults(self) -> VenueFaults:
        faults = self._simulated().faults
        if faults is None:
            raise PermissionError(f"venue {self.venue}: fault injection is off (runtime.fault_injection)")
        return faults

    async def inject_fault(self, kind: str, seconds: float = 0.0) -> dict[str, Any]:
        """Chaos only: inject a venue fault at this paper venue's edge (see actors.venues.faults);
        refused unless ``runtime.fault_injection`` is on, which live mode never allows."""
        faults = self._faults()
        faults.inject(kind, seconds)
        log.warning("venue %s: injecting %s (%ss)", self.venue, kind, seconds)
        return faults.status()

    async def fault_status(self) -> dict[str, Any]:
        return self._faults().status()

    async def clear_faults(self) -> dict[str, Any]:
        """End every window and disarm every call fault."""
        faults = self._faults()
        faults.clear()
        return faults.status()

    # ------------------------------------------------------------------ market data and fills

    async def on_market(self, events: Sequence[MarketEvent]) -> int:
        """Market data from a feed: a simulated venue matches resting orders and pushes fills to
        their owners; a real venue matches by itself and needs none of it. The fills have reached
        their owners when this returns: the feed's next prices meet positions (and their quiet
        bands) that know their fills, as the backtest's do."""
        if self.paper is None:
            return 0
        self.paper.on_market(events)
        updates = self._taken()
        await self._apply(updates, wait=True)
        return len(updates)

    async def _poll_loop(self) -> None:
        await self._every("fill poll", self._poll_interval, self._poll_turn)

    def _stream_config(self) -> UserStreamConfig | None:
        """This live venue's push stream settings (``live.<venue>.user_stream``), if it is on."""
        config = getattr(getattr(self.settings.live, self.venue, None), "user_stream", None)
        return config if isinstance(config, UserStreamConfig) and config.enabled else None

    def _poll_interval(self) -> float:
        poll = self.settings.runtime.venue_poll_s
        config = self._stream_config()
        return max(poll, config.backstop_poll_s) if self.stream_up and config is not None else poll

    async def _poll_turn(self) -> None:
        try:
            await self.poll_once()
        except VenueError as exc:  # expected weather (429, 5xx, timeouts): counted, not a stack trace
            self._count_error(exc)
            log.warning("venue %s: fill poll failed: %s", self.venue, exc)

    async def sync(self) -> int:
        """A stop's last look (after its cancels): one poll whose fills and status changes their
        positions have applied when it returns, so what filled before the cancel is on the books
        before the actors go. It waits for a poll already running and for every push still on
        its way, since a fill that poll marked seen is in no position yet. A simulated venue
        pushes its fills as it matches: only its pushes in flight to wait for."""
        count = 0 if self.paper is not None else await self.poll_once(wait=True)
        await self._delivered()
        return count

    async def _delivered(self) -> None:
        while self.deliveries:
            await asyncio.gather(*list(self.deliveries), return_exceptions=True)

    async def poll_once(self, wait: bool = False) -> int:
        """New fills and venue-side status changes of the orders we track, pushed to their owners
        (``wait``: and applied by them). Polls never overlap (see ``poll_lock``)."""
        async with self.poll_lock:
            return await self._poll(wait)

    async def _poll(self, wait: bool) -> int:
        if self.unregistered:
            await self._register_unfinished()
        updates: list[OrderUpdate] = []
        try:
            await self._poll_venue(updates)
        finally:  # a venue call failing halfway (a 503, a 429) loses none of what was found before it
            await self._apply(updates, wait)
        return len(updates)

    async def _poll_venue(self, updates: list[OrderUpdate]) -> None:
        """Add to ``updates`` the new fills of the orders awaiting them, then the orders the venue
        ended. A fill is marked seen only once its order was read: if that read fails, the next
        poll (or push) takes the fill again (pushes wait for ``poll_lock``, so none lands meanwhile)."""
        markets = {o.market for o in self.views.values() if self._awaiting_fills(o)}
        for market in sorted(markets):
            for fill in await self.gateway.fills(market):
                if fill.fill_id in self.seen_fills or fill.client_id not in self.intents:
                    continue
                view = await self.gateway.order(fill.client_id, market)
                order = self._merge(view) if view is not None else self.intents[fill.client_id]
                updates.append(self._fill_update(fill, order))
        for client_id, known in list(self.views.items()):
            if not known.is_open or any(u.order.client_id == client_id for u in updates):
                continue
            view = await self.gateway.order(client_id, known.market)
            ended = None if view is None else self._ended_update(known, view)
            if ended is not None:
                updates.append(ended)

    def _fill_update(self, fill: Fill, order: Order) -> OrderUpdate:
        """A new fill, now seen and accounted, and its order as the venue shows it."""
        self._account(fill)
        self.views[fill.client_id] = order
        return self._update(UpdateKind.FILL, order, fill=fill)

    def _ended_update(self, known: Order, view: Order) -> OrderUpdate | None:
        """The venue ended an order we knew open (cancelled, expired, rejected); else None."""
        if view.status is known.status or view.is_open:
            return None
        merged = self._merge(view)
        self.views[view.client_id] = merged
        kind = UpdateKind.CANCELLED if view.status is OrderStatus.CANCELLED else UpdateKind.UNCHANGED
        return self._update(kind, merged)

    async def _apply(self, updates: list[OrderUpdate], wait: bool = False) -> None:
        """Commit what a poll or a push found, then push it to the positions."""
        if updates:
            await self._commit(updates)
            await self._dispatch(updates, wait=wait)

    # ------------------------------------------------------------------ pushed updates

    async def _stream_loop(self, gateway: UserStreamGateway, config: UserStreamConfig) -> None:
        """Read the venue's pushes for ever; a stream that fails is started again."""
        while True:
            try:
                async for event in gateway.user_updates(config):
                    if isinstance(event, StreamState):
                        await self._stream_state(event)
                    else:
                        await self.on_pushed([event])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._count_error(exc)
                log.exception("venue %s: user stream failed; starting it again", self.venue)
            self._stream_changed(False)
            await asyncio.sleep(config.reconnect_s)

    def _stream_changed(self, up: bool) -> None:
        self.stream_up = up
        self.metrics.set("raytrader_user_stream_up", 1 if up else 0, {"venue": self.venue})

    async def _stream_state(self, state: StreamState) -> None:
        """Connected: one poll catches up on what was pushed while it was down (or before it
        opened), so no fill is lost; a reconnect is counted. Dropped: poll at the full rate."""
        self._stream_changed(state.connected)
        if not state.connected:
            log.warning("venue %s: user stream dropped; polling until it is back", self.venue)
            return
        if state.reconnect:
            self.metrics.inc("raytrader_user_stream_reconnects_total", {"venue": self.venue})
            log.info("venue %s: user stream re-opened (%d opens); catching up", self.venue, state.opened)
        await self._poll_turn()

    async def on_pushed(self, pushed: Sequence[OrderUpdate]) -> int:
        """Updates the venue pushed: new fills and orders it ended, committed and dispatched as a
        poll's (and under its lock: a fill is marked seen and pushed to its owner by one hand)."""
        async with self.poll_lock:
            updates: list[OrderUpdate] = []
            for p in pushed:
                client_id = p.order.client_id
                if client_id not in self.intents:
                    continue
                order = self._merge(p.order)
                if p.fill is not None:
                    if p.fill.fill_id in self.seen_fills:
                        continue
                    self.metrics.inc("raytrader_pushed_fills_total", {"venue": self.venue})
                    updates.append(self._fill_update(p.fill, order))
                    continue
                known = self.views.get(client_id)
                ended = None if known is None or not known.is_open else self._ended_update(known, order)
                if ended is not None:
                    updates.append(ended)
            await self._apply(updates)
            return len(updates)

    async def _dispatch(self, updates: list[OrderUpdate], wait: bool = False) -> None:
        by_owner: dict[str, list[OrderUpdate]] = {}
        delivered: list[asyncio.Future[None]] = []
        for u in updates:
            if u.order.position_id:
                by_owner.setdefault(u.order.position_id, []).append(u)
        for position_id, batch in by_owner.items():
            handle = try_actor(self.settings, position_name(position_id))
            if handle is None:
                log.warning(
                    "updates for %s but no such position actor: the supervisor reconciles", position_id
                )
                continue
            delivery = asyncio.ensure_future(self._deliver(handle.on_updates.remote(batch)))
            self.deliveries.add(delivery)
            delivery.add_done_callback(self.deliveries.discard)
            delivered.append(delivery)
        if wait:
            await asyncio.gather(*delivered, return_exceptions=True)

    async def _deliver(self, ref: Any) -> None:
        try:
            await ref
        except Exception as exc:  # the owner died or is restarting: it reconciles from the store
            log.warning("venue %s: a push to a position was not applied (%s)", self.venue, exc)

    # ------------------------------------------------------------------ reconciliation

    async def reconcile_startup(self) -> dict[str, Any]:
        """Before trading: compare the venue's open orders, our fills and balances with the store.

        Open orders the store never intended are cancelled (nothing owns them); intents the
        store thinks open are refreshed from the venue; fills the store lacks are recorded.
        """
        await self.ready.wait()
        report: dict[str, Any] = {
            "venue": self.venue,
            "cancelled_foreign": [],
            "refreshed": [],
            "new_fills": 0,
        }
        if self.paper is not None:
            return report  # a simulated venue's memory is the store's checkpoint: nothing to compare
        for order in await self.gateway.open_orders():
            if order.client_id not in self.intents:
                await self.gateway.cancel(order.client_id, order.market)
                report["cancelled_foreign"].append(order.client_id)
            else:
                self.views[order.client_id] = self._merge(order)
        updates: list[OrderUpdate] = []
        for client_id, intent in self.intents.items():
            if intent.status.is_terminal or client_id in self.views:
                continue
            view = await self.gateway.order(client_id, intent.market)
            if view is not None:
                merged = self._merge(view)
                self.views[client_id] = merged
                updates.append(
                    self._update(UpdateKind.UNCHANGED if merged.is_open else UpdateKind.CANCELLED, merged)
                )
                report["refreshed"].append(client_id)
        markets = {o.market for o in self.intents.values()}
        for market in sorted(markets):
            for fill in await self.gateway.fills(market):
                if fill.fill_id not in self.seen_fills and fill.client_id in self.intents:
                    self._account(fill)
                    updates.append(
                        self._update(UpdateKind.FILL, self._merge(self.intents[fill.client_id]), fill=fill)
                    )
                    report["new_fills"] += 1
        await self._commit(updates)
        report["balances"] = {k: str(v) for k, v in (await self.gateway.balances()).items() if v}
        log.info("venue %s startup reconciliation: %s", self.venue, report)
        return report


VenueActor = ray.remote(VenueShell)
