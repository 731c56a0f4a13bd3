"""Which asset pays a commission (issue 10, defect 8): Binance takes a buy's commission in the base
asset it bought, so the account holds less than the order executed. The fee rule (FeeModel), the
matching engine, the fill and the position core must all hold what the venue credited."""

from __future__ import annotations

from decimal import Decimal

import pytest

from actors.core.fees import Commission, FeeAsset, FeeModel, FeeToken, reported_commission
from actors.core.matching import MatchingEngine
from actors.core.position import PositionCore
from actors.core.position_runner import apply_update
from actors.data.replay import BINANCE_BTCUSDT
from actors.domain.messages import OrderUpdate, UpdateKind
from actors.domain.model import (
    BookLevel,
    CancelOrder,
    Command,
    ExitStatus,
    Fill,
    Liquidity,
    OrderBook,
    OrderStatus,
    PlaceOrder,
    PositionClosed,
    Side,
)
from config.models import ExitConfig
from tests.unit.core.position_helpers import T0, enter

D = Decimal
BTC = BINANCE_BTCUSDT  # lot and minimum 0.00001 BTC, as the sandbox and Binance list it
M = BTC.market_id
PRICE = D("60000.00")
QTY = D("0.00123")
TAKER_BASE_FEE = D("0.00000246")  # 0.2 % of 0.00123 BTC: what Binance keeps of the BTC bought


def _enter() -> tuple[PositionCore, str]:
    return enter(BTC, str(QTY), str(PRICE))


def _base_fee_fill(client_id: str) -> Fill:
    return Fill(
        fill_id="f-entry",
        client_id=client_id,
        market=M,
        side=Side.BUY,
        price=PRICE,
        qty=QTY,
        fee=TAKER_BASE_FEE * PRICE,
        fee_asset="BTC",
        fee_base_qty=TAKER_BASE_FEE,
        ts_ms=T0,
    )


def _sells(cmds: list[Command]) -> list[PlaceOrder]:
    return [c for c in cmds if isinstance(c, PlaceOrder) and c.order.side is Side.SELL]


def _book(bid: str, ask: str, size: str = "1", ts: int = T0) -> OrderBook:
    return OrderBook(
        market=M,
        ts_ms=ts,
        bids=(BookLevel(price=D(bid), size=D(size)),),
        asks=(BookLevel(price=D(ask), size=D(size)),),
    )


# ---------------------------------------------------------------------- the position core


def test_base_fee_buy_targets_sell_only_credited_lots() -> None:
    core, entry = _enter()
    cmds = core.on_fill(_base_fee_fill(entry))
    pos = core.position
    credited = QTY - TAKER_BASE_FEE
    assert pos.entry_qty == credited  # what the account holds, not what the order executed
    assert pos.entry_price == PRICE
    assert pos.fees == TAKER_BASE_FEE * PRICE
    targets = _sells(cmds)
    assert sum(t.order.qty for t in targets) == D("0.00122") == BTC.round_qty(credited)
    assert all(t.order.qty % BTC.lot_size == 0 for t in targets)


def test_base_fee_stop_close_sells_floor_of_credited_qty() -> None:
    core, entry = _enter()
    core.on_fill(_base_fee_fill(entry))
    cmds = core.on_price(PRICE * D("0.9"), T0 + 1000)
    cancels = [c for c in cmds if isinstance(c, CancelOrder)]
    for cancel in cancels:  # the venue confirms the targets' cancels: their quantity is free again
        order = core.orders[cancel.client_id]
        cmds += core.on_order_update(order.client_id, OrderStatus.CANCELLED, D(0), T0 + 2000)
    sold = sum(c.order.qty for c in _sells(cmds))
    assert sold == D("0.00122") <= core.position.entry_qty


