"""config.loader: the shipped configs load, overrides apply, secrets stay secret, mistakes are explained.

Every mistake test checks the three things a reader of the error needs: where the value came from
(file, environment variable or override), which field, and what was expected.
"""

from __future__ import annotations

import json
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest

from config.dump import dump_settings
from config.loader import (
    CONFIG_DIR,
    DEFAULT_CONFIG,
    PROJECT_ROOT,
    ConfigError,
    load_settings,
    parse_value,
    resolve_path,
)
from config.models import MeanReversionConfig, Mode, Settings

SECRET = "sk-TOPSECRET-4242"
LIVE_SECRETS = {
    "RAYTRADER_SECRETS__BINANCE_API_KEY": "k-" + SECRET,
    "RAYTRADER_SECRETS__BINANCE_API_SECRET": "s-" + SECRET,
    "RAYTRADER_SECRETS__POLYMARKET_PRIVATE_KEY": "p-" + SECRET,
}

BASE = """\
mode = "paper"

[portfolio]
cash_reserve = 0.10

[[strategies]]
kind = "mean_reversion"
name = "mr"
market = "binance:BTC/USDT"
allocation = 0.40

[[strategies]]
kind = "ml_momentum"
name = "ml"
market = "binance:BTC/USDT"
allocation = 0.30
"""


def write(tmp_path: Path, text: str, name: str = "raytrader.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(
    path: Path | None = None, env: dict[str, str] | None = None, overrides: tuple[str, ...] = ()
) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={} if env is None else env, overrides=overrides)
    return str(info.value)


def line_with(message: str, fragment: str) -> str:
    """The one problem line mentioning `fragment` (errors are one problem per line)."""
    lines = [line for line in message.splitlines() if fragment in line]
    assert len(lines) == 1, message
    return lines[0]


# --------------------------------------------------------------------------- shipped configs


def test_default_config_loads_documented_allocations() -> None:
    settings = load_settings(env={})
    assert settings.mode is Mode.PAPER
    allocations = {s.name: s.allocation for s in settings.strategies}
    assert allocations == {
        "mean_reversion": 0.40,
        "ml_momentum": 0.30,
        "momentum_breakout": 0.10,
        "polymarket_lag": 0.10,
    }
    assert settings.portfolio.cash_reserve == pytest.approx(0.10)
    assert sum(allocations.values()) + settings.portfolio.cash_reserve == pytest.approx(1.0)
    assert settings.strategy("polymarket_lag").min_market_age_h == 0


def test_default_config_relative_paths_resolved_at_project_root() -> None:
    settings = load_settings(env={})
    assert CONFIG_DIR.parent == PROJECT_ROOT
    assert settings.state_dir == PROJECT_ROOT / "state"
    assert len(settings.replay.candles) == 4
    for path in settings.replay.candles.values():
        assert path.is_absolute()
        assert path.exists()
    assert settings.replay.polymarket_markets.exists()
    assert settings.replay.chainlink_ticks.exists()


def test_resolve_path_absolute_kept_relative_anchored() -> None:
    assert resolve_path(Path("/var/lib/rt")) == Path("/var/lib/rt")
    assert resolve_path(Path("state/x")) == PROJECT_ROOT / "state" / "x"
    assert resolve_path(Path("~/rt")) == Path.home() / "rt"


def test_explicit_default_path_loads_same_settings() -> None:
    assert load_settings(DEFAULT_CONFIG, env={}) == load_settings(env={})


def test_sandbox_config_with_env_secrets_loads_live() -> None:
    settings = load_settings(CONFIG_DIR / "sandbox.toml", env=LIVE_SECRETS)
    assert settings.mode is Mode.LIVE
    assert settings.live.confirm is True
    assert settings.live.binance.url == "http://127.0.0.1:8801"
    assert settings.live.polymarket.url == "http://127.0.0.1:8802"
    assert settings.missing_live_secrets() == []


