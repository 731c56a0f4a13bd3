"""config_decimal: the cached conversion is to_decimal's, digit for digit."""

from __future__ import annotations

from decimal import Decimal

from actors.core.config_decimals import config_decimal
from actors.domain.model import to_decimal


def test_config_decimal_equals_to_decimal_digit_for_digit_and_is_reused() -> None:
    for value in (0.02, 0.5, 1.0, 0.1, 1e-05, 0.3333333333333333):
        first, again = config_decimal(value), config_decimal(value)
        assert str(first) == str(to_decimal(value))
        assert again is first


def test_config_decimal_keeps_ints_decimals_and_signed_zeros_apart_from_equal_floats() -> None:
    config_decimal(1.0)
    assert str(config_decimal(1)) == "1"
    assert str(config_decimal(Decimal("1.00"))) == "1.00"
    assert str(config_decimal(0.0)) == "0.0"
    assert str(config_decimal(-0.0)) == "-0.0"
