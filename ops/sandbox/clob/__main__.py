"""``python -m ops.sandbox.clob``: serve the sandbox CLOB on loopback until interrupted."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from decimal import Decimal

from ops.sandbox import clob
from ops.sandbox.clob.protocol import iso_ms
from ops.sandbox.clob.rest import serve_clob
from ops.sandbox.clob.venue import SandboxClob
from ops.sandbox.faults import FaultInjector

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m ops.sandbox.clob``: serve the sandbox CLOB on loopback until interrupted."""
    import argparse

    from ops.sandbox.faults import FaultPlan

    doc = clob.__doc__  # the package's headline, not this module's
    parser = argparse.ArgumentParser(
        prog="python -m ops.sandbox.clob", description=doc.splitlines()[0] if doc else None
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8802)
    parser.add_argument("--speed", type=float, default=1.0, help="sandbox seconds per wall second")
    parser.add_argument(
        "--start-ms", type=int, default=None, help="clock start (default: the data's first tick)"
    )
    parser.add_argument("--initial-usdc", default="1000", help="USDC credited to each new wallet")
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--chain-id", type=int, default=137)
    parser.add_argument("--fault-plan", default=None, help="a FaultPlan file (.toml or .json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    venue = SandboxClob(
        start_ms=args.start_ms,
        chain_id=args.chain_id,
        initial_usdc=Decimal(args.initial_usdc),
        page_size=args.page_size,
        speed=args.speed if args.speed > 0 else None,
    )
    faults = FaultInjector(FaultPlan.from_file(args.fault_plan)) if args.fault_plan else FaultInjector()

    async def run() -> None:
        runner = await serve_clob(venue, args.host, args.port, faults)
        log.info("sandbox clob on http://%s:%d (clock %s)", args.host, args.port, iso_ms(venue.now_ms))
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