def test_sandbox_config_without_secrets_names_missing_secrets() -> None:
    message = error_of(CONFIG_DIR / "sandbox.toml")
    line = line_with(message, "live mode needs secrets")
    assert str(CONFIG_DIR / "sandbox.toml") in line
    assert "secrets.binance_api_key" in line
    assert "secrets.polymarket_private_key" in line


def test_live_example_config_with_env_secrets_loads_unconfirmed() -> None:
    settings = load_settings(CONFIG_DIR / "live.example.toml", env=LIVE_SECRETS)
    assert settings.mode is Mode.LIVE
    assert settings.live.confirm is False
    assert settings.live.binance.url == "https://api.binance.com"
    assert settings.live.polymarket.url == "https://clob.polymarket.com"
    assert sum(s.allocation for s in settings.strategies) + settings.portfolio.cash_reserve == pytest.approx(
        1.0
    )


# --------------------------------------------------------------------------- overrides


def test_env_override_nested_field_applied() -> None:
    settings = load_settings(
        env={"RAYTRADER_PORTFOLIO__RISK_PER_TRADE": "0.01", "RAYTRADER_STATE_DIR": "/tmp/rt"}
    )
    assert settings.portfolio.risk_per_trade == 0.01
    assert settings.state_dir == Path("/tmp/rt")


def test_env_override_names_case_insensitive() -> None:
    settings = load_settings(env={"raytrader_portfolio__max_concurrent_positions": "4"})
    assert settings.portfolio.max_concurrent_positions == 4


def test_env_override_mode_live_with_secrets_applied() -> None:
    settings = load_settings(env={"RAYTRADER_MODE": "live", **LIVE_SECRETS})
    assert settings.mode is Mode.LIVE


def test_env_override_by_strategy_name_applied() -> None:
    settings = load_settings(env={"RAYTRADER_STRATEGIES__MEAN_REVERSION__BB_STD": "2.5"})
    strategy = settings.strategy("mean_reversion")
    assert isinstance(strategy, MeanReversionConfig)
    assert strategy.bb_std == 2.5


def test_env_override_array_and_string_values_parsed() -> None:
    settings = load_settings(
        env={
            "RAYTRADER_PORTFOLIO__PEAK_HOURS_UTC": "[8, 20]",
            "RAYTRADER_LIVE__BINANCE__URL": "http://127.0.0.1:9999",
            "RAYTRADER_REPLAY__SPEED": "max",
        }
    )
    assert settings.portfolio.peak_hours_utc == (8, 20)
    assert settings.live.binance.url == "http://127.0.0.1:9999"
    assert settings.replay.speed == "max"


def test_parse_value_toml_scalars_else_string() -> None:
    assert parse_value("0.01") == 0.01
    assert parse_value("true") is True
    assert parse_value("[12, 23]") == [12, 23]
    assert parse_value('"123"') == "123"
    assert parse_value("live") == "live"
    assert parse_value("2024-03-01") == "2024-03-01"
    assert parse_value("1\nx = 2") == "1\nx = 2"


def test_cli_override_field_and_strategy_by_name_applied() -> None:
    settings = load_settings(
        env={},
        overrides=[
            "portfolio.max_concurrent_positions=3",
            "strategies.mean_reversion.bb_std=2.5",
            "strategies.mean_reversion.regime.threshold=0.8",
        ],
    )
    assert settings.portfolio.max_concurrent_positions == 3
    strategy = settings.strategy("mean_reversion")
    assert isinstance(strategy, MeanReversionConfig)
    assert strategy.bb_std == 2.5
    assert strategy.regime.threshold == 0.8


def test_cli_override_strategy_by_index_applied() -> None:
    settings = load_settings(env={}, overrides=["strategies.1.enabled=false"])
    assert settings.strategies[1].name == "ml_momentum"
    assert settings.strategies[1].enabled is False


