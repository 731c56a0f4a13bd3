"""Building ccxt exchange clients: one place that knows how to point ccxt at a venue or the sandbox."""

from __future__ import annotations

from typing import Any

import ccxt.async_support as ccxt_async
from pydantic import SecretStr

# Keys of exchange.urls["api"] that carry Binance's spot REST base (/api/v3).
_BINANCE_SPOT_URL_KEYS = ("public", "private", "v3")


def make_exchange(
    exchange_id: str = "binance",
    *,
    rest_url: str | None = None,
    api_key: SecretStr | None = None,
    api_secret: SecretStr | None = None,
    timeout_ms: int = 10_000,
) -> Any:
    """An async ccxt client; with ``rest_url`` it talks to that host instead (e.g. the sandbox).

    Markets load from ``exchangeInfo`` only: spot markets, no currencies or margin calls,
    which need endpoints and keys a spot bot does not use.
    """
    try:
        cls = getattr(ccxt_async, exchange_id)
    except AttributeError:
        raise ValueError(f"unknown ccxt exchange {exchange_id!r}") from None
    options: dict[str, Any] = {"defaultType": "spot"}
    if exchange_id == "binance":
        options.update({"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False})
    params: dict[str, Any] = {"enableRateLimit": True, "timeout": timeout_ms, "options": options}
    if api_key is not None:
        params["apiKey"] = api_key.get_secret_value()
    if api_secret is not None:
        params["secret"] = api_secret.get_secret_value()
    exchange = cls(params)
    if rest_url is not None:
        if exchange_id != "binance":
            raise ValueError("rest_url overrides are only supported for binance")
        base = rest_url.rstrip("/")
        api_urls = dict(exchange.urls["api"])
        for key in _BINANCE_SPOT_URL_KEYS:
            api_urls[key] = f"{base}/api/v3"
        exchange.urls["api"] = api_urls
    return exchange
