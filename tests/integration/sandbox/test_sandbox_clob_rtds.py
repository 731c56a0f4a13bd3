"""The CLOB sandbox's RTDS socket (``/rtds``): the day's Chainlink ticks, pushed as the clock
passes them, read by the runtime's own RTDS client into the candles the replay makes."""

from __future__ import annotations

import asyncio
import contextlib
import json

import aiohttp

from actors.data.replay import chainlink_candles
from actors.domain.model import Candle
from actors.venues.polymarket.rtds import ChainlinkReader, chainlink_candles_live, subscription
from tests.integration.sandbox.clob_support import RECV_S, Sandbox, until

MARKET = "chainlink:BTC/USD"


def _rtds_url(sandbox: Sandbox) -> str:
    return "ws" + sandbox.host.removeprefix("http") + "/rtds"


async def _subscribed(sandbox: Sandbox, ws: aiohttp.ClientWebSocketResponse) -> None:
    await ws.send_str(json.dumps(subscription("btc/usd")))
    await ws.send_str("PING")  # answered after the subscription is in: the socket is live
    assert (await asyncio.wait_for(ws.receive(), RECV_S)).data == "PONG"


async def test_rtds_pushes_each_tick_the_clock_passes_and_none_from_before(sandbox: Sandbox) -> None:
    venue = sandbox.venue
    start = venue.now_ms
    async with aiohttp.ClientSession() as session, session.ws_connect(_rtds_url(sandbox)) as ws:
        await _subscribed(sandbox, ws)
        venue.advance(30)
        expected = [int(t) for t in venue.ticks.ts_ms if start < t <= venue.book_ms]  # the 30 s's ticks
        got = []
        for _ in expected:
            message = json.loads((await asyncio.wait_for(ws.receive(), RECV_S)).data)
            assert message["topic"] == "crypto_prices_chainlink"
            assert message["payload"]["symbol"] == "btc/usd"
            got.append(message["payload"]["timestamp"])
    assert expected
    assert got == expected


async def test_runtime_rtds_client_reads_the_replayed_ticks_as_replay_candles(sandbox: Sandbox) -> None:
    venue = sandbox.venue
    start = venue.now_ms
    reader = ChainlinkReader(MARKET)
    stream = chainlink_candles_live(_rtds_url(sandbox), MARKET, reader=reader)
    received: list[Candle] = []

    async def read() -> None:
        async for candle in stream:
            received.append(candle)

    task = asyncio.create_task(read())
    try:
        await until(lambda: any(s.symbols for s in venue._price_subscribers))  # the client subscribed
        venue.advance(20)
        replayed = [c for c in chainlink_candles(venue.ticks) if start < c.close_ms <= venue.book_ms]
        await until(lambda: len(received) >= len(replayed))
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await stream.aclose()
    assert [c.model_dump() for c in received] == [c.model_dump() for c in replayed]
    assert reader.malformed == 0
