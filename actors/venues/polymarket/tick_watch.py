"""The market channel of the tokens a gateway trades, read for their tick changes.

Why: Polymarket changes a market's tick while it trades (finer near 0 and 1) and announces it
only on the market channel (``tick_size_change``); py-clob-client caches ``/tick-size`` for
300 s, so an order signed on the old tick would be rejected by the venue. The gateway learns
the change here the moment it is pushed. A ``book`` snapshot (a new or re-opened subscription)
says nothing about ticks: the gateway then forgets what it was told and reads ``/tick-size``
afresh, so a change missed while disconnected is never trusted stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from decimal import Decimal

from actors.venues.polymarket.market_stream import BookMessage, TickSizeMessage, polymarket_market_stream

log = logging.getLogger(__name__)


class TickWatch:
    """One market-channel subscription for every token watched (re-opened when one is added)."""

    def __init__(
        self,
        url: str,
        on_tick: Callable[[str, Decimal], None],
        on_snapshot: Callable[[str], None],
    ) -> None:
        self.url = url
        self.tokens: set[str] = set()
        self._on_tick = on_tick
        self._on_snapshot = on_snapshot
        self._task: asyncio.Task[None] | None = None

    def watch(self, token: str) -> None:
        """Follow ``token``'s tick from now on (call from the event loop)."""
        if token in self.tokens:
            return
        self.tokens.add(token)
        if self._task is not None:
            self._task.cancel()
        self._task = asyncio.get_running_loop().create_task(self._run(sorted(self.tokens)))

    async def _run(self, tokens: list[str]) -> None:
        stream = polymarket_market_stream(self.url, tokens)
        try:
            async for message in stream:
                if isinstance(message, TickSizeMessage):
                    self._on_tick(message.asset_id, message.new_tick_size)
                elif isinstance(message, BookMessage) and message.kind == "book":
                    self._on_snapshot(message.asset_id)
        finally:
            await stream.aclose()

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
