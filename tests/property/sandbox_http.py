"""The sandboxes in a server thread, and a plain blocking HTTP client to talk to them.

The sandboxes run in a server thread with its own event loop, so hypothesis can drive them with a
plain blocking HTTP client; their state is read on that loop's thread.
"""

from __future__ import annotations

import asyncio
import http.client
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from hypothesis import assume, currently_in_test_context

T = TypeVar("T")


class Served:
    """An event loop in a daemon thread; the sandboxes live on it, the tests talk HTTP to them."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-sandbox", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the loop's thread: the sandbox's state is only touched there."""

        async def wrapper() -> T:
            return fn()

        return self.run(wrapper())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def request(
    port: int, method: str, target: str, body: bytes | None = None, headers: dict[str, Any] | None = None
) -> tuple[int, bytes]:
    if currently_in_test_context():  # aiohttp's own HTTP parser refuses longer request lines (plain 400)
        assume(len(target) <= 8000)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def query_of(params: dict[str, str]) -> str:
    return urlencode(params, quote_via=quote)
