"""What the paper venue writes per order, as its history grows: the full engine state against
the compact checkpoint (open orders, balances, live markets; history in the store's records).

    python ops/bench/paper_checkpoint.py [--out FILE]

For each history size N, N round trips (a buy and a sell, both filled) go through the one
matching engine, one order rests open, and the benchmark times ``state()`` and its JSON encoding
(what the venue shell hands the store every commit), best of 5, for ``history=True`` (before)
and ``history=False`` (now), and reports the encoded bytes. Results go to
ops/bench/results/paper_checkpoint.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.core.fees import FeeModel
from actors.core.matching import MatchingEngine
from actors.domain.model import BookLevel, Instrument, MarketKind, Order, OrderBook, Side

BTC = Instrument(
    venue="binance",
    symbol="BTC/USDT",
    kind=MarketKind.SPOT,
    tick_size=Decimal("0.01"),
    lot_size=Decimal("0.001"),
)


def _engine(round_trips: int) -> MatchingEngine:
    e = MatchingEngine(FeeModel(), [BTC], balances=True)
    e.deposit("default", "USDT", Decimal(10_000_000))
    book = OrderBook(
        market=BTC.market_id,
        ts_ms=0,
        bids=(BookLevel(price=Decimal("98"), size=Decimal("1000")),),
        asks=(BookLevel(price=Decimal("99"), size=Decimal("1000")),),
    )
    for i in range(round_trips):
        t = 10 * i
        e.on_book(book.model_copy(update={"ts_ms": t}), t)
        for side, price in ((Side.BUY, "99"), (Side.SELL, "98")):
            e.submit(
                Order(
                    client_id=f"{side.value}{i}",
                    market=BTC.market_id,
                    side=side,
                    price=Decimal(price),
                    qty=Decimal(1),
                ),
                t + 1,
            )
    e.submit(
        Order(client_id="rest", market=BTC.market_id, side=Side.BUY, price=Decimal(90), qty=Decimal(1)),
        10 * round_trips,
    )
    return e


def _timed(e: MatchingEngine, history: bool) -> dict[str, Any]:
    best = float("inf")
    size = 0
    for _ in range(5):
        start = time.perf_counter()
        encoded = json.dumps(e.state(history=history))
        best = min(best, time.perf_counter() - start)
        size = len(encoded)
    return {"ms": round(best * 1000, 3), "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "paper_checkpoint.json"
    )
    args = parser.parse_args()
    rows = []
    for n in (500, 2_500, 10_000):
        e = _engine(n)
        row: dict[str, Any] = {"round_trips": n, "orders": len(e.orders()), "fills": e.fill_count}
        row["full"] = _timed(e, history=True)
        row["compact"] = _timed(e, history=False)
        rows.append(row)
        print(
            f"{row['orders']:>6} orders: full {row['full']['ms']} ms / {row['full']['bytes']} B,"
            f" compact {row['compact']['ms']} ms / {row['compact']['bytes']} B"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"python": platform.python_version(), "measured": time.strftime("%Y-%m-%d %H:%M"), "rows": rows},
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
