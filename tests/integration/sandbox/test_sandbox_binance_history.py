"""The Binance sandbox serves several symbols and their history from its first second.

``raytrader sandbox`` starts its replay 15 days into the bundled 2024-10 data: a plain ccxt client
from outside the project gets the last bars at once, every replayed pair has its own exchange
info, klines, book, tape, orders and kline stream, and the gateway reads a warm-up's worth of
history in pages.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from actors.data.candles import load_table
from actors.data.replay import binance_instrument
from actors.domain.model import Order, OrderType, Side
from actors.venues.binance.client import ws_supported
from actors.venues.binance.gateway import BinanceGateway
from actors.venues.gateway import VenueError, VenueErrorKind
from ops.sandbox.binance import HISTORY_BARS, SANDBOX_MARKETS, Credentials, SandboxBinance
from tests.integration.sandbox.binance_support import (
    START_BAR,
    below_bid,
    limit_order,
    make_test_gateway,
    next_item,
    raw_request,
    signed_query,
)

BTC, ETH = "binance:BTC/USDT", "binance:ETH/USDT"

# A fresh interpreter (-I: no project paths) with nothing but ccxt, pointed at the sandbox as a
# user would point it: the spot REST base, and market loading limited to spot (the sandbox is a
# spot venue; ccxt's futures and options listings live on other hosts).
PLAIN_CCXT = """
import json, sys
import ccxt
exchange = ccxt.binance({"options": {"fetchMarkets": {"types": ["spot"]}}})
for key in ("public", "private", "v3"):
    exchange.urls["api"][key] = sys.argv[1] + "/api/v3"
