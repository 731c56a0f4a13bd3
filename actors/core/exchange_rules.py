"""A venue's order rules, applied before an order leaves: adjust what can be made valid, refuse the rest.

Why: a venue rejects an order breaking its rules after a round trip (Binance's -1013 "Filter
failure: ...", Polymarket's "breaks minimum tick size rule"), and a rejected exit is an exit not
made. Checked here, the order is either made valid the safe way or refused with a clear reason,
locally.

What is adjusted, always in the direction that never trades more nor at a worse price than asked:
- the price onto the tick (PRICE_FILTER ``tickSize``; Polymarket's tick): a buy rounds down, a
  sell up;
- the quantity onto the step (LOT_SIZE ``stepSize``; Polymarket's 0.01 shares): always down; a
  market order also onto MARKET_LOT_SIZE's ``stepSize`` (0, as Binance lists most pairs: LOT_SIZE's
  step alone).

What is refused (adjusting would change the order's intent): a price outside ``[minPrice,
maxPrice]`` (Polymarket: ``[tick, 1 - tick]``); a quantity outside ``[minQty, maxQty]`` after
flooring (a market order: LOT_SIZE's and MARKET_LOT_SIZE's bounds both, as Binance applies the
second on top of the first); a notional outside ``[minNotional, maxNotional]`` (MIN_NOTIONAL,
NOTIONAL; a market order only where ``applyToMarket`` / ``applyMinToMarket`` /
``applyMaxToMarket`` say, priced at the reference); a limit price outside
PERCENT_PRICE_BY_SIDE's band around the reference price (buys: ``[ref * bidMultiplierDown,
ref * bidMultiplierUp]``, sells with the ask multipliers; PERCENT_PRICE has one band for both
sides). The reference is the venue's average price over ``avgPriceMins`` (Binance's
``/api/v3/avgPrice``), which the caller reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import Field

from actors.domain.model import ZERO, Frozen, Instrument, Order, OrderType, Side, ceil_to, floor_to

POLYMARKET_LOT = Decimal("0.01")
"""Polymarket sizes are in hundredths of a share."""
BINANCE_MIN_NOTIONAL = Decimal(5)
"""NOTIONAL ``minNotional`` of Binance's USDT spot pairs (BTC, ETH, SOL, XRP list 5 USDT, market
orders included): what a paper order on a Binance instrument is held to, as an ``Instrument``
carries the tick, lot and minimum size but not the notional."""


class Rule(StrEnum):
    """Which rule adjusted or refused an order (the ``rule`` label of the refusal metric)."""

    PRICE_FILTER = "price_filter"
    LOT_SIZE = "lot_size"
    MARKET_LOT_SIZE = "market_lot_size"
    NOTIONAL = "notional"
    PERCENT_PRICE = "percent_price"


class PriceBand(Frozen):
    """PERCENT_PRICE_BY_SIDE (or PERCENT_PRICE: the same band both sides) around the reference price."""

    bid_up: Decimal = Field(gt=0)
    bid_down: Decimal = Field(ge=0)
    ask_up: Decimal = Field(gt=0)
    ask_down: Decimal = Field(ge=0)
    avg_price_mins: int = Field(default=5, ge=0)

    def bounds(self, side: Side, reference: Decimal) -> tuple[Decimal, Decimal]:
        down, up = (self.bid_down, self.bid_up) if side is Side.BUY else (self.ask_down, self.ask_up)
        return reference * down, reference * up


class OrderRules(Frozen):
    """One market's rules; a bound of ``None`` (or 0, as Binance writes it) is not enforced."""

    tick_size: Decimal = Field(ge=0)
    min_price: Decimal = ZERO
    max_price: Decimal | None = None
    step_size: Decimal = Field(ge=0)
    min_qty: Decimal = ZERO
    max_qty: Decimal | None = None
    market_step_size: Decimal = Field(default=ZERO, ge=0)
    """MARKET_LOT_SIZE, for market orders on top of LOT_SIZE; a step of 0 leaves LOT_SIZE's alone."""
    market_min_qty: Decimal = ZERO
    market_max_qty: Decimal | None = None
    min_notional: Decimal = ZERO
    max_notional: Decimal | None = None
    min_notional_to_market: bool = False
    max_notional_to_market: bool = False
    notional_avg_mins: int = 5
    band: PriceBand | None = None

    def needs_reference(self, order: Order) -> bool:
        """Does checking ``order`` need the venue's reference (average) price?"""
        if order.type is OrderType.MARKET:
            return (self.min_notional > 0 and self.min_notional_to_market) or (
                self.max_notional is not None and self.max_notional_to_market
            )
        return self.band is not None


