"""The one place fees and slippage are computed, for backtest, paper, sandbox and reconciliation.

Fee formulas (``CostConfig``):

* **Binance spot**: ``fee = price * qty * rate`` with ``rate`` = ``maker`` or ``taker``.
* **Polymarket** (binary outcome tokens): ``fee = C * rate * (p * (1 - p)) ** exponent`` where
  ``C`` is the number of shares and ``p`` the fill price. This is the formula of Polymarket's
  current fee documentation (docs.polymarket.com/trading/fees, "fee = C x feeRate x p x (1 - p)")
  and of the markets' ``feeSchedule`` (``crypto_fees_v2``: ``rate 0.07, exponent 1,
  takerOnly true``). Makers pay nothing when ``taker_only``; the maker *rebate* (``rebateRate``,
  paid daily and pro rata by Polymarket) is not modelled, so a maker fill's fee is exactly 0.
  The earlier (January 2026) 15-minute crypto schedule was ``C * p * 0.25 * (p(1-p))**2``: it had an
  extra factor ``p``; that legacy form is *not* what this model computes.
  At ``p = 0.5`` the crypto fee is 0.0175 USDC a share (3.5 % of the notional).

Rounding: fees are exact ``Decimal`` values, truncated (rounded toward zero) to the venue's
fee precision: ``1e-8`` of the quote asset on Binance, ``1e-5`` USDC on Polymarket (the venue
rounds fees to 5 decimals; a smaller fee is 0). Truncation is also what makes the per-order
fund reservation of the matching engine safe: the fees of the partial fills of an order never
sum to more than the unrounded fee of the whole order, which ``max_fee`` rounds *up*.

Value and asset. ``fee`` is always the commission's *value* in the quote asset (USDT, USDC):
one currency keeps ledgers, ``Fill.fee`` and ``Position.fees`` summable. *Which balance pays it*
is the fee-asset rule (``FeeAsset``), decided here and nowhere else:

* ``QUOTE``: every commission comes out of the quote asset, whatever the side. The default of
  ``FeeModel``, so the paper venue and backtests charge this way: they hold no venue balances to
  drift from, a backtest's quantities stay whole lots, and the value charged is the same.
* ``RECEIVED`` (Binance spot's default, what the sandbox Binance venue charges): the asset the
  fill receives pays. A buy's commission is taken in the base asset, ``qty * rate`` truncated to
  ``1e-8`` (Binance's ``baseCommissionPrecision``): the account is credited ``qty`` less that,
  and the fill reports it as ``fee_base_qty`` with ``fee = fee_base_qty * price`` exactly (the
  fill price values it, so the quote paid, ``price * qty``, splits exactly into the cost of what
  is held and the fee). A sell's commission is taken from the quote it receives, as under
  ``QUOTE``. Binary outcome tokens always pay in quote here (Polymarket's share-denominated fee
  is not modelled).
* ``FeeToken`` ("pay fees with BNB"): under ``RECEIVED``, when the account holds enough of the
  token, every fill's commission is ``(1 - discount)`` of the quote fee converted at the token's
  price, truncated to ``1e-8`` token, and valued back at that price; the token balance pays it.

A commission a venue reports (``commissionAsset``/``commission``, ccxt's ``fee: {currency,
cost}``) maps onto a fill through ``reported_commission``: in quote it stays quote, in the base
asset it stays base (``fee_base_qty``, valued at the fill price), in a third asset (BNB) it is
valued at that asset's price in quote, which the caller supplies.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, Context, Decimal
from enum import StrEnum

from actors.domain.model import (
    ONE,
    ZERO,
    Fill,
    Instrument,
    Liquidity,
    MarketKind,
    Side,
    ceil_to,
    floor_to,
    to_decimal,
)
from config.models import CostConfig

BINANCE = "binance"
POLYMARKET = "polymarket"

FEE_PRECISION: dict[str, Decimal] = {BINANCE: Decimal("1e-8"), POLYMARKET: Decimal("1e-5")}
"""Smallest fee unit per venue; fees are truncated to it."""
BINARY_QUOTE = "USDC"
ASSET_PRECISION = Decimal("1e-8")
"""Unit of a commission charged in a base asset or a fee token (Binance: 8 decimals)."""


def market_assets(instrument: Instrument) -> tuple[str, str]:
    """(base, quote) of a market: ``BTC/USDT`` -> (BTC, USDT); a binary token -> (token, USDC)."""
    if instrument.kind is MarketKind.BINARY:
        return instrument.symbol, BINARY_QUOTE
    base, sep, quote = instrument.symbol.split(":", 1)[0].partition("/")
    if not sep or not base or not quote:
        raise ValueError(f"cannot tell base and quote of {instrument.symbol!r}")
    return base, quote


class FeeAsset(StrEnum):
    """Which balance pays a fill's commission (see the module docstring)."""

    QUOTE = "quote"
    RECEIVED = "received"