def test_dust_below_a_lot_closes_reported_with_pnl_exact() -> None:
    core, entry = _enter()
    cmds = core.on_fill(_base_fee_fill(entry))
    for n, target in enumerate(_sells(cmds)):
        order = target.order
        assert order.price is not None
        cmds = core.on_fill(
            Fill(
                fill_id=f"f-{n}",
                client_id=order.client_id,
                market=M,
                side=Side.SELL,
                price=order.price,
                qty=order.qty,
                fee=D("0.01"),
                fee_asset="USDT",
                ts_ms=T0 + 10_000 + n,
            )
        )
    closed = [c for c in cmds if isinstance(c, PositionClosed)]
    assert core.position.status is ExitStatus.CLOSED
    assert len(closed) == 1
    dust = core.position.open_qty
    assert dust == D("0.00000754") < BTC.lot_size
    assert any(note.startswith(f"dust {dust} below the lot") for note in core.anomalies)
    paid = PRICE * QTY  # the quote the buy took; its commission came out of the BTC
    assert closed[0].realized_pnl == core.position.sale_proceeds - D("0.02") - paid


# ---------------------------------------------------------------------- engine + core, round trip


def test_base_fee_round_trip_engine_never_rejects_and_pnl_reconciles_to_the_cent() -> None:
    engine = MatchingEngine(FeeModel(fee_asset=FeeAsset.RECEIVED), [BTC], balances=True)
    engine.deposit("default", "USDT", D("1000"))
    engine.on_book(_book("59999.00", "60000.00"), T0)
    core, entry = _enter()
    updates: list[OrderUpdate] = []

    def run(commands: list[Command], now: int) -> None:
        pending = list(commands)
        while pending:
            cmd = pending.pop(0)
            if isinstance(cmd, PlaceOrder):
                got = engine.submit(cmd.order, now)
            elif isinstance(cmd, CancelOrder):
                got = engine.cancel(cmd.client_id, now)
            else:
                continue
            updates.extend(got)
            for update in got:
                pending += apply_update(core, update)

    run([PlaceOrder(order=core.orders[entry].model_copy())], T0)
    assert core.position.status is ExitStatus.OPEN
    (entry_fill,) = [u.fill for u in updates if u.fill is not None]
    assert entry_fill.fee_asset == "BTC"
    assert entry_fill.fee_base_qty == TAKER_BASE_FEE
    assert engine.balance("default", "BTC").total == core.position.entry_qty == QTY - TAKER_BASE_FEE
    assert engine.balance("default", "USDT").total == D("1000") - PRICE * QTY  # no quote fee on top

    # the market rallies through both targets: every resting sell fills
    for n, bid in enumerate(("61500.00", "63500.00")):
        ts = T0 + 60_000 * (n + 1)
        got = engine.on_book(_book(bid, str(D(bid) + 1), ts=ts), ts)
        updates.extend(got)
        for update in got:
            run(apply_update(core, update), ts)
        run(core.on_price(D(bid), ts), ts)

    assert not [u for u in updates if u.kind is UpdateKind.REJECTED]
    assert core.position.status is ExitStatus.CLOSED
    held = engine.balance("default", "BTC").total
    assert held == core.position.open_qty == D("0.00000754")  # the dust stays, as reported
    cash = engine.balance("default", "USDT").total - D("1000")
    assert core.realized_pnl == cash  # every fee inside, the dust's cost written off: to the cent and below
    assert sum((f.cash_flow for f in engine.fills()), D(0)) == cash


# ---------------------------------------------------------------------- the fee rule


def test_received_rule_charges_buy_in_base_and_sell_in_quote() -> None:
    fees = FeeModel(fee_asset=FeeAsset.RECEIVED)
    buy = fees.commission(BTC, Side.BUY, PRICE, QTY, Liquidity.TAKER)
    sell = fees.commission(BTC, Side.SELL, PRICE, QTY, Liquidity.TAKER)
    quote_fee = FeeModel().fee("binance", BTC, Side.BUY, PRICE, QTY, Liquidity.TAKER)
    assert (buy.asset, buy.base_qty, buy.fee) == ("BTC", TAKER_BASE_FEE, TAKER_BASE_FEE * PRICE)
    assert buy.fee == quote_fee  # the same value, taken from another balance
    assert (sell.asset, sell.base_qty, sell.fee) == ("USDT", D(0), quote_fee)


def test_quote_rule_is_the_default_and_fills_name_no_asset() -> None:
    engine = MatchingEngine(FeeModel(), [BTC], balances=True)
    engine.deposit("default", "USDT", D("1000"))
    engine.on_book(_book("59999.00", "60000.00"), T0)
    core, entry = _enter()
    engine.submit(core.orders[entry].model_copy(), T0)
    (fill,) = engine.fills()
    assert (fill.fee_asset, fill.fee_base_qty, fill.credited_qty) == (None, D(0), QTY)
    assert engine.balance("default", "BTC").total == QTY
    assert engine.balance("default", "USDT").total == D("1000") - PRICE * QTY - fill.fee


