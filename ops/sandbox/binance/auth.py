"""API keys and signed requests, checked as Binance checks them.

A signed request carries ``X-MBX-APIKEY`` and an HMAC-SHA256 ``signature`` (keyed with the
account's secret) over query string + body; its ``timestamp`` must lie within ``recvWindow``
of the server's wall clock (as on Binance: market time plays no part here), so ccxt's signed
requests work unmodified. The checks run in Binance's order, each failure with Binance's code:
-2014/-2015 API key, -1102/-1100 parameters, -1131 recvWindow, -1022 signature, -1021 timestamp.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, SecretStr

from ops.sandbox.binance.protocol import _DEC_RE, BinanceError, _illegal, _int, _mandatory

DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60_000

_KEY_RE = re.compile(r"[A-Za-z0-9]{1,100}")


class Credentials(BaseModel):
    """An API key pair of one sandbox account."""

    model_config = ConfigDict(frozen=True)

    api_key: str
    api_secret: str
    account: str

    @property
    def key(self) -> SecretStr:
        return SecretStr(self.api_key)

    @property
    def secret(self) -> SecretStr:
        return SecretStr(self.api_secret)


def check_key(key: str, accounts: Mapping[str, Credentials]) -> Credentials:
    """The account of an ``X-MBX-APIKEY`` header: -2014 for a malformed key, -2015 for an unknown one."""
    if not _KEY_RE.fullmatch(key):
        raise BinanceError(-2014, "API-key format invalid.", status=401)
    creds = accounts.get(key)
    if creds is None:
        raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)
    return creds


def check_signature(
    creds: Credentials, params: dict[str, str], query: str, body: str, clock: Callable[[], float]
) -> None:
    """Verify a signed request's ``signature`` (popped from ``params``), ``timestamp`` and ``recvWindow``."""
    signature = params.pop("signature", "")
    if not signature:
        raise _mandatory("signature")
    payload = _without_signature(query) + _without_signature(body)
    timestamp = _int(params, "timestamp", required=True)
    recv_window = _recv_window(params)
    expected = hmac.new(creds.api_secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.lower()):
        raise BinanceError(-1022, "Signature for this request is not valid.")
    now_ms = int(clock() * 1000)
    if timestamp >= now_ms + 1000:
        raise BinanceError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    if now_ms - timestamp > recv_window:
        raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")


def _without_signature(raw: str) -> str:
    return "&".join(part for part in raw.split("&") if part and not part.startswith("signature="))


def _recv_window(params: Mapping[str, str]) -> Decimal:
    raw = params.get("recvWindow")
    if raw is None:
        return Decimal(DEFAULT_RECV_WINDOW_MS)
    if not _DEC_RE.fullmatch(raw):
        raise _illegal("recvWindow", r"^[0-9]{1,20}(\.[0-9]{1,3})?$")
    value = Decimal(raw)
    if value > MAX_RECV_WINDOW_MS:
        raise BinanceError(-1131, f"recvWindow must be less than {MAX_RECV_WINDOW_MS}")
    return value
