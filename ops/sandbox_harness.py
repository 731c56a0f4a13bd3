"""The sandbox venues driven from a harness or test process: both served in a background thread,
and the Binance sandbox's ground truth (every order and fill it holds) read over its admin API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import urllib.request
from typing import Any

from actors.domain.model import Fill, Order


def http_json(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    """One JSON request from this process (the sandbox's ``/_sandbox`` admin endpoints)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        return json.loads(response.read() or b"null")


def sandbox_ground_truth(base_url: str) -> tuple[list[Order], list[Fill]]:
    """Every order and fill the Binance sandbox holds, fill ids as the gateway reports them."""
    orders = [
        Order.model_validate({k: v for k, v in o.items() if k in Order.model_fields})
        for o in http_json("GET", f"{base_url}/_sandbox/orders")["orders"]
    ]
    fills = []
    for raw in http_json("GET", f"{base_url}/_sandbox/fills")["fills"]:
        data = {k: v for k, v in raw.items() if k in Fill.model_fields}
        # a one-symbol sandbox names no symbol per fill
        data["fill_id"] = f"binance:{raw.get('symbol', 'BTCUSDT')}:{raw['trade_id']}"
        fills.append(Fill.model_validate(data))
    return orders, fills


class SandboxThread:
    """Both sandbox venues in a background thread with their own event loop (live-mode tests)."""

    def __init__(self, speed: float) -> None:
        from ops.sandbox.serve import serve_sandbox

        self.info: dict[str, Any] = {}
        self.loop = asyncio.new_event_loop()
        self._task: asyncio.Task[None] | None = None

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self._task = self.loop.create_task(
                serve_sandbox(
                    "127.0.0.1",
                    0,
                    0,
                    binance_key=None,
                    binance_secret=None,
                    usdt="10000",
                    speed=speed,
                    faults=None,
                    ready=asyncio.Event(),
                    info=self.info,
                )
            )
            with contextlib.suppress(asyncio.CancelledError):
                self.loop.run_until_complete(self._task)

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.info.get("binance"):
            if time.monotonic() > deadline:
                raise RuntimeError("the sandbox did not start")
            time.sleep(0.05)

    @property
    def binance_url(self) -> str:
        return str(self.info["binance"]["rest_url"])

    def stop(self) -> None:
        if self._task is not None:
            self.loop.call_soon_threadsafe(self._task.cancel)
        self.thread.join(timeout=10)
