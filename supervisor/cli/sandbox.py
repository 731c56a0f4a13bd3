"""`raytrader sandbox`: one local venue speaking Binance's spot API and Polymarket's CLOB API."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Annotated

import typer

from ops.sandbox.serve import serve_sandbox
from supervisor.cli.app import app


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Address to bind (loopback unless you mean it).")] = "127.0.0.1",
    binance_port: Annotated[int, typer.Option("--binance-port", help="Binance spot API port.")] = 8801,
    clob_port: Annotated[int, typer.Option("--clob-port", help="Polymarket CLOB API port.")] = 8802,
    binance_key: Annotated[
        str | None, typer.Option("--binance-key", help="API key to issue (default: random).")
    ] = None,
    binance_secret: Annotated[
        str | None, typer.Option("--binance-secret", help="Its secret (default: random).")
    ] = None,
    usdt: Annotated[
        str, typer.Option(help="Quote balance of the issued account (USDT, and USDC per wallet).")
    ] = "10000",
    speed: Annotated[
        float, typer.Option(help="Market time per wall time (0: frozen until advanced).")
    ] = 60.0,
    faults: Annotated[Path | None, typer.Option("--faults", help="A fault plan (.toml or .json).")] = None,
) -> None:
    """Serve a local venue: Binance's spot API and Polymarket's CLOB API, on the bundled data."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            serve_sandbox(
                host,
                binance_port,
                clob_port,
                binance_key=binance_key,
                binance_secret=binance_secret,
                usdt=usdt,
                speed=speed,
                faults=faults,
            )
        )
