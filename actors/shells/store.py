"""The Store actor: the one LMDB writer. Every durable change in the runtime goes through it.

Its methods run on one event loop, so writes are serialised without locks; each is committed
durably before it returns. Writes that arrive while the store is busy share one transaction
(:mod:`actors.store.group_commit`): one fsync for many checkpoints of the same price.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ray

from actors.domain.messages import (
    StoreOp,
)
from actors.domain.model import Fill, Order, OrderStatus
from actors.domain.names import STORE
from actors.shells.base import ActorShell
from actors.store.batch import Batch, apply_op
from actors.store.group_commit import GroupCommitter
from actors.store.lmdb_store import StateStore, StoreNotFoundError
from actors.store.records import pending_redemption
from config.models import Settings

log = logging.getLogger(__name__)


def store_path(settings: Settings) -> Path:
    return Path(settings.state_dir) / "store"


@ray.remote
class StoreActor(ActorShell):
    kind = "store"

    def __init__(self, settings: Settings) -> None:
        self._shell_init(STORE, settings)
        secrets = settings.secrets
        StateStore.register_secret_values(
            [secrets.binance_api_key, secrets.binance_api_secret, secrets.polymarket_private_key]
        )
        # A store Ray restarted (on whichever node had room) opens the file it had, or fails loudly:
        # creating an empty one where there is none would forget every position and order.
        restarted = ray.get_runtime_context().was_current_actor_reconstructed
        path = store_path(settings)
        try:
            self.db = StateStore(path, create=not restarted)
        except StoreNotFoundError:
            log.critical("store restarted on a node without %s: refusing to start an empty one", path)
            raise
        self.writes = 0
        self.group: GroupCommitter[Batch] = GroupCommitter(self.db.run_writes, self._committed)
        self._shell_start()

    def heartbeat_detail(self) -> dict[str, Any]:
        return {
            "writes": self.writes,
            "commits": self.group.commits,
            "largest_group": self.group.largest_group,
            "path": str(self.db.path),
            "map_full": self.db.map_full_events,
        }

    def _committed(self, writes: int, seconds: float) -> None:
        self.writes += writes
        self.metrics.observe("raytrader_checkpoint_seconds", seconds)
        self.progressed()

    async def put(self, kind: str, key: str, data: dict[str, Any]) -> None:
        await self.group.write(lambda tx: tx.put(kind, key, data))

    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        return self.db.get(kind, key)

    async def items(self, kind: str, prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
        return list(self.db.items(kind, prefix))

    async def delete(self, kind: str, key: str) -> bool:
        return bool(await self.group.write(lambda tx: tx.delete(kind, key)))

    async def batch(self, ops: Sequence[StoreOp]) -> list[Any]:
        """Several changes in one atomic, durable transaction; returns each op's result."""
        results: list[Any] = await self.group.write(lambda tx: [apply_op(tx, op) for op in ops])
        return results

    async def position_index(self) -> list[dict[str, Any]]:
        """Every position's id, open flag, status and market, without the heavy core state."""
        return [
            {
                "position_id": key,
                "open": bool(rec.get("open")),
                "status": rec.get("status"),
                "market": rec.get("market"),
                "strategy": rec.get("strategy"),
                "status_since_ms": rec.get("status_since_ms"),
                "close": rec.get("close"),
                "released": bool(rec.get("released", False)),
                "pool_returned": bool(rec.get("pool_returned", False)),
                "frozen": bool(rec.get("frozen", False)),
            }
            for key, rec in self.db.items("position")
        ]

    async def pending_redemptions(self) -> list[dict[str, Any]]:
        """Closed positions whose market resolved in their favour: winning shares to redeem on
        chain, which this project cannot send (issue 12): listed with the amount instead."""
        return [
            r for key, rec in self.db.items("position") if (r := pending_redemption(key, rec)) is not None
        ]

    async def unreadable_positions(self) -> list[tuple[str, str]]:
        """Position records that do not decode, ``(position_id, reason)``: not in the index above."""
        return self.db.unreadable("position")

    async def mark_released(self, position_id: str) -> bool:
        """The portfolio has booked this closed position (the supervisor released it for a dead actor)."""

        def release(tx: Batch) -> bool:
            record = tx.get("position", position_id)
            if record is None or record.get("released"):
                return False
            record["released"] = True
            tx.put("position", position_id, record)
            return True

        return bool(await self.group.write(release))

    async def unanswered_intents(self) -> list[Order]:
        return self.db.unanswered_intents()

    async def open_orders(self) -> list[Order]:
        return self.db.open_orders()

    async def orders(self, status: OrderStatus | None = None, strategy: str | None = None) -> list[Order]:
        return self.db.orders(status=status, strategy=strategy)

    async def fills(self, since_ms: int | None = None) -> list[Fill]:
        return self.db.fills(since_ms=since_ms)

    async def trades(
        self, strategy: str | None = None, since_ms: int | None = None
    ) -> list[tuple[int, dict[str, Any]]]:
        return self.db.trades(strategy=strategy, since_ms=since_ms)

    async def count(self, kind: str) -> int:
        return self.db.count(kind)

    async def inspect(self) -> dict[str, Any]:
        return self.db.inspect()

    async def fill_map(self) -> dict[str, Any]:
        """Chaos only: make the LMDB map full (:meth:`StateStore.fill_map`) so a write must grow it
        and run again; refused unless ``runtime.fault_injection`` is on (never in live mode)."""
        if not self.settings.runtime.fault_injection:
            raise PermissionError("store: fault injection is off (runtime.fault_injection)")
        size = self.db.fill_map()
        return {"map_size": size, **await self.map_status()}

    async def map_status(self) -> dict[str, Any]:
        """The map's size, writes that found it full, and whether a filled map awaits its first."""
        return {
            "map_size": int(self.db.inspect()["env"]["map_size"]),
            "map_full": self.db.map_full_events,
            "held_full": self.db.map_held_full,
        }

    async def sync_close(self) -> None:
        """Flush and close before the system stops (LMDB commits are already durable)."""
        self.db.close()