def test_cli_override_wins_over_env() -> None:
    settings = load_settings(
        env={"RAYTRADER_PORTFOLIO__MAX_CONCURRENT_POSITIONS": "4"},
        overrides=["portfolio.max_concurrent_positions=5"],
    )
    assert settings.portfolio.max_concurrent_positions == 5


def test_reserved_config_env_var_ignored() -> None:
    settings = load_settings(env={"RAYTRADER_CONFIG": "/somewhere/else.toml", "HOME": "/root"})
    assert settings == load_settings(env={})


# --------------------------------------------------------------------------- secrets


def test_secret_from_env_loaded_and_masked() -> None:
    settings = load_settings(env={"RAYTRADER_SECRETS__BINANCE_API_KEY": SECRET})
    assert settings.secrets.binance_api_key is not None
    assert settings.secrets.binance_api_key.get_secret_value() == SECRET
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)


def test_secret_from_file_loaded_stripped(tmp_path: Path) -> None:
    secret_file = write(tmp_path, f"\n  {SECRET}\n", name="key")
    settings = load_settings(env={"RAYTRADER_SECRETS__POLYMARKET_PRIVATE_KEY_FILE": str(secret_file)})
    assert settings.secrets.polymarket_private_key is not None
    assert settings.secrets.polymarket_private_key.get_secret_value() == SECRET


def test_secret_not_parsed_as_toml_kept_string() -> None:
    settings = load_settings(env={"RAYTRADER_SECRETS__BINANCE_API_SECRET": "12345"})
    assert settings.secrets.binance_api_secret is not None
    assert settings.secrets.binance_api_secret.get_secret_value() == "12345"


def test_secret_empty_env_value_counts_as_unset() -> None:
    settings = load_settings(env={"RAYTRADER_SECRETS__BINANCE_API_KEY": ""})
    assert settings.secrets.binance_api_key is None


def test_secret_given_twice_rejected(tmp_path: Path) -> None:
    secret_file = write(tmp_path, SECRET, name="key")
    message = error_of(
        env={
            "RAYTRADER_SECRETS__BINANCE_API_KEY": SECRET,
            "RAYTRADER_SECRETS__BINANCE_API_KEY_FILE": str(secret_file),
        }
    )
    assert "environment variable RAYTRADER_SECRETS__BINANCE_API_KEY_FILE: secrets.binance_api_key:" in message
    assert "one way only" in message
    assert SECRET not in message


def test_secret_file_missing_names_variable_and_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    message = error_of(env={"RAYTRADER_SECRETS__BINANCE_API_SECRET_FILE": str(missing)})
    assert "environment variable RAYTRADER_SECRETS__BINANCE_API_SECRET_FILE" in message
    assert "secrets.binance_api_secret" in message
    assert "expected a readable file" in message
    assert str(missing) in message


def test_secret_file_empty_rejected(tmp_path: Path) -> None:
    empty = write(tmp_path, "  \n", name="key")
    message = error_of(env={"RAYTRADER_SECRETS__BINANCE_API_KEY_FILE": str(empty)})
    assert "secrets.binance_api_key: expected a file holding the secret, got empty file" in message


def test_secret_unknown_name_lists_known_without_value() -> None:
    message = error_of(env={"RAYTRADER_SECRETS__BINANCE_KEY": SECRET})
    assert (
        "environment variable RAYTRADER_SECRETS__BINANCE_KEY: secrets.binance_key: unknown secret" in message
    )
    assert "RAYTRADER_SECRETS__BINANCE_API_KEY" in message
    assert SECRET not in message


def test_secret_cli_override_refused_without_value() -> None:
    message = error_of(overrides=(f"secrets.binance_api_key={SECRET}",))
    assert "override secrets.binance_api_key=<redacted>: secrets.binance_api_key:" in message
    assert "RAYTRADER_SECRETS__BINANCE_API_KEY" in message
    assert SECRET not in message