class Refusal(Frozen):
    """An order that cannot be made valid: never sent."""

    rule: Rule
    reason: str

    @property
    def message(self) -> str:
        return f"refused before sending: {self.rule.value}: {self.reason}"


class Checked(Frozen):
    """The order to send (possibly adjusted) and what was adjusted, for the log."""

    order: Order
    adjusted: tuple[str, ...] = ()


def _dec(raw: Any) -> Decimal:
    return Decimal(str(raw))


def _bound(raw: Any) -> Decimal | None:
    """Binance writes a disabled bound as 0."""
    if raw in (None, ""):
        return None
    value = _dec(raw)
    return value if value > 0 else None


def binance_rules(filters: Iterable[Mapping[str, Any]]) -> OrderRules:
    """The rules of one symbol from its ``exchangeInfo`` ``filters`` (the venue's own strings)."""
    by_type = {str(f.get("filterType")): f for f in filters}
    price = by_type.get("PRICE_FILTER", {})
    lot = by_type.get("LOT_SIZE", {})
    fields: dict[str, Any] = {
        "tick_size": _dec(price.get("tickSize", 0)),
        "min_price": _dec(price.get("minPrice", 0)),
        "max_price": _bound(price.get("maxPrice")),
        "step_size": _dec(lot.get("stepSize", 0)),
        "min_qty": _dec(lot.get("minQty", 0)),
        "max_qty": _bound(lot.get("maxQty")),
    }
    if "MARKET_LOT_SIZE" in by_type:
        market_lot = by_type["MARKET_LOT_SIZE"]
        fields.update(
            market_step_size=_dec(market_lot.get("stepSize", 0)),
            market_min_qty=_dec(market_lot.get("minQty", 0)),
            market_max_qty=_bound(market_lot.get("maxQty")),
        )
    if "NOTIONAL" in by_type:
        notional = by_type["NOTIONAL"]
        fields.update(
            min_notional=_dec(notional.get("minNotional", 0)),
            max_notional=_bound(notional.get("maxNotional")),
            min_notional_to_market=bool(notional.get("applyMinToMarket", False)),
            max_notional_to_market=bool(notional.get("applyMaxToMarket", False)),
            notional_avg_mins=int(notional.get("avgPriceMins", 5)),
        )
    elif "MIN_NOTIONAL" in by_type:
        notional = by_type["MIN_NOTIONAL"]
        fields.update(
            min_notional=_dec(notional.get("minNotional", 0)),
            min_notional_to_market=bool(notional.get("applyToMarket", False)),
            notional_avg_mins=int(notional.get("avgPriceMins", 5)),
        )
    if "PERCENT_PRICE_BY_SIDE" in by_type:
        side = by_type["PERCENT_PRICE_BY_SIDE"]
        fields["band"] = PriceBand(
            bid_up=_dec(side["bidMultiplierUp"]),
            bid_down=_dec(side["bidMultiplierDown"]),
            ask_up=_dec(side["askMultiplierUp"]),
            ask_down=_dec(side["askMultiplierDown"]),
            avg_price_mins=int(side.get("avgPriceMins", 5)),
        )
    elif "PERCENT_PRICE" in by_type:
        both = by_type["PERCENT_PRICE"]
        up, down = _dec(both["multiplierUp"]), _dec(both["multiplierDown"])
        fields["band"] = PriceBand(
            bid_up=up,
            bid_down=down,
            ask_up=up,
            ask_down=down,
            avg_price_mins=int(both.get("avgPriceMins", 5)),
        )
    return OrderRules(**fields)


def polymarket_rules(tick: Decimal, min_size: Decimal = ZERO) -> OrderRules:
    """A Polymarket token's rules: prices on ``tick`` inside ``[tick, 1 - tick]``, 0.01-share sizes."""
    return OrderRules(
        tick_size=tick,
        min_price=tick,
        max_price=1 - tick,
        step_size=POLYMARKET_LOT,
        min_qty=max(min_size, POLYMARKET_LOT),
    )


def instrument_rules(instrument: Instrument) -> OrderRules:
    """The live venue's rules as far as ``instrument`` knows them: what a paper venue holds an order
    to, so a paper run refuses and adjusts what the live venue would (no price band: the paper venue
    has no ``avgPrice`` history)."""
    if instrument.venue == "polymarket":
        return polymarket_rules(instrument.tick_size, instrument.min_size)
    binance = instrument.venue == "binance"
    return OrderRules(
        tick_size=instrument.tick_size,
        min_price=instrument.tick_size if binance else ZERO,
        step_size=instrument.lot_size,
        min_qty=instrument.min_size or instrument.lot_size,
        min_notional=BINANCE_MIN_NOTIONAL if binance else ZERO,
        min_notional_to_market=binance,
    )


