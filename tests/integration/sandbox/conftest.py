"""Fixtures of the Binance sandbox tests: a sandbox per test on 127.0.0.1 port 0, an account, clients.

The CLOB sandbox fixtures (``start_sandbox``, ``sandbox``) are at the end; their helpers are in
clob_support.py. Synchronisation is by awaiting
the venue's state (``venue.wait_for``) or the client's answers, never by sleeping.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web

from actors.venues.binance.gateway import BinanceGateway
from ops.sandbox.binance import BookModel, Credentials, SandboxBinance
from ops.sandbox.clob import SandboxClob, clob_app
from ops.sandbox.faults import FaultInjector
from tests.integration.sandbox.binance_support import START_BAR, ccxt_client, make_test_gateway
from tests.integration.sandbox.clob_support import Sandbox, StartSandbox


@pytest.fixture
async def venue() -> AsyncIterator[SandboxBinance]:
    # one level a side of 0.001 BTC: each snapshot that crosses a resting order fills 0.001 of it
    sandbox = SandboxBinance(start_bar=START_BAR, book=BookModel(level_qty=Decimal("0.001"), levels=1))
    await sandbox.start_server()
    yield sandbox
    await sandbox.stop_server()


@pytest.fixture
def creds(venue: SandboxBinance) -> Credentials:
    return venue.create_account({"USDT": "10000", "BTC": "0.5"})


@pytest.fixture
async def exchange(venue: SandboxBinance, creds: Credentials) -> AsyncIterator[Any]:
    ex = ccxt_client(venue, creds)
    yield ex
    await ex.close()


@pytest.fixture
async def gateway(venue: SandboxBinance, creds: Credentials) -> AsyncIterator[BinanceGateway]:
    gw = make_test_gateway(venue, creds)
    await gw.start()
    yield gw
    await gw.close()


@pytest.fixture
async def start_sandbox() -> AsyncIterator[StartSandbox]:
    runners: list[web.AppRunner] = []

    async def start(**kwargs: Any) -> Sandbox:
        venue = SandboxClob(**kwargs)
        faults = FaultInjector()
        runner = web.AppRunner(clob_app(venue, faults))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return Sandbox(venue, f"http://127.0.0.1:{port}", faults)

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def sandbox(start_sandbox: StartSandbox) -> Sandbox:
    return await start_sandbox(initial_usdc=10_000)
