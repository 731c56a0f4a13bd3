"""`data download`: the real ccxt client against a loopback server speaking Binance's klines API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import ccxt.async_support as ccxt_async
import numpy as np
import pytest
from aiohttp import web

from actors.data.candles import read_csv, read_parquet
from actors.venues.binance.ccxt_client import make_exchange
from supervisor.research.download import download_ohlcv
from tests.paths import BTC_1M, FIXTURES

DATA = BTC_1M
FIXTURES = FIXTURES / "binance-spot"


class KlinesServer:
    """Serves exchangeInfo and klines from the bundled CSV; scripted 429/500 answers for retry tests."""

    def __init__(self, faults: list[int]) -> None:
        self.table = read_csv(DATA)
        self.faults = list(faults)
        self.kline_calls: list[dict[str, str]] = []
        self.paths: list[str] = []

    def exchange_info(self) -> dict[str, object]:
        info = json.loads((FIXTURES / "exchange_info_response.json").read_text())
        symbol = info["symbols"][0]
        symbol.update(
            symbol="BTCUSDT",
            baseAsset="BTC",
            quoteAsset="USDT",
            filters=[
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": "0.01",
                    "maxPrice": "1000000.00",
                    "tickSize": "0.01",
                },
                {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000.0", "stepSize": "0.00001"},
            ],
        )
        info["symbols"] = [symbol]
        return info

    async def handle(self, request: web.Request) -> web.Response:
        self.paths.append(request.path)
        if request.path == "/api/v3/exchangeInfo":
            return web.json_response(self.exchange_info())
        if request.path != "/api/v3/klines":
            return web.json_response({"code": -1000, "msg": "unknown path"}, status=404)
        self.kline_calls.append(dict(request.query))
        if self.faults:
            status = self.faults.pop(0)
            if status == 429:
                return web.json_response(
                    {"code": -1003, "msg": "Too many requests"}, status=429, headers={"Retry-After": "0"}
                )
            return web.Response(status=status, text="upstream error")
        start = int(request.query["startTime"])
        limit = int(request.query.get("limit", 500))
        end = int(request.query.get("endTime", 2**62))
        t = self.table
        lo = int(np.searchsorted(t.timestamp, start))
        rows = []
        for i in range(lo, min(lo + limit, len(t))):
            ts = int(t.timestamp[i])
            if ts > end:
                break
            rows.append(
                [
                    ts,
                    f"{t.open[i]:.2f}",
                    f"{t.high[i]:.2f}",
                    f"{t.low[i]:.2f}",
                    f"{t.close[i]:.2f}",
                    f"{t.volume[i]:.5f}",
                    ts + 59_999,
                    "0",
                    0,
                    "0",
                    "0",
                    "0",
                ]
            )
        return web.json_response(rows)


@pytest.fixture
async def server_url(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, KlinesServer]]:
    faults = getattr(request, "param", [])
    server = KlinesServer(faults)
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", server
    await runner.cleanup()


SINCE = 1709251200000  # 2024-03-01 00:00 UTC
UNTIL = SINCE + 2500 * 60_000


@pytest.mark.parametrize("server_url", [[429, 500, 503]], indirect=True)
async def test_download_with_429_and_5xx_retries_and_gets_every_bar(
    server_url: tuple[str, KlinesServer], tmp_path: Path
) -> None:
    url, server = server_url
    exchange = make_exchange("binance", rest_url=url)
    out = tmp_path / "btc.parquet"
    try:
        report = await download_ohlcv(exchange, "BTC/USDT", "1m", SINCE, UNTIL, out, backoff_s=0.001)
    finally:
        await exchange.close()
    table = read_parquet(out)
    assert len(table) == 2500
    assert np.all(np.diff(table.timestamp) == 60_000)
    # ccxt maps Binance's 429 to DDoSProtection and 5xx to ExchangeNotAvailable
    assert report.retries == {"DDoSProtection": 1, "ExchangeNotAvailable": 2}
    assert report.pages == 3  # 1000 + 1000 + 500 rows
    assert set(server.paths) == {"/api/v3/exchangeInfo", "/api/v3/klines"}
    reference = read_csv(DATA).between(SINCE, UNTIL)
    np.testing.assert_allclose(table.close, reference.close, rtol=0, atol=0.005)
    assert table.provenance["source"] == "ccxt:binance"


async def test_download_rerun_fetches_only_missing_bars(
    server_url: tuple[str, KlinesServer], tmp_path: Path
) -> None:
    url, server = server_url
    out = tmp_path / "btc.parquet"
    exchange = make_exchange("binance", rest_url=url)
    try:
        first = await download_ohlcv(exchange, "BTC/USDT", "1m", SINCE, SINCE + 1200 * 60_000, out)
        calls_after_first = len(server.kline_calls)
        second = await download_ohlcv(exchange, "BTC/USDT", "1m", SINCE, UNTIL, out)
    finally:
        await exchange.close()
    assert first.rows_fetched == 1200
    assert second.resumed_from_ms == SINCE + 1200 * 60_000
    assert second.rows_fetched == 1300
    assert int(server.kline_calls[calls_after_first]["startTime"]) == SINCE + 1200 * 60_000
    table = read_parquet(out)
    assert len(table) == 2500
    assert len(np.unique(table.timestamp)) == 2500


@pytest.mark.parametrize("server_url", [[500] * 10], indirect=True)
async def test_download_persistent_5xx_gives_up_with_error(
    server_url: tuple[str, KlinesServer], tmp_path: Path
) -> None:
    url, _server = server_url
    exchange = make_exchange("binance", rest_url=url)
    try:
        with pytest.raises(ccxt_async.ExchangeNotAvailable):
            await download_ohlcv(
                exchange,
                "BTC/USDT",
                "1m",
                SINCE,
                UNTIL,
                tmp_path / "x.parquet",
                max_retries=2,
                backoff_s=0.001,
            )
    finally:
        await exchange.close()
    assert not (tmp_path / "x.parquet").exists()
