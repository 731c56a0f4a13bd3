"""Config fractions as Decimals, converted once: the cores read them on every price and signal.

``to_decimal(0.02)`` (a float's shortest repr, parsed) costs about a microsecond; the exit plan and
sizing read the same handful of config floats on every price, so each is converted once and kept.
"""

from __future__ import annotations

from decimal import Decimal

from actors.domain.model import to_decimal

_CACHE: dict[float, Decimal] = {}


def config_decimal(value: float) -> Decimal:
    """``to_decimal(value)``, cached per float. Only floats (``1 == 1.0`` but ``Decimal(1)`` and
    ``Decimal("1.0")`` print apart), never a zero (0.0 and -0.0 are one key, two Decimals). Only
    for config values: the cache is never trimmed."""
    if type(value) is not float or not value:
        return to_decimal(value)
    found = _CACHE.get(value)
    if found is None:
        found = _CACHE[value] = to_decimal(value)
    return found