def _align(value: Decimal, origin: Decimal, step: Decimal, up: bool) -> Decimal:
    """``value`` on the grid ``origin + k * step`` (Binance checks ``(price - minPrice) % tickSize``)."""
    if step <= 0:
        return value
    offset = value - origin
    return origin + (ceil_to(offset, step) if up else floor_to(offset, step))


def _fmt(value: Decimal) -> str:
    return f"{value.normalize():f}"


def check_order(rules: OrderRules, order: Order, reference: Decimal | None = None) -> Checked | Refusal:
    """``order`` made valid under ``rules`` (tick and step adjusted), or why it cannot be.

    ``reference`` is the venue's average price, needed when ``rules.needs_reference(order)``:
    without it such an order is refused rather than sent unchecked.
    """
    adjusted: list[str] = []
    price = order.price
    is_limit = order.type is OrderType.LIMIT
    if is_limit:
        if price is None:
            return Refusal(rule=Rule.PRICE_FILTER, reason="a limit order needs a price")
        origin = rules.min_price if rules.min_price > 0 else ZERO
        aligned = _align(price, origin, rules.tick_size, up=order.side is Side.SELL)
        if aligned != price:
            adjusted.append(f"price {_fmt(price)} -> {_fmt(aligned)} (tick {_fmt(rules.tick_size)})")
            price = aligned
        if price <= 0 or price < rules.min_price or (rules.max_price is not None and price > rules.max_price):
            upper = _fmt(rules.max_price) if rules.max_price is not None else "-"
            return Refusal(
                rule=Rule.PRICE_FILTER,
                reason=f"price {_fmt(price)} outside [{_fmt(rules.min_price)}, {upper}]",
            )
    lots = [(Rule.LOT_SIZE, rules.step_size, rules.min_qty, rules.max_qty)]
    if order.type is OrderType.MARKET:
        lots.append(
            (Rule.MARKET_LOT_SIZE, rules.market_step_size, rules.market_min_qty, rules.market_max_qty)
        )
    qty = order.qty
    for _, step, low, _ in lots:
        qty = _align(qty, low if low > 0 else ZERO, step, up=False)
    if qty != order.qty:
        steps = " and ".join(_fmt(step) for _, step, _, _ in lots if step > 0)
        adjusted.append(f"qty {_fmt(order.qty)} -> {_fmt(qty)} (step {steps})")
    for rule, step, low, high in lots:
        off_step = step > 0 and _align(qty, low if low > 0 else ZERO, step, up=False) != qty
        if qty <= 0 or qty < low or (high is not None and qty > high) or off_step:
            upper = _fmt(high) if high is not None else "-"
            where = f"off the step {_fmt(step)}" if off_step else f"outside [{_fmt(low)}, {upper}]"
            return Refusal(rule=rule, reason=f"qty {_fmt(order.qty)} (on the step: {_fmt(qty)}) {where}")
    if rules.needs_reference(order) and reference is None:
        rule = Rule.NOTIONAL if order.type is OrderType.MARKET else Rule.PERCENT_PRICE
        return Refusal(rule=rule, reason="no reference price to check it against")
    refusal = _check_notional(rules, order.type, price if is_limit else reference, qty)
    if (
        refusal is None
        and is_limit
        and rules.band is not None
        and reference is not None
        and price is not None
    ):
        low, high = rules.band.bounds(order.side, reference)
        if not low <= price <= high:
            refusal = Refusal(
                rule=Rule.PERCENT_PRICE,
                reason=(
                    f"{order.side.value} price {_fmt(price)} outside [{_fmt(low)}, {_fmt(high)}] "
                    f"around the average price {_fmt(reference)}"
                ),
            )
    if refusal is not None:
        return refusal
    if not adjusted:
        return Checked(order=order)
    return Checked(order=order.model_copy(update={"price": price, "qty": qty}), adjusted=tuple(adjusted))


def _check_notional(
    rules: OrderRules, kind: OrderType, price: Decimal | None, qty: Decimal
) -> Refusal | None:
    if price is None:
        return None
    market = kind is OrderType.MARKET
    notional = price * qty
    if (
        rules.min_notional > 0
        and (not market or rules.min_notional_to_market)
        and notional < rules.min_notional
    ):
        return Refusal(
            rule=Rule.NOTIONAL,
            reason=f"notional {_fmt(notional)} below the minimum {_fmt(rules.min_notional)}",
        )
    if (
        rules.max_notional is not None
        and (not market or rules.max_notional_to_market)
        and notional > rules.max_notional
    ):
        return Refusal(
            rule=Rule.NOTIONAL,
            reason=f"notional {_fmt(notional)} above the maximum {_fmt(rules.max_notional)}",
        )
    return None