def test_secret_cli_override_any_spelling_refused_without_value() -> None:
    message = error_of(overrides=(f"Secrets.binance_api_key={SECRET}", f"secrets={{x = '{SECRET}'}}"))
    assert len(message.splitlines()) == 2
    assert "RAYTRADER_SECRETS__<NAME>" in message
    assert SECRET not in message


def test_repr_and_config_error_never_contain_secret_values(tmp_path: Path) -> None:
    settings = load_settings(env={"RAYTRADER_MODE": "live", **LIVE_SECRETS})
    for value in LIVE_SECRETS.values():
        assert value not in repr(settings)
        assert value not in str(settings)
        assert value not in dump_settings(settings)
        assert value not in dump_settings(settings, fmt="json")
    # a config with a secret in it, a broken live setup and a bad field: no message may echo a secret
    bad = write(
        tmp_path,
        BASE.replace('mode = "paper"', 'mode = "live"') + f'\n[secrets]\nbinance_api_key = "{SECRET}"\n',
    )
    with pytest.raises(ConfigError) as info:
        load_settings(
            bad,
            env={
                "RAYTRADER_SECRETS__BINANCE_API_SECRET": "x" + SECRET,
                "RAYTRADER_SECRETS__TYPO": "y" + SECRET,
            },
            overrides=["portfolio.cash_reserve=2"],
        )
    err = info.value
    assert SECRET not in str(err)
    assert SECRET not in repr(err)
    assert err.__cause__ is None
    assert err.__context__ is None


# --------------------------------------------------------------------------- mistakes


def test_wrong_type_names_file_field_and_expected_type(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        BASE.replace("cash_reserve = 0.10", 'cash_reserve = 0.10\nmax_concurrent_positions = "many"'),
    )
    message = error_of(path)
    assert message == (f"{path}: portfolio.max_concurrent_positions: expected a valid integer, got 'many'")


def test_out_of_range_names_file_field_and_bound(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace("allocation = 0.40", "allocation = 0.40\nbb_std = -1.5"))
    message = error_of(path)
    assert message == f"{path}: strategies[name=mr].bb_std: expected a value > 0.0, got -1.5"


def test_unknown_strategy_kind_lists_known_kinds(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace('kind = "ml_momentum"', 'kind = "ml_momentumm"'))
    message = error_of(path)
    assert message.startswith(
        f"{path}: strategies[name=ml].kind: unknown strategy kind 'ml_momentumm'; expected one of:"
    )
    for kind in ("momentum_breakout", "mean_reversion", "ml_momentum", "polymarket_lag"):
        assert kind in message


def test_unknown_field_typo_suggests_known_field(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace("cash_reserve = 0.10", "cash_reserve = 0.10\nrisk_per_trad = 0.01"))
    message = error_of(path)
    assert message.startswith(f"{path}: portfolio.risk_per_trad: unknown field 'risk_per_trad'; ")
    assert "did you mean 'risk_per_trade'?" in message
    assert "expected one of: initial_capital, risk_per_trade" in message


def test_allocations_over_100_percent_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace("allocation = 0.30", "allocation = 0.60"))
    message = error_of(path)
    assert message.startswith(f"{path}: strategies[*].allocation + portfolio.cash_reserve: ")
    assert "must be <= 100%, got 110%" in message