@dataclass(frozen=True, slots=True)
class FeeToken:
    """Binance's "pay fees with BNB": the token, its price in the quote asset, the discount it earns."""

    price: Decimal
    asset: str = "BNB"
    discount: Decimal = Decimal("0.25")

    def __post_init__(self) -> None:
        if self.price <= 0 or not ZERO <= self.discount < ONE:
            raise ValueError(f"a fee token needs a positive price and a discount in [0, 1): {self}")


@dataclass(frozen=True, slots=True)
class Commission:
    """One fill's commission: ``fee`` (value in quote), the asset charged, the base kept."""

    fee: Decimal
    asset: str | None = None
    """None: the quote asset (the ``QUOTE`` rule names no asset, as before fills carried one)."""
    base_qty: Decimal = ZERO
    """The part of a buy's quantity kept as the commission (``Fill.fee_base_qty``)."""


def reported_commission(
    amount: Decimal,
    asset: str,
    *,
    side: Side,
    price: Decimal,
    base: str,
    quote: str,
    asset_price: Decimal | None = None,
) -> Commission:
    """A commission a venue reported (``amount`` of ``asset``) as the fill carries it.

    Quote stays quote; base on a buy stays base (``base_qty``, valued at the fill ``price``);
    a third asset is valued at ``asset_price`` (its price in quote), and at 0 when the caller
    has no price for it (the caller logs that). Base on a sell (not something Binance does: a
    sell's commission comes from the quote it receives) is valued at ``price``.
    """
    if amount == 0 or asset == quote:
        return Commission(fee=amount, asset=asset or None)
    if asset == base:
        return Commission(fee=amount * price, asset=asset, base_qty=amount if side is Side.BUY else ZERO)
    return Commission(fee=ZERO if asset_price is None else amount * asset_price, asset=asset)


def polymarket_fee_raw(shares: Decimal, price: Decimal, rate: Decimal, exponent: Decimal) -> Decimal:
    """Unrounded Polymarket fee ``shares * rate * (p * (1 - p)) ** exponent``.

    Exact for a whole exponent (the only kind Polymarket publishes); a fractional one goes
    through ``Decimal`` power at 28 significant digits, still deterministic.
    """
    if not ZERO < price < ONE:
        raise ValueError(f"a Polymarket price must lie strictly between 0 and 1, got {price}")
    base = price * (ONE - price)
    factor = base ** int(exponent) if exponent == exponent.to_integral_value() else base**exponent
    return shares * rate * factor


