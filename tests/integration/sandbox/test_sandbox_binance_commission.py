"""Commissions charged as Binance charges them (issue 10, defect 8), through the real ccxt client.

The sandbox takes a buy's commission in BTC, out of the BTC bought, unless BNB pays. A position
driven through ``BinanceGateway`` must then hold, and sell, only what the account was credited:
its exits sell exactly the credited whole lots and the venue never refuses a sell for
insufficient balance. The account starts with no BTC, so nothing else could cover an oversell.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from actors.core.fees import FeeAsset, FeeModel, FeeToken
from actors.core.position import PositionCore
from actors.domain.model import (
    CancelOrder,
    Command,
    ExitStatus,
    Instrument,
    OrderStatus,
    PlaceOrder,
    PositionClosed,
    Side,
)
from actors.venues.binance.gateway import BinanceGateway
from ops.sandbox.binance import BookModel, Credentials, SandboxBinance
from tests.integration.sandbox.binance_support import MARKET, START_BAR, make_test_gateway
from tests.unit.core.position_helpers import enter

D = Decimal
QTY = D("0.00123")
USDT = D("10000")
BNB_PRICE = D("500")


async def _sandbox(fees: FeeModel | None = None) -> SandboxBinance:
    venue = SandboxBinance(start_bar=START_BAR, book=BookModel(level_qty=D("0.01"), levels=5), fees=fees)
    await venue.start_server()
    return venue


@pytest.fixture
async def binance_like() -> AsyncIterator[SandboxBinance]:
    venue = await _sandbox()  # the default: Binance's own rule, a buy's commission in BTC
    yield venue
    await venue.stop_server()


@pytest.fixture
async def bnb_pays() -> AsyncIterator[SandboxBinance]:
    venue = await _sandbox(FeeModel(fee_asset=FeeAsset.RECEIVED, fee_token=FeeToken(price=BNB_PRICE)))
    yield venue
    await venue.stop_server()


async def _run(
    core: PositionCore, gateway: BinanceGateway, commands: list[Command], now_ms: int
) -> list[Command]:
    """Carry out commands as the position shell does: venue call, then the fills, then the status."""
    done: list[Command] = []
    pending = list(commands)
    while pending:
        command = pending.pop(0)
        done.append(command)
        if isinstance(command, PlaceOrder):
            result = await gateway.submit(command.order)  # a refused sell raises VenueError here
        elif isinstance(command, CancelOrder):
            result = await gateway.cancel(command.client_id, command.market)
        else:
            continue
        for fill in await gateway.fills(MARKET):
            pending += core.on_fill(fill)
        pending += core.on_order_update(
            result.client_id, result.status, result.filled_qty, now_ms, venue_order_id=result.venue_order_id
        )
    return done


async def _round_trip(
    venue: SandboxBinance, creds: Credentials
) -> tuple[PositionCore, Instrument, list[Command]]:
    """Buy QTY at the ask (taker), then a stop closes it: targets cancelled, the rest sold at the bid."""
    gateway = make_test_gateway(venue, creds)
    await gateway.start()
    try:
        (btc,) = [i for i in await gateway.instruments() if i.market_id == MARKET]
        ask = venue.book().best_ask
        assert ask is not None
        core, entry = enter(btc, str(QTY), str(ask))  # a marketable limit buy: it takes the ask
        done = await _run(core, gateway, [PlaceOrder(order=core.orders[entry].model_copy())], venue.now_ms)
        assert core.position.status is ExitStatus.OPEN
        stop = core.position.stop_price * D("0.99")
        done += await _run(core, gateway, core.on_price(stop, venue.now_ms + 1), venue.now_ms + 1)
        return core, btc, done
    finally:
        await gateway.close()


def _sold(commands: list[Command]) -> Decimal:
    return sum(
        (c.order.qty for c in commands if isinstance(c, PlaceOrder) and c.order.side is Side.SELL), D(0)
    )


async def test_base_asset_commission_exits_sell_exactly_the_credited_lots_never_rejected(
    binance_like: SandboxBinance,
) -> None:
    venue = binance_like
    creds = venue.create_account({"USDT": USDT, "BTC": "0"})
    core, btc, commands = await _round_trip(venue, creds)

    (buy,) = [f for f in venue.fills(creds.account) if f.side is Side.BUY]
    assert buy.fee_asset == "BTC"
    assert buy.fee_base_qty == D("0.00000246")  # 0.2 % taker, in BTC, as Binance charges it
    credited = QTY - buy.fee_base_qty
    assert core.position.entry_qty == credited  # the position holds what the venue credited

    pos = core.position
    assert pos.status is ExitStatus.CLOSED
    assert [c.exit_reason.value for c in commands if isinstance(c, PositionClosed)] == ["stop"]
    assert not [o for o in venue.orders(creds.account) if o.status is OrderStatus.REJECTED]
    # the targets rested, were cancelled unfilled, and the close sold every credited whole lot
    sells = [f for f in venue.fills(creds.account) if f.side is Side.SELL]
    assert sum(f.qty for f in sells) == pos.sold_qty == btc.round_qty(credited) == D("0.00122")
    assert _sold(commands) == D("0.00122") * 2  # both targets (0.00061 each), then the close

    # what is left is the dust below a lot, reported, never sold
    balances = venue.balances(creds.account)
    dust = balances["BTC"][0] + balances["BTC"][1]
    assert dust == pos.open_qty == D("0.00000754") < btc.lot_size
    assert any(note.startswith(f"dust {dust} below the lot") for note in core.anomalies)

    # P&L reconciles with the venue's USDT to the last unit: every fee inside, the dust written off
    cash = balances["USDT"][0] + balances["USDT"][1] - USDT
    assert core.realized_pnl == cash
    assert pos.fees == buy.fee + sum(f.fee for f in sells)


async def test_bnb_paid_commission_keeps_the_whole_qty_valued_at_the_venue_price(
    bnb_pays: SandboxBinance,
) -> None:
    venue = bnb_pays
    creds = venue.create_account({"USDT": USDT, "BTC": "0", "BNB": "1"})
    core, _btc, _commands = await _round_trip(venue, creds)

    truth = venue.fills(creds.account)
    assert {f.fee_asset for f in truth} == {"BNB"}
    assert all(f.fee_base_qty == 0 for f in truth)
    pos = core.position
    assert pos.entry_qty == pos.sold_qty == QTY  # nothing kept in BTC: every unit held and sold
    assert pos.status is ExitStatus.CLOSED
    balances = venue.balances(creds.account)
    assert balances["BTC"] == (D(0), D(0))
    bnb_spent = D(1) - balances["BNB"][0]
    # the gateway valued each BNB commission at the venue's BNBUSDT price: the venue's own value
    assert pos.fees == sum(f.fee for f in truth) == bnb_spent * BNB_PRICE > 0
    cash = balances["USDT"][0] - USDT
    assert core.realized_pnl == cash - bnb_spent * BNB_PRICE