def test_allocations_over_100_percent_by_override_names_override(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    message = error_of(path, overrides=("strategies.ml.allocation=0.6",))
    assert message.startswith(f"{path} + override strategies.ml.allocation=0.6: strategies[*].allocation")


def test_missing_secret_in_live_mode_names_secret_and_env(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    message = error_of(path, env={"RAYTRADER_MODE": "live", "RAYTRADER_SECRETS__BINANCE_API_KEY": SECRET})
    assert message.startswith(
        f"{path} + environment variable RAYTRADER_MODE: secrets: live mode needs secrets"
    )
    assert "secrets.binance_api_secret" in message
    assert "secrets.binance_api_key'" not in message
    assert "RAYTRADER_SECRETS__" in message
    assert SECRET not in message


def test_secret_written_in_toml_refused_without_echoing_value(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + f'\n[secrets]\nbinance_api_key = "{SECRET}"\n')
    message = error_of(path)
    assert message == (
        f"{path}: secrets.binance_api_key: secrets must not be written in a config file (it gets committed); "
        "expected environment variable RAYTRADER_SECRETS__BINANCE_API_KEY or "
        "RAYTRADER_SECRETS__BINANCE_API_KEY_FILE instead"
    )


def test_toml_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, 'mode = "paper"\n\n[portfolio]\nrisk_per_trade = \n')
    message = error_of(path)
    assert message == f"{path}: line 4, column 18: TOML syntax error: Invalid value"


def test_toml_syntax_error_at_end_of_document_names_last_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'mode = "paper"\npeak = [1,\n')
    message = error_of(path)
    assert message.startswith(f"{path}: line 3, column 1: TOML syntax error: ")


def test_bad_env_override_value_names_variable_field_and_type() -> None:
    message = error_of(env={"RAYTRADER_PORTFOLIO__RISK_PER_TRADE": "lots"})
    assert message == (
        "environment variable RAYTRADER_PORTFOLIO__RISK_PER_TRADE: portfolio.risk_per_trade: "
        "expected a valid number, got 'lots'"
    )


def test_unknown_env_section_typo_rejected() -> None:
    message = error_of(env={"RAYTRADER_PORTFOLO__RISK_PER_TRADE": "0.01"})
    assert message.startswith(
        "environment variable RAYTRADER_PORTFOLO__RISK_PER_TRADE: portfolo: unknown field 'portfolo'; "
    )
    assert "did you mean 'portfolio'?" in message


def test_bad_cli_override_value_names_override_and_bound() -> None:
    message = error_of(overrides=("portfolio.max_concurrent_positions=0",))
    assert message == (
        "override portfolio.max_concurrent_positions=0: portfolio.max_concurrent_positions: "
        "expected a value >= 1, got 0"
    )


def test_override_unknown_strategy_name_lists_known_names() -> None:
    message = error_of(overrides=("strategies.mean_revers.bb_std=2",))
    assert message == (
        "override strategies.mean_revers.bb_std=2: strategies: no strategy named 'mean_revers'; "
        "expected one of: mean_reversion, ml_momentum, momentum_breakout, polymarket_lag"
    )


def test_override_without_equals_sign_rejected() -> None:
    message = error_of(overrides=("portfolio.max_concurrent_positions",))
    assert message.startswith("override portfolio.max_concurrent_positions: expected key.path=value")


def test_duplicate_strategy_names_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace('name = "ml"', 'name = "mr"'))
    message = error_of(path)
    assert message == f"{path}: strategies[*].name: strategy names must be unique, repeated: ['mr']"


def test_rsi_buy_not_below_rsi_sell_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace("allocation = 0.40", "allocation = 0.40\nrsi_buy = 75"))
    message = error_of(path)
    assert message == f"{path}: strategies[name=mr]: rsi_buy (75.0) must be below rsi_sell (70.0)"


