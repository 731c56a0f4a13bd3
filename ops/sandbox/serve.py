"""Serve both sandbox venues in one event loop: Binance's spot API and Polymarket's CLOB API.

Library code shared by `raytrader sandbox`, the chaos harness and the live tests.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from decimal import Decimal
from pathlib import Path
from typing import Any


async def serve_sandbox(
    host: str,
    binance_port: int,
    clob_port: int,
    *,
    binance_key: str | None,
    binance_secret: str | None,
    usdt: str,
    speed: float,
    faults: Path | None,
    ready: asyncio.Event | None = None,
    info: dict[str, Any] | None = None,
) -> None:
    """Serve both venues until cancelled; fills ``info`` with endpoints and keys once up."""
    from ops.sandbox.binance import BASE, QUOTE, SandboxBinance
    from ops.sandbox.clob import SandboxClob, serve_clob
    from ops.sandbox.faults import FaultInjector, FaultPlan

    plan = FaultPlan.from_file(faults) if faults else None
    binance = SandboxBinance(faults=FaultInjector(plan) if plan else None)
    rest_url = await binance.start_server(host, binance_port)
    creds = binance.create_account(
        {QUOTE: usdt, BASE: "0"},
        api_key=binance_key or secrets.token_hex(32),
        api_secret=binance_secret or secrets.token_hex(32),
    )
    clob = SandboxClob(speed=speed if speed > 0 else None, initial_usdc=Decimal(usdt))
    runner = await serve_clob(clob, host, clob_port, FaultInjector(plan) if plan else None)
    clob_port_bound = runner.addresses[0][1] if runner.addresses else clob_port
    if speed > 0:
        binance.start_clock(speed)
        clob.start_clock()
    details = {
        "binance": {
            "rest_url": rest_url,
            "ws_url": binance.ws_url,
            "api_key": creds.api_key,
            "api_secret": creds.api_secret,
            "markets": [m.market for m in binance.symbols.values()],
            "history_bars": binance.bar_index,
        },
        "polymarket": {
            "url": f"http://{host}:{clob_port_bound}",
            "ws_url": f"ws://{host}:{clob_port_bound}/ws/market",
            "rtds_url": f"ws://{host}:{clob_port_bound}/rtds",
            "auth": "any wallet: create or derive API credentials with L1 auth",
        },
        "ground_truth": {
            "binance": f"{rest_url}/_sandbox/orders",
            "polymarket": f"http://{host}:{clob_port_bound}/_sandbox/orders",
        },
    }
    if info is not None:
        info.update(details)
    if ready is not None:
        ready.set()
    else:
        print(json.dumps(details, indent=2), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await clob.stop_clock()
        await runner.cleanup()
        await binance.stop_server()
