"""`data download` with the real ccxt against the project's own Binance sandbox."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from actors.data.candles import read_csv, read_parquet
from actors.venues.binance.ccxt_client import make_exchange
from ops.sandbox.binance import SANDBOX_MARKETS
from ops.sandbox.binance.venue import SandboxBinance
from supervisor.research.download import download_ohlcv

DATA = SANDBOX_MARKETS["binance:BTC/USDT"]
SINCE = 1727751600000  # 2024-10-01 03:00 UTC, the sandbox's first bar: history, before the replay's start


async def test_download_from_the_sandbox_gets_the_replayed_bars_and_resumes(tmp_path: Path) -> None:
    venue = SandboxBinance()  # its replay starts 15 days in: every bar before is there from the start
    assert venue.bar_index > 2_400
    url = await venue.start_server("127.0.0.1", 0)
    exchange = make_exchange("binance", rest_url=url)
    out = tmp_path / "btc.parquet"
    try:
        first = await download_ohlcv(exchange, "BTC/USDT", "1m", SINCE, SINCE + 1_200 * 60_000, out)
        second = await download_ohlcv(exchange, "BTC/USDT", "1m", SINCE, SINCE + 2_400 * 60_000, out)
    finally:
        await exchange.close()
        await venue.stop_server()
    assert first.rows_fetched == 1_200
    assert second.resumed_from_ms == SINCE + 1_200 * 60_000
    assert second.rows_fetched == 1_200
    table = read_parquet(out)
    assert len(table) == 2_400
    reference = read_csv(DATA).between(SINCE, SINCE + 2_400 * 60_000)
    np.testing.assert_array_equal(table.timestamp, reference.timestamp)
    np.testing.assert_allclose(table.close, reference.close, rtol=0, atol=1e-9)
