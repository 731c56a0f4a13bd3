"""Market patterns in a strategy's ``markets``: resolved once, on load, against the available markets."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.domain.topology import topology
from config.loader import ConfigError, load_settings
from config.market_patterns import expand, is_pattern, resolve_markets
from config.models import BUNDLED_CANDLES, Settings

AVAILABLE = (
    "binance:XRP/USDT",
    "binance:BTC/USDT",
    "binance:ETH/USDC",
    "binance:ETH/USDT",
    "binance:SOL/USDT",
)


def _config(tmp_path: Path, markets: str, *, field: str = "markets") -> Path:
    path = tmp_path / "patterns.toml"
    path.write_text(
        f'[[strategies]]\nkind = "mean_reversion"\nname = "mr"\n{field} = {markets}\nallocation = 0.4\n'
        '[[strategies]]\nkind = "momentum_breakout"\nname = "mb"\nmarkets = ["binance:SOL/USDT"]\n'
        "allocation = 0.1\n"
    )
    return path


@pytest.mark.parametrize(
    ("entry", "pattern"),
    [
        ("binance:*/USDT", True),
        ("binance:BTC/USD?", True),
        ("binance:[BE]TC/USDT", True),
        ("binance:BTC/USDT", False),
    ],
)
def test_is_pattern_only_for_glob_characters(entry: str, pattern: bool) -> None:
    assert is_pattern(entry) is pattern


def test_pattern_expands_to_its_sorted_matches_in_its_place() -> None:
    markets, unmatched = expand(("binance:SOL/USDT", "binance:*/USDT"), AVAILABLE)
    # the literal keeps its first place; the glob's other matches follow, sorted; ETH/USDC is no /USDT
    assert markets == ("binance:SOL/USDT", "binance:BTC/USDT", "binance:ETH/USDT", "binance:XRP/USDT")
    assert unmatched == ()


def test_pattern_is_case_sensitive_and_whole_id() -> None:
    assert expand(("binance:*/usdt",), AVAILABLE) == ((), ("binance:*/usdt",))
    assert expand(("*:ETH/*",), AVAILABLE)[0] == ("binance:ETH/USDC", "binance:ETH/USDT")
    assert expand(("binance:ETH/USD?",), AVAILABLE)[0] == ("binance:ETH/USDC", "binance:ETH/USDT")


def test_expansion_is_independent_of_the_available_order() -> None:
    forward = expand(("binance:*",), AVAILABLE)
    backward = expand(("binance:*",), tuple(reversed(AVAILABLE)))
    assert forward == backward
    assert forward[0] == tuple(sorted(AVAILABLE))


def test_settings_without_patterns_are_returned_unchanged() -> None:
    settings = load_settings(env={})
    assert resolve_markets(settings) == (settings, {})


def test_default_config_with_a_pattern_trades_the_bundled_markets(tmp_path: Path) -> None:
    settings = load_settings(_config(tmp_path, '["binance:*/USDT"]'), env={})
    mr = settings.strategy("mr")
    assert mr.markets == tuple(sorted(BUNDLED_CANDLES))
    assert mr.market == mr.markets[0]
    assert mr.for_market("binance:XRP/USDT").markets == ("binance:XRP/USDT",)


def test_pattern_matching_nothing_names_the_file_and_the_strategy_field(tmp_path: Path) -> None:
    path = _config(tmp_path, '["binance:BTC/USDT", "binance:*/EUR"]')
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    (problem,) = caught.value.problems
    assert problem.source == str(path)
    assert problem.path == "strategies[name=mr].markets"
    assert "'binance:*/EUR' matches no market" in problem.message
    assert "binance:BTC/USDT, binance:ETH/USDT" in problem.message  # what was available


def test_pattern_in_market_alone_is_reported_at_market(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_config(tmp_path, '"kraken:*"', field="market"), env={})
    assert caught.value.problems[0].path == "strategies[name=mr].market"


def test_pattern_from_an_override_names_the_override(tmp_path: Path) -> None:
    override = 'strategies.mr.markets=["binance:DOGE/*"]'
    with pytest.raises(ConfigError) as caught:
        load_settings(_config(tmp_path, '["binance:BTC/USDT"]'), env={}, overrides=[override])
    assert caught.value.problems[0].source == f"override {override}"


def test_pattern_resolves_against_the_given_markets_too(tmp_path: Path) -> None:
    """The research CLI's --data MARKET=FILE markets count as available besides replay.candles."""
    settings = load_settings(
        _config(tmp_path, '["binance:*/USDT"]'), env={}, markets=["binance:DOGE/USDT", "binance:DOGE/BTC"]
    )
    assert settings.strategy("mr").markets == tuple(sorted({*BUNDLED_CANDLES, "binance:DOGE/USDT"}))


def test_replay_candles_decide_what_a_pattern_matches(tmp_path: Path) -> None:
    settings = load_settings(
        _config(tmp_path, '["binance:*/USDT"]'),
        env={},
        overrides=['replay.candles={"binance:SOL/USDT" = "sol.csv", "binance:BTC/USDT" = "btc.csv"}'],
    )
    assert settings.strategy("mr").markets == ("binance:BTC/USDT", "binance:SOL/USDT")


def test_pattern_config_has_the_topology_of_its_explicit_list(tmp_path: Path) -> None:
    """Same feeds, venues, strategies and routing: per-market cores and checkpoints follow from it."""
    pattern = load_settings(_config(tmp_path, '["binance:*/USDT"]'), env={})
    listed = load_settings(_config(tmp_path, str(sorted(BUNDLED_CANDLES)).replace("'", '"')), env={})
    assert pattern == listed
    assert topology(pattern) == topology(listed)
    assert topology(pattern).feeds == tuple(sorted(BUNDLED_CANDLES))
    assert topology(pattern).strategies_watching("binance:SOL/USDT") == ("mr", "mb")


def test_topology_of_unresolved_settings_is_refused() -> None:
    settings = Settings.model_validate(
        {"strategies": [{"kind": "mean_reversion", "name": "mr", "markets": ["binance:*/USDT"]}]}
    )
    with pytest.raises(ValueError, match="unresolved market patterns"):
        topology(settings)
