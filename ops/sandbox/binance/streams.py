"""The sandbox's websocket streams, as Binance's spot streams and as ccxt.pro uses them.

``/ws/<stream>`` (raw), ``/stream?streams=a/b`` (combined, ``{"stream", "data"}``) and
``SUBSCRIBE``/``UNSUBSCRIBE``/``LIST_SUBSCRIPTIONS`` messages on either (how ccxt.pro
subscribes), for every replayed symbol: ``<symbol>@kline_1m`` (four updates a bar, ``x`` true on
the last; ``@kline_<interval>`` for the REST intervals, the 1m bars aggregated, ``x`` true on the
last update of the interval's last minute), ``<symbol>@trade``, ``<symbol>@aggTrade``,
``<symbol>@depth[@100ms]`` (diffs) and
``<symbol>@depth5|10|20`` (partial snapshots), ``<symbol>`` lower case (``btcusdt``).
``venue.faults`` gates every websocket message (``ops.sandbox.faults``: drops, delays).

User data streams ride the same sockets: ``/ws/<listenKey>`` (or ``/stream?streams=<listenKey>``)
receives the account's events (``_push_user``) while the listen key lives; the keys themselves
are made and kept alive by ``user_data``.

This is the lowest layer of the venue: the market model above it publishes through
``_broadcast``, and the venue's change signal (``wait_for``/``_notify``) lives here because
websocket subscriptions change the venue's state as much as the market does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web

from ops.sandbox.binance.protocol import INTERVALS_MS, fmt
from ops.sandbox.faults import FaultInjector

_DEPTH_STREAM_RE = re.compile(r"(?P<sym>[a-z0-9]+)@depth(?P<levels>5|10|20)?(@(100|1000)ms)?")


@dataclass(eq=False)
class _Conn:
    ws: web.WebSocketResponse
    path: str
    combined: bool
    streams: set[str] = field(default_factory=set)
    listen_keys: set[str] = field(default_factory=set)
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)


class BinanceStreams:
    """Websocket subscribers of the venue and what is sent to them; the venue's change signal."""

    def __init__(self, faults: FaultInjector | None, symbols: Iterable[str]) -> None:
        self.faults = faults if faults is not None else FaultInjector()
        self._stream_symbols = frozenset(s.lower() for s in symbols)
        self._conns: set[_Conn] = set()
        self._changed = asyncio.Event()
        self.listen_keys: dict[str, str] = {}
        """Live listen keys -> their account (``user_data`` makes, extends and ends them)."""
        self.listen_key_expiry: dict[str, float] = {}
        """Live listen keys -> when (wall clock) they lapse unless kept alive."""
        self.listen_key_ttl_s = 3600.0
        """Binance's 60 minutes; tests shorten it."""

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` holds; re-checked on every change of the venue's state."""
        async with asyncio.timeout(timeout):
            while not predicate():
                await self._changed.wait()

    def _notify(self) -> None:
        """Wake every ``wait_for``: set this generation's event, start a new one."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _broadcast(self, stream: str, payload: dict[str, Any]) -> None:
        if not self._conns:
            return
        raw: str | None = None
        wrapped: str | None = None
        for conn in self._conns:
            if stream not in conn.streams:
                continue
            if conn.combined:
                wrapped = wrapped or json.dumps({"stream": stream, "data": payload})
                conn.queue.put_nowait(wrapped)
            else:
                raw = raw or json.dumps(payload)
                conn.queue.put_nowait(raw)

    def _push_user(self, account: str, payload: dict[str, Any]) -> None:
        """One user data event to every socket listening with one of ``account``'s live keys."""
        text: str | None = None
        for conn in self._conns:
            key = next((k for k in conn.listen_keys if self.listen_keys.get(k) == account), None)
            if key is None:
                continue
            text = text or json.dumps(payload)
            conn.queue.put_nowait(json.dumps({"stream": key, "data": payload}) if conn.combined else text)

    def user_sockets(self, listen_key: str) -> int:
        """Live sockets listening with ``listen_key`` (tests wait on these instead of sleeping)."""
        return sum(1 for c in self._conns if listen_key in c.listen_keys)

    async def _close_user_sockets(self, listen_key: str) -> None:
        for conn in [c for c in self._conns if listen_key in c.listen_keys]:
            await conn.ws.close(code=1000, message=b"listen key closed")

    def _broadcast_kline(
        self,
        symbol: str,
        ts: int,
        o: Decimal,
        h: Decimal,
        lo: Decimal,
        c: Decimal,
        volume: Decimal,
        *,
        closed: bool,
        event_ms: int,
        interval: str = "1m",
    ) -> None:
        if not self._conns:
            return
        payload = {
            "e": "kline",
            "E": event_ms,
            "s": symbol,
            "k": {
                "t": ts,
                "T": ts + INTERVALS_MS[interval] - 1,
                "s": symbol,
                "i": interval,
                "f": -1,
                "L": -1,
                "o": fmt(o),
                "c": fmt(c),
                "h": fmt(h),
                "l": fmt(lo),
                "v": fmt(volume),
                "n": 0,
                "x": closed,
                "q": fmt(volume * c),
                "V": "0.00000000",
                "Q": "0.00000000",
                "B": "0",
            },
        }
        self._broadcast(f"{symbol.lower()}@kline_{interval}", payload)

    def kline_intervals(self, symbol: str) -> list[str]:
        """The kline intervals other than 1m someone streams for ``symbol`` (aggregated on demand)."""
        prefix = f"{symbol.lower()}@kline_"
        return sorted(
            {n.removeprefix(prefix) for c in self._conns for n in c.streams if n.startswith(prefix)} - {"1m"}
        )

    async def _ws_handler(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        combined = request.path.rstrip("/") == "/stream"
        if combined:
            names = request.query.get("streams", "").split("/")
        else:
            tail = request.match_info.get("streams", "")
            names = tail.split("/") if tail else []
        conn = _Conn(ws=ws, path=request.path, combined=combined)
        conn.streams.update(n for n in names if self._valid_stream(n))
        conn.listen_keys.update(n for n in names if n in self.listen_keys)
        self._conns.add(conn)
        self._notify()
        sender = asyncio.get_running_loop().create_task(self._ws_sender(conn))
        with self.faults.track_ws(request.path, ws):
            try:
                async for msg in ws:
                    if msg.type is WSMsgType.TEXT:
                        conn.queue.put_nowait(json.dumps(self._ws_command(conn, msg.data)))
                        self._notify()
                    elif msg.type is WSMsgType.ERROR:
                        break
            finally:
                self._conns.discard(conn)
                self._notify()
                conn.queue.put_nowait(None)
                with contextlib.suppress(asyncio.CancelledError):
                    await sender
                await ws.close()
        return ws

    async def _ws_sender(self, conn: _Conn) -> None:
        while True:
            item = await conn.queue.get()
            if item is None or conn.ws.closed:
                return
            if not await self.faults.ws_gate(conn.path):
                await conn.ws.close(code=1001, message=b"sandbox: injected drop")
                return
            try:
                await conn.ws.send_str(item)
            except (ConnectionError, RuntimeError):
                return

    def _ws_command(self, conn: _Conn, text: str) -> dict[str, Any]:
        try:
            msg = json.loads(text)
        except ValueError:
            return _ws_error(3, "Invalid JSON: expected value at line 1 column 1", None)
        if not isinstance(msg, dict):
            return _ws_error(2, "Invalid request: request must be an object", None)
        rid = msg.get("id")
        method = msg.get("method")
        params = msg.get("params", [])
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": sorted(conn.streams), "id": rid}
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE"):
            return _ws_error(2, f"Invalid request: unknown variant `{method}`", rid)
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            return _ws_error(2, "Invalid request: params must be a list of strings", rid)
        bad = [p for p in params if not self._valid_stream(p)]
        if bad:
            return _ws_error(2, f"Invalid request: invalid stream name {bad[0]!r}", rid)
        if method == "SUBSCRIBE":
            conn.streams.update(params)
        else:
            conn.streams.difference_update(params)
        return {"result": None, "id": rid}

    def subscriptions(self) -> list[set[str]]:
        """The streams of every live websocket (tests wait on these instead of sleeping)."""
        return [set(c.streams) for c in self._conns]

    async def close_websockets(self) -> None:
        for conn in list(self._conns):
            await conn.ws.close(code=1001, message=b"sandbox shutting down")

    def _valid_stream(self, name: str) -> bool:
        symbol, _, kind = name.partition("@")
        if symbol not in self._stream_symbols:
            return False
        if kind in ("trade", "aggTrade") or kind.removeprefix("kline_") in INTERVALS_MS:
            return True
        m = _DEPTH_STREAM_RE.fullmatch(name)
        return m is not None and m.group("sym") == symbol


def _ws_error(code: int, msg: str, rid: Any) -> dict[str, Any]:
    return {"error": {"code": code, "msg": msg}, "id": rid}
