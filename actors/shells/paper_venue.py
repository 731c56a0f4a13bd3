"""The paper venue actor: the shared matching engine behind an actor, durable through the store.

Calls that change the venue (submit, cancel, market data that fills resting orders) commit
the venue's answers, its fills and its own state in one store transaction before they
return, so a restarted venue knows every order and fill it ever acknowledged. Updates that
market data causes are pushed to the owning position actor; answers to a call go back to
the caller only (the owner is the caller).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import ray

from actors.core.fees import FeeModel
from actors.core.matching import MatchingEngine, OrderUpdate, UpdateKind
from actors.domain.model import Candle, Fill, Instrument, MarketEvent, Order, OrderBook, Settlement
from actors.shells.base import ActorShell, position_name, try_actor
from actors.shells.store import Op
from config.models import Settings

log = logging.getLogger(__name__)


@ray.remote
class PaperVenueActor(ActorShell):
    kind = "venue"

    def __init__(self, settings: Settings, venue: str, instruments: Sequence[Instrument]) -> None:
        self._shell_init(f"venue:{venue}", settings)
        self.venue = venue
        self.fees = FeeModel(settings.costs)
        self.frozen: set[str] = set()
        saved = ray.get(self.store.get.remote("venue", venue))
        if saved is not None:
            self.engine = MatchingEngine.from_state(saved["engine"], self.fees)
            log.info(
                "venue %s restored: %d orders, %d fills",
                venue,
                len(self.engine.orders()),
                self.engine.fill_count,
            )
        else:
            self.engine = MatchingEngine(self.fees)
        for instrument in instruments:
            self._add(instrument)
        self._shell_start()

    def _add(self, instrument: Instrument) -> None:
        if self.fees.trades_on(instrument.venue) and self.engine.instrument(instrument.market_id) is None:
            self.engine.add_instrument(instrument)

    def owned_orders(self) -> tuple[str, ...]:
        return tuple(o.client_id for o in self.engine.open_orders())

    def heartbeat_detail(self) -> dict[str, Any]:
        return {"open_orders": len(self.engine.open_orders()), "fills": self.engine.fill_count}

    # ------------------------------------------------------------------ durability

    async def _commit(self, updates: list[OrderUpdate]) -> None:
        """Answers, fills and the engine's state in one transaction."""
        ops: list[Op] = []
        for u in updates:
            if u.kind is UpdateKind.UNCHANGED:
                continue
            o = u.order
            self.metrics.inc("raytrader_orders_total", {"venue": self.venue, "status": o.status.value})
            if u.kind is not UpdateKind.REJECTED or o.status.value != "pending":
                ops.append(("answer", o, u.ts_ms))
            if u.fill is not None:
                ops.append(("fill", u.fill))
                self.metrics.inc("raytrader_fills_total", {"venue": self.venue})
        ops.append(("put", "venue", self.venue, {"engine": self.engine.state()}))
        await self.store_call("batch", ops)
        self.metrics.set("raytrader_open_orders", len(self.engine.open_orders()), {"venue": self.venue})
        self.progressed()

    # ------------------------------------------------------------------ orders

    async def submit(self, order: Order, origin_ns: int | None = None) -> list[OrderUpdate]:
        updates = self.engine.submit(order, order.created_ms)
        await self._commit(updates)
        if origin_ns is not None and any(u.kind is UpdateKind.ACCEPTED for u in updates):
            self.metrics.observe("raytrader_tick_to_order_seconds", (time.time_ns() - origin_ns) / 1e9)
        return updates

    def engine_now(self) -> int:
        """The venue's clock: the latest data time it has seen."""
        return self.engine.last_ms

    async def engine_clock(self) -> int:
        return self.engine_now()

    async def cancel(self, client_id: str) -> list[OrderUpdate]:
        updates = self.engine.cancel(client_id, self.engine_now())
        await self._commit(updates)
        return updates

    async def cancel_all(self, market: str | None = None) -> list[OrderUpdate]:
        updates = self.engine.cancel_all(market, now_ms=self.engine_now())
        await self._commit(updates)
        return updates

    async def order(self, client_id: str) -> Order | None:
        return self.engine.order(client_id)

    async def fills_for(self, client_id: str) -> list[Fill]:
        return self.engine.fills(client_id=client_id)

    async def open_orders(self, market: str | None = None) -> list[Order]:
        return self.engine.open_orders(market)

    async def all_orders(self) -> list[Order]:
        return self.engine.orders()

    async def all_fills(self) -> list[Fill]:
        return self.engine.fills()

    async def freeze(self, market: str, frozen: bool = True) -> None:
        """Stop matching one market (tests and drills: an exit order that never fills)."""
        if frozen:
            self.frozen.add(market)
        else:
            self.frozen.discard(market)

    # ------------------------------------------------------------------ market data

    async def on_market(self, events: Sequence[MarketEvent]) -> int:
        """Market data from a feed: match resting orders, push fills to their owners."""
        updates: list[OrderUpdate] = []
        for event in events:
            if isinstance(event, Instrument):
                self._add(event)
            elif isinstance(event, Candle):
                if event.market not in self.frozen:
                    updates += self.engine.on_candle(event, event.ts_ms + event.interval_ms)
            elif isinstance(event, OrderBook):
                if event.market not in self.frozen:
                    updates += self.engine.on_book(event, event.ts_ms)
            elif isinstance(event, Settlement):
                updates += self.engine.cancel_all(event.market, now_ms=event.ts_ms)
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
            handle = try_actor(self.settings, position_name(position_id))
            if handle is None:
                log.warning(
                    "updates for %s but no such position actor: the supervisor reconciles", position_id
                )
                continue
            handle.on_updates.remote(batch)
