"""Exchange rules before an order leaves: each Binance filter and Polymarket's tick, adjusted or refused."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from actors.core.exchange_rules import (
    Checked,
    OrderRules,
    Refusal,
    Rule,
    binance_rules,
    check_order,
    polymarket_rules,
)
from actors.domain.model import Order, OrderType, Side

D = Decimal

# BTCUSDT's filters as Binance's exchangeInfo lists them (strings, disabled bounds as 0)
BTCUSDT_FILTERS: list[dict[str, Any]] = [
    {
        "filterType": "PRICE_FILTER",
        "minPrice": "0.01000000",
        "maxPrice": "1000000.00000000",
        "tickSize": "0.01000000",
    },
    {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
    {"filterType": "ICEBERG_PARTS", "limit": 10},
    {
        "filterType": "NOTIONAL",
        "minNotional": "5.00000000",
        "applyMinToMarket": True,
        "maxNotional": "9000000.00000000",
        "applyMaxToMarket": False,
        "avgPriceMins": 5,
    },
    {
        "filterType": "PERCENT_PRICE_BY_SIDE",
        "bidMultiplierUp": "5",
        "bidMultiplierDown": "0.2",
        "askMultiplierUp": "5",
        "askMultiplierDown": "0.2",
        "avgPriceMins": 5,
    },
]
RULES = binance_rules(BTCUSDT_FILTERS)
REF = D("60000")


def order(side: Side, price: str | None, qty: str, kind: OrderType = OrderType.LIMIT) -> Order:
    return Order(
        client_id="c1",
        market="binance:BTC/USDT",
        side=side,
        type=kind,
        price=D(price) if price is not None else None,
        qty=D(qty),
    )


def checked(result: Checked | Refusal) -> Checked:
    assert isinstance(result, Checked), result
    return result


def refused(result: Checked | Refusal, rule: Rule) -> Refusal:
    assert isinstance(result, Refusal), result
    assert result.rule is rule
    return result


def test_binance_filters_parsed_from_exchange_info_strings() -> None:
    assert RULES.tick_size == D("0.01")
    assert RULES.min_price == D("0.01")
    assert RULES.step_size == D("0.00001")
    assert RULES.min_qty == D("0.00001")
    assert RULES.max_qty == D(9000)
    assert RULES.min_notional == D(5)
    assert RULES.min_notional_to_market
    assert not RULES.max_notional_to_market
    assert RULES.band is not None
    assert RULES.band.bid_up == D(5)
    assert RULES.band.ask_down == D("0.2")


def test_valid_order_passes_unchanged() -> None:
    o = order(Side.BUY, "60000.01", "0.001")
    result = checked(check_order(RULES, o, REF))
    assert result.order is o
    assert result.adjusted == ()


@pytest.mark.parametrize(
    ("side", "price", "aligned"), [(Side.BUY, "60000.019", "60000.01"), (Side.SELL, "60000.011", "60000.02")]
)
def test_price_off_tick_rounded_to_the_passive_side(side: Side, price: str, aligned: str) -> None:
    result = checked(check_order(RULES, order(side, price, "0.001"), REF))
    assert result.order.price == D(aligned)
    assert result.adjusted == (f"price {price} -> {aligned} (tick 0.01)",)


def test_price_grid_starts_at_min_price() -> None:
    rules = OrderRules(tick_size=D("0.1"), min_price=D("0.05"), step_size=D(1))
    assert checked(check_order(rules, order(Side.BUY, "1.0", "1"))).order.price == D("0.95")


def test_price_above_max_or_below_min_refused_price_filter() -> None:
    over = refused(check_order(RULES, order(Side.SELL, "1000000.01", "0.001"), REF), Rule.PRICE_FILTER)
    assert "outside [0.01, 1000000]" in over.reason
    refused(check_order(RULES, order(Side.BUY, "0.001", "10000"), REF), Rule.PRICE_FILTER)


def test_qty_off_step_floored_never_up() -> None:
    result = checked(check_order(RULES, order(Side.BUY, "60000", "0.0012345"), REF))
    assert result.order.qty == D("0.00123")
    assert result.adjusted == ("qty 0.0012345 -> 0.00123 (step 0.00001)",)


def test_qty_below_min_or_above_max_refused_lot_size() -> None:
    small = refused(check_order(RULES, order(Side.BUY, "60000", "0.000009"), REF), Rule.LOT_SIZE)
    assert "qty 0.000009 (on the step: 0) outside [0.00001, 9000]" in small.reason
    refused(check_order(RULES, order(Side.SELL, "100", "9000.00001"), REF), Rule.LOT_SIZE)


def test_notional_below_minimum_refused_after_flooring() -> None:
    # 0.0000834 floors to 0.00008: 4.8 USDT, under the 5 minimum (rounding qty up would trade more)
    refusal = refused(check_order(RULES, order(Side.BUY, "60000", "0.0000834"), REF), Rule.NOTIONAL)
    assert refusal.reason == "notional 4.8 below the minimum 5"
    assert refusal.message == "refused before sending: notional: notional 4.8 below the minimum 5"


def test_notional_above_maximum_refused_for_limit_not_market() -> None:
    rules = binance_rules([*BTCUSDT_FILTERS[:2], {**BTCUSDT_FILTERS[3], "maxNotional": "100"}])
    refused(check_order(rules, order(Side.BUY, "60000", "0.002")), Rule.NOTIONAL)
    assert isinstance(check_order(rules, order(Side.BUY, None, "0.002", OrderType.MARKET), REF), Checked)


def test_market_order_notional_checked_at_reference_price() -> None:
    market = order(Side.SELL, None, "0.00005", OrderType.MARKET)
    assert RULES.needs_reference(market)
    refused(check_order(RULES, market, REF), Rule.NOTIONAL)  # 3 USDT at the average price
    refused(check_order(RULES, market), Rule.NOTIONAL)  # no reference: not sent unchecked
    assert isinstance(check_order(RULES, market.model_copy(update={"qty": D("0.0001")}), REF), Checked)


def test_min_notional_filter_applies_to_market_only_when_asked() -> None:
    rules = binance_rules(
        [*BTCUSDT_FILTERS[:2], {"filterType": "MIN_NOTIONAL", "minNotional": "10", "applyToMarket": False}]
    )
    market = order(Side.SELL, None, "0.0001", OrderType.MARKET)
    assert not rules.needs_reference(market)
    assert isinstance(check_order(rules, market), Checked)
    refused(check_order(rules, order(Side.SELL, "60000", "0.0001")), Rule.NOTIONAL)


# BTCUSDT's MARKET_LOT_SIZE as Binance lists it: no minimum, no step of its own, a maxQty off any grid
MARKET_LOT = {
    "filterType": "MARKET_LOT_SIZE",
    "minQty": "0.00000000",
    "maxQty": "63.94567891",
    "stepSize": "0.00000000",
}
WITH_MARKET_LOT = binance_rules([*BTCUSDT_FILTERS, MARKET_LOT])


def test_market_lot_size_parsed_zero_step_and_minimum_mean_lot_size_alone() -> None:
    assert WITH_MARKET_LOT.market_max_qty == D("63.94567891")
    assert WITH_MARKET_LOT.market_step_size == 0
    assert WITH_MARKET_LOT.market_min_qty == 0
    assert RULES.market_max_qty is None  # a symbol without the filter: LOT_SIZE alone


def test_market_order_over_market_max_refused_market_lot_size_limit_of_same_qty_passes() -> None:
    market = order(Side.SELL, None, "63.94568", OrderType.MARKET)
    refusal = refused(check_order(WITH_MARKET_LOT, market, REF), Rule.MARKET_LOT_SIZE)
    assert refusal.reason == "qty 63.94568 (on the step: 63.94568) outside [0, 63.94567891]"
    assert refusal.message.startswith("refused before sending: market_lot_size: ")
    assert isinstance(check_order(WITH_MARKET_LOT, order(Side.SELL, "60000", "63.94568"), REF), Checked)
    assert isinstance(
        check_order(WITH_MARKET_LOT, market.model_copy(update={"qty": D("63.94567")}), REF), Checked
    )


def test_market_order_with_zero_market_step_floored_to_lot_step() -> None:
    result = checked(check_order(WITH_MARKET_LOT, order(Side.SELL, None, "0.0012345", OrderType.MARKET), REF))
    assert result.order.qty == D("0.00123")
    assert result.adjusted == ("qty 0.0012345 -> 0.00123 (step 0.00001)",)


def test_market_order_floored_onto_both_steps_and_refused_under_market_minimum() -> None:
    coarse = {**MARKET_LOT, "minQty": "0.01", "stepSize": "0.001"}
    rules = binance_rules([*BTCUSDT_FILTERS, coarse])
    result = checked(check_order(rules, order(Side.SELL, None, "0.0123456", OrderType.MARKET), REF))
    assert result.order.qty == D("0.012")  # 0.01 + k * 0.001, down: never sells more than asked
    assert result.adjusted == ("qty 0.0123456 -> 0.012 (step 0.00001 and 0.001)",)
    small = refused(
        check_order(rules, order(Side.SELL, None, "0.009", OrderType.MARKET), REF), Rule.MARKET_LOT_SIZE
    )
    assert "outside [0.01, 63.94567891]" in small.reason
    assert isinstance(
        check_order(rules, order(Side.SELL, "60000", "0.009"), REF), Checked
    )  # a limit: LOT_SIZE


def test_market_step_off_the_lot_grid_refused_rather_than_sent() -> None:
    rules = OrderRules(tick_size=D("0.01"), step_size=D("0.02"), market_step_size=D("0.03"))
    refusal = refused(check_order(rules, order(Side.SELL, None, "1", OrderType.MARKET)), Rule.LOT_SIZE)
    assert refusal.reason == "qty 1 (on the step: 0.99) off the step 0.02"


@pytest.mark.parametrize(
    ("side", "price", "ok"),
    [
        (Side.BUY, "300000", True),
        (Side.BUY, "300000.01", False),
        (Side.BUY, "12000", True),
        (Side.BUY, "11999.99", False),
        (Side.SELL, "300000.01", False),
        (Side.SELL, "11999.99", False),
    ],
)
def test_percent_price_by_side_band_around_average(side: Side, price: str, ok: bool) -> None:
    result = check_order(RULES, order(side, price, "0.001"), REF)
    if ok:
        checked(result)
    else:
        refusal = refused(result, Rule.PERCENT_PRICE)
        assert "around the average price 60000" in refusal.reason


def test_percent_price_sides_have_their_own_multipliers() -> None:
    by_side = {
        "filterType": "PERCENT_PRICE_BY_SIDE",
        "bidMultiplierUp": "1.2",
        "bidMultiplierDown": "0.5",
        "askMultiplierUp": "2",
        "askMultiplierDown": "0.8",
    }
    rules = binance_rules([*BTCUSDT_FILTERS[:2], by_side])
    refused(check_order(rules, order(Side.BUY, "130", "1"), D(100)), Rule.PERCENT_PRICE)
    checked(check_order(rules, order(Side.SELL, "130", "1"), D(100)))
    checked(check_order(rules, order(Side.BUY, "60", "1"), D(100)))
    refused(check_order(rules, order(Side.SELL, "60", "1"), D(100)), Rule.PERCENT_PRICE)


def test_limit_order_without_reference_refused_when_band_exists() -> None:
    refusal = refused(check_order(RULES, order(Side.BUY, "60000", "0.001")), Rule.PERCENT_PRICE)
    assert refusal.reason == "no reference price to check it against"


def test_polymarket_tick_change_moves_the_grid_and_bounds() -> None:
    fine, coarse = polymarket_rules(D("0.001"), D(5)), polymarket_rules(D("0.01"), D(5))
    buy = Order(client_id="p", market="polymarket:tok", side=Side.BUY, price=D("0.955"), qty=D("10.009"))
    assert checked(check_order(fine, buy)).order.price == D("0.955")
    adjusted = checked(check_order(coarse, buy)).order
    assert (adjusted.price, adjusted.qty) == (D("0.95"), D("10"))
    sell = buy.model_copy(update={"side": Side.SELL, "price": D("0.995")})
    assert checked(check_order(fine, sell)).order.price == D("0.995")
    refused(check_order(coarse, sell), Rule.PRICE_FILTER)  # 1.00 is not a price
    refused(check_order(coarse, buy.model_copy(update={"qty": D("4.99")})), Rule.LOT_SIZE)