class FeeModel:
    """Fees and slippage from ``CostConfig``; pure, so every component charges the same amount."""

    def __init__(
        self,
        costs: CostConfig | None = None,
        *,
        fee_asset: FeeAsset = FeeAsset.QUOTE,
        fee_token: FeeToken | None = None,
    ) -> None:
        self.costs = costs if costs is not None else CostConfig()
        self.fee_asset = fee_asset
        self.fee_token = fee_token
        self._maker = to_decimal(self.costs.binance.maker)
        self._taker = to_decimal(self.costs.binance.taker)
        self._pm_rate = to_decimal(self.costs.polymarket.rate)
        self._pm_exponent = to_decimal(self.costs.polymarket.exponent)
        self._pm_taker_only = self.costs.polymarket.taker_only
        self._slippage = to_decimal(self.costs.slippage_pct)

    @staticmethod
    def trades_on(venue: str) -> bool:
        """Whether ``venue`` is a trading venue with a fee schedule (a price source like Chainlink is not)."""
        return venue.lower() in FEE_PRECISION

    @staticmethod
    def _venue(venue: str) -> str:
        key = venue.lower()
        if key not in FEE_PRECISION:
            raise ValueError(f"no fee schedule for venue {venue!r}; known: {sorted(FEE_PRECISION)}")
        return key

    def precision(self, venue: str) -> Decimal:
        """The fee unit of ``venue``: fees are whole multiples of it."""
        return FEE_PRECISION[self._venue(venue)]

    def _raw(self, venue: str, price: Decimal, qty: Decimal, liquidity: Liquidity) -> Decimal:
        if qty < 0:
            raise ValueError(f"fee of a negative quantity {qty}")
        if venue == BINANCE:
            rate = self._maker if liquidity is Liquidity.MAKER else self._taker
            return price * qty * rate
        if liquidity is Liquidity.MAKER and self._pm_taker_only:
            return ZERO
        return polymarket_fee_raw(qty, price, self._pm_rate, self._pm_exponent)

    def fee(
        self,
        venue: str,
        instrument: Instrument,  # noqa: ARG002 - per-instrument schedules plug in here
        side: Side,  # noqa: ARG002 - side-dependent schedules plug in here
        price: Decimal,
        qty: Decimal,
        liquidity: Liquidity,
    ) -> Decimal:
        """Fee of one fill in the quote asset, truncated to the venue's fee precision."""
        key = self._venue(venue)
        raw = self._raw(key, price, qty, liquidity)
        return raw.quantize(FEE_PRECISION[key], rounding=ROUND_DOWN)

    def quote_pays(self, instrument: Instrument, side: Side) -> bool:
        """Whether the quote balance pays this side's commission (a buy must then reserve it)."""
        return self.fee_asset is FeeAsset.QUOTE or side is Side.SELL or instrument.kind is MarketKind.BINARY

    def commission(
        self,
        instrument: Instrument,
        side: Side,
        price: Decimal,
        qty: Decimal,
        liquidity: Liquidity,
        *,
        token_free: Decimal = ZERO,
    ) -> Commission:
        """One fill's commission by the fee-asset rule; ``token_free``: the fee token the account holds."""
        fee = self.fee(instrument.venue, instrument, side, price, qty, liquidity)
        token = self.fee_token
        if self.fee_asset is FeeAsset.QUOTE or instrument.kind is MarketKind.BINARY or fee == 0:
            return Commission(fee=fee)
        raw = self._raw(self._venue(instrument.venue), price, qty, liquidity)
        if token is not None:
            amount = (raw * (ONE - token.discount) / token.price).quantize(
                ASSET_PRECISION, rounding=ROUND_DOWN
            )
            if amount <= token_free:
                return Commission(fee=amount * token.price, asset=token.asset)
        base, quote = market_assets(instrument)
        if side is Side.SELL:
            return Commission(fee=fee, asset=quote)
        base_qty = (raw / price).quantize(ASSET_PRECISION, rounding=ROUND_DOWN)
        return Commission(fee=base_qty * price, asset=base, base_qty=base_qty)

    def charged(self, fill: Fill, quote: str) -> tuple[str, Decimal]:
        """(asset, amount) of a fill's commission in Binance's ``commissionAsset``/``commission``."""
        token = self.fee_token
        if fill.fee_base_qty > 0:
            return fill.fee_asset or quote, fill.fee_base_qty
        if token is not None and fill.fee_asset == token.asset:
            return token.asset, fill.fee / token.price
        return fill.fee_asset or quote, fill.fee

    def max_fee(self, venue: str, price: Decimal, qty: Decimal) -> Decimal:
        """Upper bound of the fee of ``qty`` at ``price`` (taker, rounded up): what to reserve."""
        key = self._venue(venue)
        raw = self._raw(key, price, qty, Liquidity.TAKER)
        # enough digits for any magnitude: the default 28 raise InvalidOperation on an absurd order
        digits = Context(prec=max(28, raw.adjusted() - FEE_PRECISION[key].adjusted() + 2))
        return raw.quantize(FEE_PRECISION[key], rounding=ROUND_CEILING, context=digits)

    def slipped_price(self, side: Side, price: Decimal, instrument: Instrument | None = None) -> Decimal:
        """A market order's fill price in candle mode: ``slippage_pct`` worse than ``price``.

        With ``instrument`` the result is tick-aligned on the adverse side (buys up, sells down)
        and kept a valid price: at least one tick, and below 1 for a binary outcome token.
        """
        slipped = price * (ONE + self._slippage) if side is Side.BUY else price * (ONE - self._slippage)
        if instrument is None:
            return slipped
        tick = instrument.tick_size
        aligned = ceil_to(slipped, tick) if side is Side.BUY else floor_to(slipped, tick)
        if instrument.kind is MarketKind.BINARY:
            aligned = min(aligned, ONE - tick)
        return max(aligned, tick)
