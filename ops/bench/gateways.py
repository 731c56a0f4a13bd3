"""Venue gateway throughput and latency against the local sandboxes (127.0.0.1 only).

    python ops/bench/gateways.py [--out FILE] [--cycles N] [--quick]

For each venue, place + cancel cycles through the real client library:

* Binance: ``BinanceGateway`` (ccxt async, signed REST) -> ``SandboxBinance``;
* Polymarket: ``PolymarketGateway`` (py-clob-client, EIP-712 signed orders, L2 HMAC headers,
  blocking calls in worker threads) -> ``SandboxClob``.

Each sandbox runs in its own child process (its own interpreter and event loop), so the
gateway and the venue do not share a GIL or a loop, as they would not in production. A cycle
is: ``submit`` a GTC limit buy far below the market (it rests, never fills), then ``cancel``
it by client id. Both calls are timed one by one (``time.perf_counter`` around the awaited
gateway call, i.e. everything the caller waits for: signing, HTTP, parsing, and for
Polymarket the read-back of the order the gateway does after posting and after cancelling).

Figures, per venue:

* ``sequential``: one call in flight; orders/s = cycles / wall time; p50/p99/max per call;
* ``concurrent``: ``--concurrency`` cycles in flight at once (throughput under pipelining);
* ``transport``: p50/p99 of a bare unauthenticated GET on the same server (aiohttp), the
  floor under every gateway call.

The Binance sandbox's request-weight limit is raised for the benchmark (6,000/min, Binance's
own default, would allow 50 place+cancel cycles/s at weight 1+1) and ccxt's own client-side
throttle is off; both are reported in the JSON, with what Binance itself would allow.
Results go to ops/bench/results/gateways.json (or ``--out``) and a summary to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from supervisor.research.performance import percentile as pct  # noqa: E402  (the one quantile rule)

DEFAULT_OUT = ROOT / "ops/bench/results/gateways.json"
HOST = "127.0.0.1"
BENCH_WEIGHT_LIMIT = 10**9
# A throwaway key derived from a fixed text (never funded anywhere; the sandbox credits it).
POLY_KEY_TEXT = "raytrader gateway benchmark wallet"


# --------------------------------------------------------------------------- sandboxes (child processes)


def _serve_binance(conn: Any) -> None:
    """Child process: the Binance sandbox with one funded account; reports its URL and keys."""
    from ops.sandbox.binance.venue import SandboxBinance

    async def main() -> None:
        venue = SandboxBinance(start_bar=100, weight_limit=BENCH_WEIGHT_LIMIT)
        url = await venue.start_server(HOST, 0)
        creds = venue.create_account({"USDT": "100000000", "BTC": "10"})
        conn.send({"url": url, "api_key": creds.api_key, "api_secret": creds.api_secret})
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, conn.recv)  # any message (or EOF) means stop
        orders = len(venue.orders())
        await venue.stop_server()
        conn.send({"orders_at_venue": orders})

    asyncio.run(main())


def _serve_clob(conn: Any) -> None:
    """Child process: the CLOB sandbox, clock frozen (markets stay open); reports its URL."""
    from ops.sandbox.clob import SandboxClob, serve_clob

    async def main() -> None:
        venue = SandboxClob(initial_usdc=Decimal(1_000_000), speed=None)
        runner = await serve_clob(venue, HOST, 0)
        port = runner.addresses[0][1]
        up, _down = venue.open_markets()[0].token_ids
        book = venue.current_book(up)
        conn.send({"url": f"http://{HOST}:{port}", "token": up, "best_bid": str(book.best_bid)})
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, conn.recv)
        orders = len(venue.orders())
        await runner.cleanup()
        conn.send({"orders_at_venue": orders})

    asyncio.run(main())


class Child:
    """A sandbox in a child process; always stopped (and, failing that, killed) on exit."""

    def __init__(self, target: Callable[[Any], None]) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child_conn = ctx.Pipe()
        self.proc = ctx.Process(target=target, args=(child_conn,), daemon=True)
        self.final: dict[str, Any] = {}

    def __enter__(self) -> dict[str, Any]:
        self.proc.start()
        if not self.conn.poll(120):
            self.proc.kill()
            raise RuntimeError("sandbox did not start within 120 s")
        info: dict[str, Any] = self.conn.recv()
        return info

    def __exit__(self, *exc: object) -> None:
        try:
            self.conn.send("stop")
            if self.conn.poll(20):
                self.final = self.conn.recv()
        except (OSError, EOFError):
            pass
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


# --------------------------------------------------------------------------- statistics


def summary_ms(values: list[float]) -> dict[str, Any]:
    ms = [v * 1000 for v in values]
    return {
        "count": len(ms),
        "p50_ms": _r(pct(ms, 0.50)),
        "p90_ms": _r(pct(ms, 0.90)),
        "p99_ms": _r(pct(ms, 0.99)),
        "max_ms": _r(max(ms) if ms else None),
        "mean_ms": _r(statistics.fmean(ms) if ms else None),
    }


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


async def timed(samples: list[float], call: Awaitable[Any]) -> Any:
    started = time.perf_counter()
    result = await call
    samples.append(time.perf_counter() - started)
    return result


# --------------------------------------------------------------------------- the cycles


async def run_cycles(
    place: Callable[[str], Awaitable[Any]],
    cancel: Callable[[str], Awaitable[Any]],
    check_placed: Callable[[Any], None],
    check_cancelled: Callable[[Any], None],
    prefix: str,
    cycles: int,
    concurrency: int,
) -> dict[str, Any]:
    """``cycles`` place+cancel cycles, ``concurrency`` of them in flight; per-call latencies."""
    place_s: list[float] = []
    cancel_s: list[float] = []
    errors: list[str] = []
    counter = iter(range(cycles))

    async def worker() -> None:
        for n in counter:
            cid = f"{prefix}{n}"
            try:
                placed = await timed(place_s, place(cid))
                check_placed(placed)
                cancelled = await timed(cancel_s, cancel(cid))
                check_cancelled(cancelled)
            except Exception as exc:  # counted and reported, the run goes on
                errors.append(f"{cid}: {type(exc).__name__}: {exc}"[:300])

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    done = len(cancel_s)
    return {
        "cycles": cycles,
        "concurrency": concurrency,
        "wall_s": round(wall, 3),
        "orders_per_s": round(done / wall, 1),
        "calls_per_s": round((len(place_s) + len(cancel_s)) / wall, 1),
        "submit": summary_ms(place_s),
        "cancel": summary_ms(cancel_s),
        "errors": len(errors),
        "first_errors": errors[:5],
    }


async def transport_floor(url: str, path: str, n: int) -> dict[str, Any]:
    """Round trips of a bare GET on the same server: what any call costs at least."""
    import aiohttp

    samples: list[float] = []
    async with aiohttp.ClientSession() as session:
        for _ in range(n):
            started = time.perf_counter()
            async with session.get(url + path) as resp:
                await resp.read()
            samples.append(time.perf_counter() - started)
    return {"path": path, **summary_ms(samples)}


async def bench_binance(info: dict[str, Any], cycles: int, concurrency: int) -> dict[str, Any]:
    from pydantic import SecretStr

    from actors.domain.model import Order, OrderStatus, Side
    from actors.venues.binance.gateway import BinanceGateway

    gw = BinanceGateway(
        rest_url=info["url"],
        api_key=SecretStr(info["api_key"]),
        api_secret=SecretStr(info["api_secret"]),
        rate_limit=False,
        use_websockets=False,
        timeout_ms=10_000,
    )
    gw.exchange.timeout_on_exit = 0
    market = "binance:BTC/USDT"
    try:
        await gw.start()
        bid = (await gw.order_book(market)).best_bid
        assert bid is not None
        price = (bid * Decimal("0.5")).quantize(Decimal("0.01"))  # rests, never fills

        async def place(cid: str) -> Any:
            return await gw.submit(
                Order(client_id=cid, market=market, side=Side.BUY, price=price, qty=Decimal("0.001"))
            )

        async def cancel(cid: str) -> Any:
            return await gw.cancel(cid, market)

        def placed_ok(order: Any) -> None:
            if order.status is not OrderStatus.OPEN:
                raise AssertionError(f"placed order is {order.status}")

        def cancelled_ok(order: Any) -> None:
            if order.status is not OrderStatus.CANCELLED:
                raise AssertionError(f"cancelled order is {order.status}")

        await run_cycles(place, cancel, placed_ok, cancelled_ok, "warm-", 20, 1)  # connections, markets
        seq = await run_cycles(place, cancel, placed_ok, cancelled_ok, "seq-", cycles, 1)
        conc = await run_cycles(place, cancel, placed_ok, cancelled_ok, "con-", cycles, concurrency)
        floor = await transport_floor(info["url"], "/api/v3/ping", 200)
        left_open = len(await gw.open_orders(market))
    finally:
        await gw.close()
    return {
        "client": "BinanceGateway over ccxt.async_support (signed REST, HMAC-SHA256)",
        "order": f"GTC limit buy 0.001 BTC at {price} (half the bid): rests, never fills",
        "sequential": seq,
        "concurrent": conc,
        "transport": floor,
        "open_orders_left": left_open,
        "rate_limits": {
            "sandbox_weight_limit_used": BENCH_WEIGHT_LIMIT,
            "binance_default_weight_per_min": 6000,
            "cycles_per_s_allowed_by_weight_6000": 50.0,
            "binance_orders_limit": "100 orders / 10 s per account (10 orders/s), 200,000 / day",
            "ccxt_enableRateLimit": False,
        },
    }


async def bench_polymarket(info: dict[str, Any], cycles: int, concurrency: int) -> dict[str, Any]:
    from eth_account import Account
    from eth_utils.crypto import keccak

    from actors.domain.model import Order, OrderStatus, Side
    from actors.venues.polymarket.gateway import PolymarketGateway

    key = "0x" + bytes(Account.from_key(keccak(text=POLY_KEY_TEXT)).key).hex()
    gw = PolymarketGateway(info["url"], key)
    market = f"polymarket:{info['token']}"
    price = Decimal("0.01")  # the lowest tick: rests below any modelled bid
    qty = Decimal(5)  # the minimum order size

    async def place(cid: str) -> Any:
        return await gw.submit(Order(client_id=cid, market=market, side=Side.BUY, price=price, qty=qty))

    async def cancel(cid: str) -> Any:
        return await gw.cancel(cid, market)

    def placed_ok(order: Any) -> None:
        if order.status is not OrderStatus.OPEN:
            raise AssertionError(f"placed order is {order.status}")

    def cancelled_ok(order: Any) -> None:
        if order.status is not OrderStatus.CANCELLED:
            raise AssertionError(f"cancelled order is {order.status}")

    try:
        await gw.start()
        await run_cycles(place, cancel, placed_ok, cancelled_ok, "warm-", 10, 1)
        seq = await run_cycles(place, cancel, placed_ok, cancelled_ok, "seq-", cycles, 1)
        conc = await run_cycles(place, cancel, placed_ok, cancelled_ok, "con-", cycles, concurrency)
        floor = await transport_floor(info["url"], "/time", 200)
        left_open = len(await gw.open_orders(market))
    finally:
        await gw.close()
    # what one submit costs without the network: EIP-712 hash + secp256k1 signature
    sign = await sign_cost(gw, market, price, qty)
    return {
        "client": "PolymarketGateway over py-clob-client (EIP-712 orders, L2 HMAC; sync client in threads)",
        "order": f"GTC limit buy {qty} shares at {price} of the first open Up token: rests, never fills",
        "calls_per_submit": (
            "tick size, neg risk, fee rate (client-cached after the first), sign, "
            "POST /order, GET /data/order"
        ),
        "calls_per_cancel": "DELETE /order, GET /data/order",
        "sequential": seq,
        "concurrent": conc,
        "transport": floor,
        "signing": sign,
        "open_orders_left": left_open,
    }


async def sign_cost(gw: Any, market: str, price: Decimal, qty: Decimal) -> dict[str, Any]:
    """Time ``_prepare`` (lookups are cached by then, so this is hashing and signing)."""
    from actors.domain.model import Order, Side

    samples: list[float] = []
    for n in range(50):
        order = Order(client_id=f"sign-{n}", market=market, side=Side.BUY, price=price, qty=qty)
        await timed(samples, gw._prepare(order))
    return {"what": "PolymarketGateway._prepare (cached lookups + EIP-712 sign)", **summary_ms(samples)}


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--cycles", type=int, default=None, help="place+cancel cycles per run (default 1000; --quick 200)"
    )
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    cycles = args.cycles or (200 if args.quick else 1000)
    started = time.time()
    result: dict[str, Any] = {
        "benchmark": "gateways",
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_before": list(os.getloadavg()),
        },
        "method": (
            "sandbox in a child process on 127.0.0.1; one GTC limit buy that rests, then a cancel by "
            "client id, per cycle; each awaited gateway call timed with perf_counter in the caller; "
            "sequential = 1 cycle in flight, concurrent = --concurrency cycles in flight; 20 (Binance) / "
            "10 (Polymarket) warm-up cycles are not counted"
        ),
        "cycles": cycles,
    }
    binance = Child(_serve_binance)
    with binance as info:
        result["binance"] = asyncio.run(bench_binance(info, cycles, args.concurrency))
    result["binance"]["orders_seen_by_sandbox"] = binance.final.get("orders_at_venue")
    clob = Child(_serve_clob)
    with clob as info:
        result["polymarket"] = asyncio.run(bench_polymarket(info, cycles, args.concurrency))
    result["polymarket"]["orders_seen_by_sandbox"] = clob.final.get("orders_at_venue")
    result["wall_s"] = round(time.time() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    for venue in ("binance", "polymarket"):
        r = result[venue]
        s, c = r["sequential"], r["concurrent"]
        print(
            f"{venue:10s} sequential {s['orders_per_s']:7.1f} orders/s  "
            f"submit p50 {s['submit']['p50_ms']} ms p99 {s['submit']['p99_ms']} ms  "
            f"cancel p50 {s['cancel']['p50_ms']} ms p99 {s['cancel']['p99_ms']} ms | "
            f"x{c['concurrency']} {c['orders_per_s']:7.1f} orders/s | errors {s['errors'] + c['errors']} | "
            f"transport p50 {r['transport']['p50_ms']} ms"
        )
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
