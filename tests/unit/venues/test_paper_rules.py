"""The paper venue holds orders to the live venue's rules (``instrument_rules``): what the live
gateway would adjust it adjusts the same way, and what it would refuse it refuses with the same
rule and reason, before the matching engine sees it. So a paper run has no order the venue would
have rejected."""

from __future__ import annotations

from decimal import Decimal

import pytest

from actors.core.exchange_rules import Refusal, binance_rules, check_order, instrument_rules
from actors.core.fees import FeeModel
from actors.domain.model import Candle, OrderStatus, OrderType, Side
from actors.venues.gateway import OrderRefusedError, VenueErrorKind
from actors.venues.paper import PaperGateway
from tests.unit.core.test_exchange_rules import BTCUSDT_FILTERS
from tests.unit.core.test_matching import BTC, UP, order

D = Decimal


def paper() -> PaperGateway:
    return PaperGateway("binance", FeeModel(), [BTC, UP])


async def test_paper_order_off_tick_and_step_adjusted_onto_the_grid_and_accepted() -> None:
    venue = paper()
    taken = await venue.submit(order("off-tick", Side.BUY, "100.019", "0.123456"))
    assert taken.status is OrderStatus.OPEN
    assert (taken.price, taken.qty) == (D("100.01"), D("0.12345"))  # a buy: price and size both down
    assert venue.engine.order("off-tick") == taken
    sell = await venue.submit(order("up-sell", Side.SELL, "0.503", "10", market=UP.market_id))
    assert sell.price == D("0.51")  # a sell rounds up: never sells for less than asked


async def test_paper_order_under_min_notional_refused_with_the_reason_never_reaches_the_engine() -> None:
    venue = paper()
    with pytest.raises(OrderRefusedError) as refused:
        await venue.submit(order("small", Side.BUY, "100", "0.0499"))  # 4.99 USDT
    assert refused.value.kind is VenueErrorKind.REJECTED
    assert refused.value.rule == "notional"
    assert refused.value.message == "refused before sending: notional: notional 4.99 below the minimum 5"
    assert venue.engine.order("small") is None
    assert venue.take_updates() == []


async def test_paper_refusal_is_the_one_the_live_rules_give() -> None:
    """The instrument's rules agree with BTCUSDT's exchangeInfo filters on tick, step and notional."""
    live = binance_rules(BTCUSDT_FILTERS[:4])  # without the price band, which needs the venue's average
    paper_rules = instrument_rules(BTC.model_copy(update={"min_size": D("0.00001")}))
    for o in (order("a", Side.BUY, "100.019", "0.123456"), order("b", Side.BUY, "100", "0.0499")):
        assert check_order(paper_rules, o) == check_order(live, o)
    # the instrument knows the minimum price and size, not Binance's maxima: the same rule refuses
    for o in (order("c", Side.BUY, "100", "0.000009"), order("d", Side.BUY, "0.001", "1")):
        paper_refusal, live_refusal = check_order(paper_rules, o), check_order(live, o)
        assert isinstance(paper_refusal, Refusal)
        assert isinstance(live_refusal, Refusal)
        assert paper_refusal.rule is live_refusal.rule


async def test_paper_polymarket_order_under_min_size_refused_lot_size() -> None:
    venue = paper()
    with pytest.raises(OrderRefusedError) as refused:
        await venue.submit(order("few", Side.BUY, "0.5", "4.99", market=UP.market_id))
    assert refused.value.rule == "lot_size"
    assert "outside [5, -]" in refused.value.message
    with pytest.raises(OrderRefusedError, match="price_filter"):
        await venue.submit(order("edge", Side.SELL, "0.995", "10", market=UP.market_id))  # above 1 - tick


async def test_paper_market_order_notional_checked_at_the_last_close() -> None:
    venue = paper()
    market = order("mkt", Side.SELL, None, "0.04", type_=OrderType.MARKET)
    with pytest.raises(OrderRefusedError, match="no reference price"):
        await venue.submit(market)  # no price seen yet: not sent unchecked
    venue.on_market([Candle(market=BTC.market_id, ts_ms=0, open=100, high=100, low=100, close=100, volume=1)])
    result = check_order(instrument_rules(BTC), market, D(100))
    assert isinstance(result, Refusal)
    with pytest.raises(OrderRefusedError) as refused:
        await venue.submit(market)  # 4 USDT at the close
    assert refused.value.message == result.message


async def test_paper_polymarket_tick_change_moves_the_grid_orders_go_onto() -> None:
    venue = paper()
    before = await venue.submit(order("coarse", Side.BUY, "0.0345", "200", market=UP.market_id))
    assert before.price == D("0.03")
    venue.on_market([UP.model_copy(update={"tick_size": D("0.001")})])  # the feed's tick_size_change
    after = await venue.submit(order("fine", Side.BUY, "0.0345", "200", market=UP.market_id))
    assert after.price == D("0.034")
    assert after.status is OrderStatus.OPEN
    venue.on_market([UP])  # back to 0.01: a price on the finer grid only goes down onto it
    back = await venue.submit(order("coarse-again", Side.BUY, "0.0345", "200", market=UP.market_id))
    assert back.price == D("0.03")
