"""The prices and quantities of a position's exit plan, as pure functions of the entry and config.

:class:`~actors.core.position.PositionCore` decides *when* each exit applies; this module says
*at what price and size*: the stop, the two targets and how the held quantity splits between
them, the trailing stop, the time-exit band, the price of a closing sell and the back-off after a
rejected one. Every number comes from :class:`~config.models.ExitConfig` and the instrument's
tick and lot; nothing here keeps state.
"""

from __future__ import annotations

from decimal import Decimal

from actors.core.config_decimals import config_decimal
from actors.domain.model import ONE, ExitReason, Instrument, MarketKind, Side, ceil_to, floor_to
from config.models import ExitConfig

TARGET_LEGS = (ExitReason.TARGET_ONE.value, ExitReason.TARGET_TWO.value)
"""The purposes of the two resting target sells (one leg only when a half would be below minimums)."""

CLOSE_BACKOFF_CAP_S = 300.0
"""The longest wait between two attempts at a close the venue keeps rejecting."""


def stop_price(entry: Decimal, config: ExitConfig) -> Decimal:
    """The initial stop, ``entry * (1 - stop_pct)`` (also the provisional stop of a partial entry)."""
    return entry * (ONE - config_decimal(config.stop_pct))


def target_price(raw: Decimal, instrument: Instrument) -> Decimal:
    """A target on the tick, rounded up (the passive side); a binary token is capped at ``1 - tick``."""
    price = instrument.round_price(raw, Side.SELL)
    if instrument.kind is MarketKind.BINARY:
        price = min(price, ONE - instrument.tick_size)
    return max(price, instrument.tick_size)


def target_prices(entry: Decimal, config: ExitConfig, instrument: Instrument) -> tuple[Decimal, Decimal]:
    """Target one and target two: ``entry * (1 + target_one_pct)`` and ``entry * (1 + target_two_pct)``."""
    one = target_price(entry * (ONE + config_decimal(config.target_one_pct)), instrument)
    two = target_price(entry * (ONE + config_decimal(config.target_two_pct)), instrument)
    return one, two


def sellable(qty: Decimal, instrument: Instrument) -> bool:
    """Whether a venue order can sell ``qty``: at least one lot and the minimum size."""
    return qty > 0 and qty >= instrument.lot_size and qty >= instrument.min_size


def split_targets(total: Decimal, instrument: Instrument, config: ExitConfig) -> dict[str, Decimal]:
    """The lot-aligned quantity per target leg: ``target_one_fraction`` at target one and the rest at
    target two, or everything at target one when either half would be below the venue's minimums."""
    one = instrument.round_qty(total * config_decimal(config.target_one_fraction))
    two = total - one
    if sellable(one, instrument) and sellable(two, instrument):
        return {TARGET_LEGS[0]: one, TARGET_LEGS[1]: two}
    return {TARGET_LEGS[0]: total}


def trailing_stop(entry: Decimal, high: Decimal, stop: Decimal, config: ExitConfig) -> Decimal | None:
    """The raised stop once the high since open reached ``entry * (1 + trailing_activate_pct)``:
    ``max(stop, entry * (1 + trailing_lock_pct), high * (1 - trailing_distance_pct))``, so it only
    rises; ``None`` while trailing is not active."""
    if high < trailing_activation(entry, config):
        return None
    lock = entry * (ONE + config_decimal(config.trailing_lock_pct))
    trail = high * (ONE - config_decimal(config.trailing_distance_pct))
    return max(stop, lock, trail)


def trailing_activation(entry: Decimal, config: ExitConfig) -> Decimal:
    """The high since open that turns the trailing stop on."""
    return entry * (ONE + config_decimal(config.trailing_activate_pct))


def time_band_width(entry: Decimal, config: ExitConfig) -> Decimal:
    """The time-exit band's half width around the entry price."""
    return entry * config_decimal(config.time_exit_band_pct)


def in_time_band(price: Decimal, entry: Decimal, config: ExitConfig) -> bool:
    """The time-exit band: ``|price - entry| <= entry * time_exit_band_pct``."""
    return abs(price - entry) <= time_band_width(entry, config)


def close_price(base: Decimal, purpose: str, attempts: int, config: ExitConfig, tick: Decimal) -> Decimal:
    """A closing sell's limit: ``base`` (the mark) less a slippage allowance that widens with each of
    the ``attempts`` already made at this close, never past ``max_close_slippage_pct`` (a venue that
    keeps refusing must not walk it to a tick); a flatten (``KILL_SWITCH``) is priced at that cap
    from its first attempt. Never below one tick."""
    steps = Decimal(attempts + 1)
    cap = config_decimal(config.max_close_slippage_pct)
    slip = min(cap, config_decimal(config.exit_slippage_pct) * steps)
    if purpose == ExitReason.KILL_SWITCH.value:
        slip = cap
    return max(tick, ceil_to(base * (ONE - cap), tick), floor_to(base * (ONE - slip), tick))


def close_backoff_ms(rejections: int, config: ExitConfig) -> int:
    """The wait before the next try at a close rejected ``rejections`` times in a row:
    ``close_retry_backoff_s`` doubled per rejection, at most :data:`CLOSE_BACKOFF_CAP_S`."""
    backoff_s = min(CLOSE_BACKOFF_CAP_S, config.close_retry_backoff_s * 2 ** (rejections - 1))
    return int(backoff_s * 1000)
