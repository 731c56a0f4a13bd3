"""What the CLOB sandbox tests share: the sandbox handle, clients on it, the books' crossings.

The sandbox fixtures (``start_sandbox``, ``sandbox``) are in this folder's conftest.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal

from eth_account import Account
from eth_utils.crypto import keccak
from py_clob_client.client import ClobClient

from actors.domain.model import Order, Side, TimeInForce, floor_to
from actors.venues.polymarket.gateway import PolymarketGateway
from ops.sandbox.clob import SandboxClob
from ops.sandbox.faults import FaultInjector
from tests.paths import FIXTURES as ALL_FIXTURES

FIXTURES = ALL_FIXTURES / "polymarket"
# Throwaway keys, fixed so a run is reproducible (Account.create mixes in os.urandom).
MAKER = Account.from_key(keccak(text="raytrader sandbox test maker"))
OTHER = Account.from_key(keccak(text="raytrader sandbox test other"))
MAKER_KEY = "0x" + bytes(MAKER.key).hex()
OTHER_KEY = "0x" + bytes(OTHER.key).hex()
RECV_S = 5.0

run = asyncio.to_thread


@dataclass
class Sandbox:
    venue: SandboxClob
    host: str
    faults: FaultInjector

    @property
    def ws_url(self) -> str:
        return "ws" + self.host.removeprefix("http") + "/ws/market"


StartSandbox = Callable[..., Awaitable[Sandbox]]


def l2_client(host: str, key: str = MAKER_KEY) -> ClobClient:
    """A client with API creds (create on first use, derive after)."""
    client = ClobClient(host, chain_id=137, key=key, signature_type=0)
    client.set_api_creds(client.create_or_derive_api_creds())
    return client


async def gateway(host: str, key: str = MAKER_KEY) -> PolymarketGateway:
    gw = PolymarketGateway(host, key)
    await gw.start()
    return gw


def current_tokens(venue: SandboxClob) -> tuple[str, str]:
    """(Up, Down) of the window in progress (the first one accepting orders)."""
    return venue.open_markets()[0].token_ids


def find_cross(venue: SandboxClob, tokens: tuple[str, ...], horizon_s: int) -> tuple[str, Decimal, int]:
    """(token, price, step) where the modelled ask first falls to the current best bid."""
    best: tuple[str, Decimal, int] | None = None
    for token in tokens:
        bid = venue.current_book(token).best_bid
        assert bid is not None
        for s in range(1, horizon_s + 1):
            t = venue.book_ms + s * 1000
            ask = venue.model_book_at(token, t).best_ask
            if ask is not None and ask <= bid:
                if best is None or t < best[2]:
                    best = (token, bid, t)
                break
    assert best is not None, "the modelled book never crossed in the horizon"
    return best


async def until(condition: Callable[[], bool], timeout_s: float = RECV_S) -> None:
    """Poll ``condition`` on the loop (the sandbox and the gateway's websocket run on it too)."""
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.01)


def resting_buy(
    venue: SandboxClob, token: str, cid: str, below: str, tick: str = "0.01", off: str | None = None
) -> Order:
    """A buy ``below`` under the best bid, on ``tick`` (it rests: nothing fills it); ``off``: a tick
    the price must not be on (lowered by 0.03 when it is)."""
    bid = venue.current_book(token).best_bid
    assert bid is not None
    price = floor_to(bid - Decimal(below), Decimal(tick))
    if off is not None and price % Decimal(off) == 0:
        price -= Decimal("0.03")
    return Order(client_id=cid, market=f"polymarket:{token}", side=Side.BUY, price=price, qty=Decimal(10))


def taker_buy(venue: SandboxClob, token: str, cid: str, qty: str = "10") -> Order:
    """An IOC buy at the best ask: it takes the book at once."""
    ask = venue.current_book(token).best_ask
    assert ask is not None
    return Order(
        client_id=cid,
        market=f"polymarket:{token}",
        side=Side.BUY,
        price=ask,
        qty=Decimal(qty),
        tif=TimeInForce.IOC,
    )