print(json.dumps({s: exchange.fetch_ohlcv(s, "1m", limit=10) for s in ("BTC/USDT", "ETH/USDT")}))
"""


@pytest.fixture
def cli_sandbox() -> Iterator[dict[str, Any]]:
    """``raytrader sandbox`` as a user starts it (its own process, default clock), on free ports."""
    exe = shutil.which("raytrader") or str(Path(sys.executable).with_name("raytrader"))
    proc = subprocess.Popen(
        [exe, "sandbox", "--binance-port", "0", "--clob-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        while not lines or lines[-1] != "}\n":  # it prints its endpoints once both venues are up
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"raytrader sandbox exited: {proc.stderr.read() if proc.stderr else ''}")
            lines.append(line)
        yield json.loads("".join(lines))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def bundled(market: str) -> Any:
    return load_table(SANDBOX_MARKETS[market])


def test_plain_ccxt_gets_ten_bars_right_after_raytrader_sandbox_starts(
    cli_sandbox: dict[str, Any], tmp_path: Path
) -> None:
    binance = cli_sandbox["binance"]
    assert binance["markets"] == [BTC, ETH, "binance:SOL/USDT", "binance:XRP/USDT"]
    assert binance["history_bars"] == HISTORY_BARS
    got = subprocess.run(
        [sys.executable, "-I", "-c", PLAIN_CCXT, binance["rest_url"]],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=True,
    )
    rows = json.loads(got.stdout)
    for symbol, market in (("BTC/USDT", BTC), ("ETH/USDT", ETH)):
        bars = rows[symbol]
        assert len(bars) == 10
        ts = [b[0] for b in bars]
        assert np.all(np.diff(ts) == 60_000)
        table = bundled(market)
        first = int(np.searchsorted(table.timestamp, ts[0]))
        assert HISTORY_BARS - 10 <= first <= HISTORY_BARS  # the last bars before (and at) the replay's start
        expected = np.column_stack([table.open, table.high, table.low, table.close, table.volume])[
            first : first + 10
        ]
        np.testing.assert_allclose([b[1:] for b in bars], expected, rtol=0, atol=1e-9)
    assert rows["BTC/USDT"][-1][4] != rows["ETH/USDT"][-1][4]  # two markets, not one twice


async def test_every_pair_has_its_own_filters_bars_book_tape_and_orders(
    venue: SandboxBinance, creds: Credentials, gateway: BinanceGateway
) -> None:
    instruments = {i.market_id: i for i in await gateway.instruments()}
    for market in SANDBOX_MARKETS:
        real, served = binance_instrument(market), instruments[market]
        assert (served.tick_size, served.lot_size) == (real.tick_size, real.lot_size)
    exchange = gateway.exchange
    eth = bundled(ETH)
    rows = await exchange.fetch_ohlcv("ETH/USDT", "1m", int(eth.timestamp[0]), 5)  # from the first bar
    np.testing.assert_allclose([r[4] for r in rows], eth.close[:5], rtol=0, atol=1e-9)
    book = await gateway.order_book(ETH, 5)
    assert book.best_bid == venue.book(ETH).best_bid != venue.book(BTC).best_bid
    assert book.best_bid is not None
    assert abs(float(book.best_bid) - eth.close[START_BAR]) < 1
    trades = await exchange.fetch_trades("ETH/USDT", limit=4)
    assert [t["price"] for t in trades][-1] == eth.close[START_BAR]  # the bar's path ends at its close
    status, info, _ = await raw_request(venue, "GET", "/api/v3/exchangeInfo", "symbol=ETHUSDT")
    assert status == 200
    assert [s["symbol"] for s in info["symbols"]] == ["ETHUSDT"]

    bid = venue.book(ETH).best_bid
    assert bid is not None
    rest = Order(client_id="eth-1", market=ETH, side=Side.BUY, price=bid - Decimal(5), qty=Decimal("0.01"))
    assert (await gateway.submit(rest)).venue_order_id is not None
    assert [o.client_id for o in await gateway.open_orders(ETH)] == ["eth-1"]
    assert await gateway.open_orders(BTC) == []
    query = signed_query(creds, {"symbol": "BTCUSDT", "origClientOrderId": "eth-1"})
    status, error, _ = await raw_request(
        venue, "GET", "/api/v3/order", query, {"X-MBX-APIKEY": creds.api_key}
    )
    assert (status, error["code"]) == (400, -2013)  # an order is looked up in its own symbol
    taken = Order(client_id="eth-2", market=ETH, side=Side.BUY, type=OrderType.MARKET, qty=Decimal("0.01"))
    await gateway.submit(taken)
    fills = await gateway.fills(ETH)
    assert [f.fill_id.rsplit(":", 1)[0] for f in fills] == ["binance:ETHUSDT"]
    assert fills[0].fee_base_qty > 0  # a buy's commission in ETH, out of the ETH bought
    assert venue.balances(creds.account)["ETH"][0] == sum(f.qty - f.fee_base_qty for f in fills)
    with pytest.raises(VenueError) as refused:
        await gateway.submit(limit_order("btc-x", Side.BUY, below_bid(venue, "10"), "0.000001"))
    assert refused.value.kind is VenueErrorKind.REJECTED  # BTC's own lot still applies


@pytest.mark.skipif(not ws_supported(), reason="ccxt.pro not importable")
async def test_kline_streams_of_two_pairs(venue: SandboxBinance, gateway: BinanceGateway) -> None:
    streams = [gateway.watch_candles(m) for m in (BTC, ETH)]
    tasks = [asyncio.create_task(next_item(s)) for s in streams]
    await venue.wait_for(
        lambda: {"btcusdt@kline_1m", "ethusdt@kline_1m"} <= set().union(*venue.subscriptions())
    )
    venue.advance(1)
    btc, eth = [await asyncio.wait_for(t, 5) for t in tasks]
    assert (btc.market, eth.market) == (BTC, ETH)
    assert btc.ts_ms == eth.ts_ms == venue.bar()[0]
    assert (btc.close, eth.close) == (float(venue.bar(market=BTC)[4]), float(venue.bar(market=ETH)[4]))
    for s in streams:
        await s.aclose()


async def test_gateway_reads_a_warm_up_of_history_in_pages() -> None:
    venue = SandboxBinance(weight_limit=10**6)  # the default: 15 days of history before the replay
    await venue.start_server()
    creds = venue.create_account({"USDT": "1000"})
    gw = make_test_gateway(venue, creds)
    try:
        await gw.start()
        before = venue.used_weight()
        bars = await gw.history(ETH, "1m", 2_500)
        assert venue.used_weight() - before == 4 * 2  # the newest bar, then 1000 + 1000 + 500 (weight 2 each)
        eth = bundled(ETH)
        last_2500 = slice(HISTORY_BARS - 2_499, HISTORY_BARS + 1)  # up to the current bar
        assert [b.ts_ms for b in bars] == eth.timestamp[last_2500].tolist()
        np.testing.assert_allclose([b.close for b in bars], eth.close[last_2500])
        assert await gw.history(ETH, "1m", 0) == []
        everything = await gw.history(BTC, "1m", HISTORY_BARS + 500)
        assert len(everything) == HISTORY_BARS + 1  # all the venue has: every bar up to the current one
    finally:
        await gw.close()
        await venue.stop_server()
