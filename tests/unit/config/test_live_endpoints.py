"""Live endpoints resolved in one place: what `config check --live` prints is what gateways use."""

from __future__ import annotations

from typer.testing import CliRunner

from actors.venues.factory import resolve_endpoints
from config.loader import load_settings
from supervisor.cli import app
from tests.paths import REPO_ROOT

LIVE_EXAMPLE = REPO_ROOT / "config/live.example.toml"
SECRETS = {
    "RAYTRADER_SECRETS__BINANCE_API_KEY": "k" * 64,
    "RAYTRADER_SECRETS__BINANCE_API_SECRET": "s" * 64,
    "RAYTRADER_SECRETS__POLYMARKET_PRIVATE_KEY": "0x" + "42" * 32,
}


def test_live_example_resolves_the_venues_real_stream_hosts() -> None:
    """Issue 12: the shipped live config streamed Binance from wss://api.binance.com/ws (the REST
    host; no such stream) and had no Polymarket market websocket, so the live feed raised."""
    settings = load_settings(LIVE_EXAMPLE, env=SECRETS)
    binance = resolve_endpoints(settings, "binance")
    polymarket = resolve_endpoints(settings, "polymarket")
    assert (binance.rest_url, binance.ws_url) == (
        "https://api.binance.com",
        "wss://stream.binance.com:9443/ws",
    )
    assert (polymarket.rest_url, polymarket.ws_url) == (
        "https://clob.polymarket.com",
        "wss://ws-subscriptions-clob.polymarket.com/ws/market",
    )
    assert polymarket.prices_url == "wss://ws-live-data.polymarket.com"


def test_sandbox_endpoints_stream_beside_their_rest_api() -> None:
    settings = load_settings(
        None,
        env={},
        overrides=['live.binance.url="http://127.0.0.1:8801"', 'live.polymarket.url="http://127.0.0.1:8802"'],
    )
    assert resolve_endpoints(settings, "binance").ws_url == "ws://127.0.0.1:8801/ws"
    assert resolve_endpoints(settings, "polymarket").ws_url == "ws://127.0.0.1:8802/ws/market"
    assert resolve_endpoints(settings, "polymarket").prices_url == "ws://127.0.0.1:8802/rtds"


def test_config_check_live_prints_endpoints_and_names_missing_secrets() -> None:
    result = CliRunner().invoke(app, ["config", "check", "--live", "-c", str(LIVE_EXAMPLE)], env={})
    assert result.exit_code == 1
    assert "wss://stream.binance.com:9443/ws" in result.output
    assert "wss://ws-subscriptions-clob.polymarket.com/ws/market" in result.output
    assert "rtds wss://ws-live-data.polymarket.com" in result.output
    for name in ("binance_api_key", "binance_api_secret", "polymarket_private_key"):
        assert f"missing secrets.{name}" in result.output


def test_config_check_live_with_every_secret_exits_zero() -> None:
    result = CliRunner().invoke(app, ["config", "check", "--live", "-c", str(LIVE_EXAMPLE)], env=SECRETS)
    assert result.exit_code == 0, result.output
    assert "secrets: all present" in result.output
    assert "k" * 64 not in result.output


def test_one_nested_live_override_keeps_the_sections_other_defaults() -> None:
    """Turning a push stream off (``live.<venue>.user_stream.enabled=false``) named the section
    without its url, and the config was refused: "live.polymarket.url: expected a value"."""
    settings = load_settings(
        None,
        overrides=["live.binance.user_stream.enabled=false", "live.polymarket.user_stream.enabled=false"],
    )
    assert not settings.live.binance.user_stream.enabled
    assert not settings.live.polymarket.user_stream.enabled
    assert (
        resolve_endpoints(settings, "polymarket").ws_url
        == "wss://ws-subscriptions-clob.polymarket.com/ws/market"
    )
    assert resolve_endpoints(settings, "binance").rest_url == "https://api.binance.com"
