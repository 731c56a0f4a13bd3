"""``python -m ops.sandbox.binance``: serve the sandbox and print its URL and one account's keys."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json

from ops.sandbox import binance
from ops.sandbox.binance.protocol import BASE, QUOTE
from ops.sandbox.binance.venue import SandboxBinance
from ops.sandbox.faults import FaultInjector, FaultPlan


async def _serve_forever(args: argparse.Namespace) -> None:
    faults = FaultInjector(FaultPlan.from_file(args.fault_plan)) if args.fault_plan else None
    venue = SandboxBinance(start_bar=args.start_bar, weight_limit=args.weight_limit, faults=faults)
    url = await venue.start_server(args.host, args.port)
    creds = venue.create_account(
        {QUOTE: args.usdt, BASE: args.btc}, api_key=args.api_key, api_secret=args.api_secret
    )
    if args.speed > 0:
        venue.start_clock(args.speed)
    print(json.dumps({"rest_url": url, "ws_url": venue.ws_url, **creds.model_dump()}), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await venue.stop_server()


def main(argv: list[str] | None = None) -> None:
    """``python -m ops.sandbox.binance``: serve the sandbox and print its URL and one account's keys."""
    doc = binance.__doc__  # the package's headline, not this module's
    parser = argparse.ArgumentParser(
        prog="python -m ops.sandbox.binance", description=doc.splitlines()[0] if doc else None
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--start-bar", type=int, default=None, help="bar the replay starts at; the bars before are history"
    )
    parser.add_argument("--speed", type=float, default=0.0, help="market minutes per wall minute; 0 = manual")
    parser.add_argument("--weight-limit", type=int, default=6000)
    parser.add_argument("--usdt", default="10000")
    parser.add_argument("--btc", default="0")
    parser.add_argument("--api-key")
    parser.add_argument("--api-secret")
    parser.add_argument("--fault-plan", default=None, help="a FaultPlan file (.toml or .json)")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(args))


if __name__ == "__main__":
    main()
