"""Binance's user data stream over a listen key: open it, keep it alive, read it, re-open a drop.

As Binance documents the (spot, listen key) stream: ``POST /api/v3/userDataStream`` answers the
account's listen key (the live one, extended, or a new one), ``PUT`` keeps it alive for 60
minutes (sent every ``keepalive_s``, Binance recommends 30 min), and ``<stream host>/ws/<listenKey>``
pushes the account's events. A connection ends at the latest after 24 hours, on a network fault,
when the server closes it (a ``drop_ws`` fault in the sandbox), when the heartbeat goes unanswered
(aiohttp pings every ``heartbeat_s``), or after ``listenKeyExpired``; each is detected here and the
stream is re-opened after ``reconnect_s`` with a ``POST`` (a new key only if the old one lapsed);
attempts that fail to open back off (doubling, up to ``MAX_REOPEN_S``).
A keep-alive answered -1125 (the key is gone) closes the socket, which re-opens it the same way.

``messages`` yields every event as Binance sends it (the combined form's ``data`` unwrapped) and a
``StreamState`` on each connect and drop; the gateway (``gateway.BinanceGateway.user_updates``)
turns the ``executionReport`` events into order updates and fills.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import aiohttp

from actors.venues.gateway import VenueError
from actors.venues.user_stream import StreamState
from config.models import UserStreamConfig

log = logging.getLogger(__name__)

MAX_REOPEN_S = 30.0
"""The longest wait between attempts to open a stream that keeps failing to open."""

ListenKeyCall = Callable[[str, dict[str, str]], Awaitable[Any]]
"""``(method, params)`` -> the answer of ``<method> /api/v3/userDataStream`` (Post, Put, Delete)."""


class ListenKeyStream:
    """One account's user data stream, re-opened whenever it drops."""

    def __init__(
        self, call: ListenKeyCall, ws_url: str, config: UserStreamConfig, heartbeat_s: float = 30.0
    ) -> None:
        self._call = call
        self.ws_url = ws_url.rstrip("/")
        self.config = config
        self.heartbeat_s = heartbeat_s
        self.listen_key: str | None = None
        self.opened = 0
        self.keepalives = 0

    async def messages(self) -> AsyncGenerator[dict[str, Any] | StreamState, None]:
        delay = self.config.reconnect_s
        async with aiohttp.ClientSession() as session:
            while True:
                before = self.opened
                try:
                    async with contextlib.aclosing(self._connection(session)) as connection:
                        async for message in connection:
                            yield message
                except (aiohttp.ClientError, TimeoutError, OSError, VenueError) as exc:
                    log.warning("binance user stream: %s", exc)
                if self.opened > before:  # it was up: say it dropped, re-open at once
                    delay = self.config.reconnect_s
                    yield StreamState(connected=False, opened=self.opened)
                else:  # it could not open: back off, up to MAX_REOPEN_S
                    delay = min(MAX_REOPEN_S, delay * 2)
                log.warning("binance user stream down; re-opening in %.1fs", delay)
                await asyncio.sleep(delay)

    async def _connection(
        self, session: aiohttp.ClientSession
    ) -> AsyncGenerator[dict[str, Any] | StreamState, None]:
        """One connection's events, from its listen key to its end (which returns)."""
        key = str((await self._call("Post", {}))["listenKey"])
        self.listen_key = key
        async with session.ws_connect(f"{self.ws_url}/{key}", heartbeat=self.heartbeat_s) as ws:
            self.opened += 1
            keepalive = asyncio.get_running_loop().create_task(self._keep_alive(key, ws))
            try:
                yield StreamState(connected=True, opened=self.opened)
                async for msg in ws:
                    if msg.type is aiohttp.WSMsgType.ERROR:
                        return
                    if msg.type is not aiohttp.WSMsgType.TEXT:
                        continue
                    event = _event(msg.data)
                    if event is None:
                        log.warning("binance user stream: not an event: %.200s", msg.data)
                        continue
                    if event.get("e") == "listenKeyExpired":
                        log.warning("binance user stream: listen key expired")
                        return
                    yield event
            finally:
                keepalive.cancel()

    async def _keep_alive(self, key: str, ws: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            await asyncio.sleep(self.config.keepalive_s)
            try:
                await self._call("Put", {"listenKey": key})
                self.keepalives += 1
            except VenueError as exc:
                if exc.retryable:
                    log.warning(
                        "binance listen key keep-alive failed (%s); next one in %.0fs",
                        exc,
                        self.config.keepalive_s,
                    )
                    continue
                log.warning("binance listen key gone (%s); re-opening the stream", exc)
                await ws.close()
                return


def _event(text: str) -> dict[str, Any] | None:
    """The event of one message: raw, or wrapped by a combined stream (``data``)."""
    try:
        raw = json.loads(text)
    except ValueError:
        return None
    if isinstance(raw, dict) and isinstance(raw.get("data"), dict):
        raw = raw["data"]
    return raw if isinstance(raw, dict) and "e" in raw else None