def test_fee_token_pays_while_held_then_base_pays() -> None:
    token = FeeToken(price=D("500"))
    engine = MatchingEngine(FeeModel(fee_asset=FeeAsset.RECEIVED, fee_token=token), [BTC], balances=True)
    engine.deposit("default", "USDT", D("1000"))
    engine.deposit("default", "BNB", D("0.0003"))
    engine.on_book(_book("59999.00", "60000.00"), T0)
    core, entry = _enter()
    engine.submit(core.orders[entry].model_copy(), T0)
    (fill,) = engine.fills()
    bnb = (D("0.1476") * D("0.75") / D("500")).quantize(D("1e-8"), rounding="ROUND_DOWN")
    assert (fill.fee_asset, fill.fee_base_qty, fill.fee) == ("BNB", D(0), bnb * D("500"))
    assert engine.balance("default", "BTC").total == QTY  # BNB paid: every BTC bought is held
    assert engine.balance("default", "BNB").total == D("0.0003") - bnb
    assert engine.balance("default", "USDT").total == D("1000") - PRICE * QTY
    assert FeeModel(fee_asset=FeeAsset.RECEIVED, fee_token=token).charged(fill, "USDT") == ("BNB", bnb)

    second = core.orders[entry].model_copy(update={"client_id": "again"})
    engine.submit(second, T0)  # too little BNB left: Binance takes the base asset
    assert engine.fills()[-1].fee_asset == "BTC"


def test_reported_commission_keeps_the_asset_it_was_charged_in() -> None:
    def report(amount: str, asset: str, asset_price: Decimal | None = None) -> Commission:
        return reported_commission(
            D(amount), asset, side=Side.BUY, price=PRICE, base="BTC", quote="USDT", asset_price=asset_price
        )

    base, quote = report("0.00000246", "BTC"), report("0.1476", "USDT")
    bnb, unpriced = report("0.0001", "BNB", D("500")), report("0.0001", "BNB")
    assert (base.asset, base.base_qty, base.fee) == ("BTC", TAKER_BASE_FEE, TAKER_BASE_FEE * PRICE)
    assert (quote.asset, quote.base_qty, quote.fee) == ("USDT", D(0), D("0.1476"))
    assert (bnb.asset, bnb.base_qty, bnb.fee) == ("BNB", D(0), D("0.05"))
    assert (unpriced.asset, unpriced.fee) == ("BNB", D(0))


# ---------------------------------------------------------------------- the fill record


def test_fill_record_without_fee_asset_still_loads_as_quote_fee() -> None:
    old = {
        "fill_id": "f1",
        "client_id": "c1",
        "market": M,
        "side": "buy",
        "price": "60000",
        "qty": "0.001",
        "fee": "0.12",
        "liquidity": "taker",
        "ts_ms": T0,
    }
    fill = Fill.model_validate(old)
    assert (fill.fee_asset, fill.fee_base_qty, fill.credited_qty) == (None, D(0), D("0.001"))
    assert fill.cash_flow == -(D("60") + D("0.12"))
    assert Fill.model_validate(fill.model_dump(mode="json")) == fill


@pytest.mark.parametrize(("side", "base_qty"), [(Side.SELL, D("1e-8")), (Side.BUY, QTY)])
def test_fill_base_fee_on_a_sell_or_beyond_the_qty_is_refused(side: Side, base_qty: Decimal) -> None:
    fields = {"fill_id": "f", "client_id": "c", "market": M, "price": PRICE, "qty": QTY, "ts_ms": 0}
    with pytest.raises(ValueError, match="base-asset commission"):
        Fill.model_validate({**fields, "side": side, "fee_base_qty": base_qty})


def test_position_state_round_trip_keeps_the_credited_qty() -> None:
    core, entry = _enter()
    core.on_fill(_base_fee_fill(entry))
    again = PositionCore.from_state(core.state(), BTC, ExitConfig())
    assert again.position == core.position
    assert again.state() == core.state()
