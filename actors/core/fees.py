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

Currency: every fee is denominated in the quote asset (USDT, USDC), whatever the side. Real
venues take a buy's fee in the asset received (Binance in the base asset unless BNB pays;
Polymarket in shares, ``fee / p`` of them); valued at the fill price that is the same amount,
and one currency keeps ledgers and ``Position.fees`` summable.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_DOWN, Decimal

from actors.domain.model import (
    ONE,
    ZERO,
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

    def __init__(self, costs: CostConfig | None = None) -> None:
        self.costs = costs if costs is not None else CostConfig()
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

    def max_fee(self, venue: str, price: Decimal, qty: Decimal) -> Decimal:
        """Upper bound of the fee of ``qty`` at ``price`` (taker, rounded up): what to reserve."""
        key = self._venue(venue)
        raw = self._raw(key, price, qty, Liquidity.TAKER)
        return raw.quantize(FEE_PRECISION[key], rounding=ROUND_CEILING)

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
