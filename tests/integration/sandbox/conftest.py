"""Fixtures of the Binance sandbox tests: a sandbox per test on 127.0.0.1 port 0, an account, clients.

The CLOB sandbox tests define their own fixtures in their module. Synchronisation is by awaiting
the venue's state (``venue.wait_for``) or the client's answers, never by sleeping.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from actors.venues.binance.gateway import BinanceGateway
from ops.sandbox.binance import BookModel, Credentials, SandboxBinance
from tests.integration.sandbox.binance_support import START_BAR, ccxt_client, make_test_gateway


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
