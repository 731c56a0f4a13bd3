"""``live.binance.timeframe(s)``: the candles of a live Binance feed, per market, Binance's intervals only."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.data.live import binance_timeframe
from config.loader import ConfigError, load_settings


def test_timeframe_defaults_to_1m_and_a_market_override_wins() -> None:
    settings = load_settings(None, overrides=['live.binance.timeframes={"binance:ETH/USDT"="4h"}'])
    assert binance_timeframe(settings, "binance:BTC/USDT") == ("1m", 60_000)
    assert binance_timeframe(settings, "binance:ETH/USDT") == ("4h", 14_400_000)


@pytest.mark.parametrize(
    ("toml", "field", "value"),
    [
        ('[live.binance]\ntimeframe = "7m"\n', "live.binance.timeframe", "7m"),
        ('[live.binance.timeframes]\n"binance:BTC/USDT" = "2m"\n', "live.binance.timeframes", "2m"),
    ],
)
def test_unknown_timeframe_in_a_file_is_a_config_error_naming_field_and_file(
    tmp_path: Path, toml: str, field: str, value: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert str(path) in str(err.value)
    assert f"{field}:" in str(err.value)
    assert f"'{value}' is not a Binance timeframe" in str(err.value)