def test_rsi_order_broken_by_override_names_file_and_override(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    message = error_of(path, overrides=("strategies.mr.rsi_sell=20",))
    assert message == (
        f"{path} + override strategies.mr.rsi_sell=20: strategies[name=mr]: "
        "rsi_buy (30.0) must be below rsi_sell (20.0)"
    )


def test_bad_peak_hours_rejected(tmp_path: Path) -> None:
    path = write(
        tmp_path, BASE.replace("cash_reserve = 0.10", "cash_reserve = 0.10\npeak_hours_utc = [23, 5]")
    )
    message = error_of(path)
    assert message == f"{path}: portfolio.peak_hours_utc: expected 0 <= start < end <= 24, got [23, 5]"


def test_replay_speed_bad_value_lists_both_alternatives(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + '\n[replay]\nspeed = "fast"\n')
    message = error_of(path)
    assert message == f"{path}: replay.speed: expected a valid number or 'max', got 'fast'"


def test_missing_required_field_named(tmp_path: Path) -> None:
    path = write(
        tmp_path, BASE.replace('market = "binance:BTC/USDT"\nallocation = 0.30', "allocation = 0.30")
    )
    message = error_of(path)
    assert (
        message
        == f"{path}: strategies[name=ml].market: expected a value, got nothing (required field is missing)"
    )


def test_missing_config_file_named() -> None:
    message = error_of(Path("/nonexistent/raytrader.toml"))
    assert message == "/nonexistent/raytrader.toml: cannot read config file: No such file or directory"


def test_several_problems_all_listed_one_per_line(tmp_path: Path) -> None:
    text = BASE.replace("allocation = 0.40", "allocation = 0.40\nbb_std = 0").replace(
        "cash_reserve = 0.10", "cash_reserve = 0.10\npeak_hours_utc = [5, 5]"
    )
    path = write(tmp_path, text + '\n[secrets]\npolymarket_private_key = "0xdead"\n')
    message = error_of(
        path,
        env={"RAYTRADER_EXITS__STOP_PCT": "-1"},
        overrides=("strategies.nope.enabled=false", "metrics.port=70000"),
    )
    lines = message.splitlines()
    assert len(lines) == 6, message
    assert line_with(message, "secrets.polymarket_private_key").startswith(f"{path}: ")
    assert line_with(message, "no strategy named 'nope'").startswith(
        "override strategies.nope.enabled=false: "
    )
    assert line_with(message, "bb_std").startswith(
        f"{path}: strategies[name=mr].bb_std: expected a value > 0.0"
    )
    assert line_with(message, "peak_hours_utc").startswith(f"{path}: portfolio.peak_hours_utc: expected")
    assert line_with(message, "exits.stop_pct").startswith("environment variable RAYTRADER_EXITS__STOP_PCT: ")
    assert line_with(message, "metrics.port").endswith("expected a value <= 65535, got 70000")


def test_config_error_is_value_error_with_problem_list(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace("allocation = 0.40", "allocation = 0.40\nbb_std = 0"))
    with pytest.raises(ValueError, match="bb_std") as info:
        load_settings(path, env={})
    assert isinstance(info.value, ConfigError)
    (problem,) = info.value.problems
    assert (problem.source, problem.path) == (str(path), "strategies[name=mr].bb_std")


# --------------------------------------------------------------------------- dump


def test_dump_settings_toml_round_trips() -> None:
    settings = load_settings(env={"RAYTRADER_SECRETS__BINANCE_API_KEY": SECRET})
    text = dump_settings(settings)
    assert SECRET not in text
    assert "# binance_api_key = set" in text
    assert "# binance_api_secret = not set" in text
    doc = tomllib.loads(text)
    assert "secrets" not in doc
    assert doc["portfolio"]["initial_capital"] == "10000"


def test_dump_settings_toml_reloads_equal(tmp_path: Path) -> None:
    settings = load_settings(env={}, overrides=["replay.speed=60", "portfolio.kelly_fraction=0.5"])
    path = write(tmp_path, dump_settings(settings))
    assert load_settings(path, env={}) == settings


def test_dump_settings_json_masks_secrets() -> None:
    settings = load_settings(env={"RAYTRADER_SECRETS__BINANCE_API_KEY": SECRET})
    doc = json.loads(dump_settings(settings, fmt="json"))
    assert doc["secrets"] == {
        "binance_api_key": "**********",
        "binance_api_secret": None,
        "polymarket_private_key": None,
    }
    assert doc["portfolio"]["initial_capital"] == "10000"
    assert Decimal(doc["portfolio"]["initial_capital"]) == settings.portfolio.initial_capital
    assert Settings.model_fields.keys() == doc.keys()
