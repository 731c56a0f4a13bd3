"""The live venue actor: the paper venue's interface over a real client library's gateway.

Positions call it exactly as they call the paper venue. The difference is what happens when
an answer is lost: a submit that fails with a retryable error (timeout, 5xx, 429) may or may
not have reached the venue, so the order is looked up by its client id first and sent again
only if the venue never saw it. Fills are polled from the venue and pushed to their owners;
every answer and fill is committed to the store, like the paper venue's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import ray

from actors.core.matching import OrderUpdate, Reason, UpdateKind
from actors.domain.model import Fill, Instrument, MarketEvent, Order, OrderStatus
from actors.shells.base import ActorShell, position_name, wall_ms
from actors.shells.store import Op
from actors.venues.factory import make_gateway
from actors.venues.gateway import VenueError, VenueErrorKind
from config.models import Settings

log = logging.getLogger(__name__)

LOOKUP_ATTEMPTS = 5


@ray.remote
class LiveVenueActor(ActorShell):
    kind = "venue"

    def __init__(self, settings: Settings, venue: str, instruments: Sequence[Instrument]) -> None:  # noqa: ARG002
        self._shell_init(f"venue:{venue}", settings)
        self.venue = venue
        self.gateway = make_gateway(settings, venue)
        self.intents: dict[str, Order] = {}
        self.views: dict[str, Order] = {}
        self.seen_fills: set[str] = set()
        self.accounted: dict[str, Decimal] = {}
        """Quantity of each order's fills already seen: an order filled beyond it has fills to fetch."""
        self.seq = 0
        self.errors: dict[str, int] = {}
        self.ready = asyncio.Event()
        self.start_error: str | None = None
        self._shell_start()
        self._spawn(self._startup())

    # ------------------------------------------------------------------ startup

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
        for order in await self.store_call("orders"):
            if order.market.split(":", 1)[0] == self.venue:
                self.intents[order.client_id] = order
                register = getattr(self.gateway, "register", None)
                if register is not None and order.status is not OrderStatus.REJECTED:
                    await register(order)  # gateways that derive venue ids from the order relearn them
        for fill in await self.store_call("fills"):
            self._account(fill)
        for order in self.intents.values():
            if self._awaiting_fills(order):  # unfinished, or filled beyond the fills we hold
                self.views[order.client_id] = order
        self.ready.set()
        self._spawn(self._poll_loop())

    def _account(self, fill: Fill) -> None:
        self.seen_fills.add(fill.fill_id)
        self.accounted[fill.client_id] = self.accounted.get(fill.client_id, Decimal(0)) + fill.qty

    def _awaiting_fills(self, order: Order) -> bool:
        """Open, or reported filled beyond the fills we have seen (fills still to fetch)."""
        return order.is_open or order.filled_qty > self.accounted.get(order.client_id, Decimal(0))

    def heartbeat_detail(self) -> dict[str, Any]:
        return {
            "ready": self.ready.is_set(),
            "start_error": self.start_error,
            "tracked_orders": sum(1 for o in self.views.values() if o.is_open),
            "errors": dict(self.errors),
        }

    def owned_orders(self) -> tuple[str, ...]:
        return tuple(cid for cid, o in self.views.items() if o.is_open)

    def _count_error(self, exc: BaseException) -> None:
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
        self,
        kind: UpdateKind,
        order: Order,
        fill: Fill | None = None,
        reason: Reason | None = None,
        detail: str = "",
    ) -> OrderUpdate:
        self.seq += 1
        return OrderUpdate(
            seq=self.seq, kind=kind, ts_ms=wall_ms(), order=order, fill=fill, reason=reason, detail=detail
        )

    async def _commit(self, updates: list[OrderUpdate]) -> None:
        ops: list[Op] = []
        for u in updates:
            if u.kind is UpdateKind.UNCHANGED:
                continue
            ops.append(("answer", u.order, u.ts_ms))
            self.metrics.inc("raytrader_orders_total", {"venue": self.venue, "status": u.order.status.value})
            if u.fill is not None:
                ops.append(("fill", u.fill))
                self.metrics.inc("raytrader_fills_total", {"venue": self.venue})
        if ops:
            await self.store_call("batch", ops)
        self.progressed()

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
        merged = self._merge(view)
        self.views[order.client_id] = merged
        updates = [self._update(UpdateKind.ACCEPTED, merged)]
        await self._commit(updates)
        if origin_ns is not None:
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
        return None

    async def cancel(self, client_id: str) -> list[OrderUpdate]:
        await self.ready.wait()
        intent = self.intents.get(client_id) or self.views.get(client_id)
        if intent is None:
            return []
        try:
            view = self._merge(await self.gateway.cancel(client_id, intent.market))
        except VenueError as exc:
            self._count_error(exc)
            if exc.kind is VenueErrorKind.NOT_FOUND:
                return []
            raise
        self.views[client_id] = view
        kind = UpdateKind.CANCELLED if view.status is OrderStatus.CANCELLED else UpdateKind.UNCHANGED
        updates = [self._update(kind, view)]
        await self._commit(updates)
        return updates

    async def cancel_all(self, market: str | None = None) -> list[OrderUpdate]:
        await self.ready.wait()
        views = await self.gateway.cancel_all(market)
        updates = [self._update(UpdateKind.CANCELLED, self._merge(v)) for v in views]
        for u in updates:
            self.views[u.order.client_id] = u.order
        await self._commit(updates)
        return updates

    async def order(self, client_id: str) -> Order | None:
        await self.ready.wait()
        intent = self.intents.get(client_id)
        if intent is None:
            return None
        view = await self.gateway.order(client_id, intent.market)
        return None if view is None else self._merge(view)

    async def fills_for(self, client_id: str) -> list[Fill]:
        await self.ready.wait()
        intent = self.intents.get(client_id)
        if intent is None:
            return []
        return [f for f in await self.gateway.fills(intent.market) if f.client_id == client_id]

    async def open_orders(self, market: str | None = None) -> list[Order]:
        await self.ready.wait()
        return [self._merge(o) for o in await self.gateway.open_orders(market)]

    async def on_market(self, events: Sequence[MarketEvent]) -> int:  # noqa: ARG002
        """A live venue matches orders itself; market data is not needed here."""
        return 0

    async def engine_clock(self) -> int:
        return wall_ms()

    # ------------------------------------------------------------------ fills

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.runtime.venue_poll_s)
            try:
                await self.poll_once()
            except Exception as exc:
                self._count_error(exc)
                log.warning("venue %s: fill poll failed: %s", self.venue, exc)

    async def poll_once(self) -> int:
        """New fills and venue-side status changes of the orders we track, pushed to their owners."""
        markets = {o.market for o in self.views.values() if self._awaiting_fills(o)}
        updates: list[OrderUpdate] = []
        for market in sorted(markets):
            for fill in await self.gateway.fills(market):
                if fill.fill_id in self.seen_fills or fill.client_id not in self.intents:
                    continue
                self._account(fill)
                view = await self.gateway.order(fill.client_id, market)
                order = self._merge(view) if view is not None else self.intents[fill.client_id]
                self.views[fill.client_id] = order
                updates.append(self._update(UpdateKind.FILL, order, fill=fill))
        for client_id, known in list(self.views.items()):
            if not known.is_open or any(u.order.client_id == client_id for u in updates):
                continue
            view = await self.gateway.order(client_id, known.market)
            if view is not None and view.status is not known.status and not view.is_open:
                merged = self._merge(view)
                self.views[client_id] = merged
                kind = UpdateKind.CANCELLED if view.status is OrderStatus.CANCELLED else UpdateKind.UNCHANGED
                updates.append(self._update(kind, merged))
        if updates:
            await self._commit(updates)
            await self._dispatch(updates)
        return len(updates)

    async def _dispatch(self, updates: list[OrderUpdate]) -> None:
        by_owner: dict[str, list[OrderUpdate]] = {}
        for u in updates:
            if u.order.position_id:
                by_owner.setdefault(u.order.position_id, []).append(u)
        for position_id, batch in by_owner.items():
            handle = self.handle(position_name(position_id))
            if handle is not None:
                handle.on_updates.remote(batch)

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
