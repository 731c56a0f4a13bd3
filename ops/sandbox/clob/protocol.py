"""The CLOB's wire vocabulary, shared by every part of the sandbox: constants, the error texts
(worded as the real CLOB words them), the refusal shape and the small converters between the
venue's numbers and their wire forms (cursors, ISO times, amounts).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from actors.core.fees import BINARY_QUOTE

USDC = BINARY_QUOTE
TOKEN_UNIT = Decimal(10**6)
"""USDC and the CTF outcome tokens both carry 6 decimals on chain: order amounts are in 1e-6 units."""
COARSE_TICK = Decimal("0.01")
LOT = Decimal("0.01")
NARROW_ABOVE = Decimal("0.96")
NARROW_BELOW = Decimal("0.04")
START_CURSOR = "MA=="
END_CURSOR = "LTE="
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
MODEL_ADDRESS = "0x000000000000000000000000000000000000dEaD"
"""Stands for the modelled outside participants on the other side of our trades."""
MODEL_OWNER = "00000000-0000-0000-0000-000000000000"
MAX_BATCH = 15
UNLIMITED_ALLOWANCE = str(2**256 - 1)

EXCHANGES: dict[int, tuple[str, str]] = {
    137: ("0x4bFb41d5B3570DeFd03C39a9A4D8dE6Bd8B8982E", "0xC5d563A36AE78145C45a50134d48A1215220f80a"),
    80002: ("0xdFE02Eb6733538f8Ea35D585af8DE5958AD99E40", "0xd91E80cF2E7be2e162c6513ceD06f1dD0dA35296"),
}
"""(CTF exchange, neg-risk CTF exchange) per chain id: the verifying contracts of order signatures."""

ORDER_TYPES = ("GTC", "GTD", "FOK", "FAK")

# Error texts, worded as the real CLOB words them.
ERR_L1 = "Invalid L1 Request headers"
ERR_L2 = "Unauthorized/Invalid api key"
ERR_PAYLOAD = "Invalid order payload"
ERR_BALANCE = "not enough balance / allowance"
ERR_SIGNATURE = "invalid signature"
ERR_OWNER = "the order owner has to be the owner of the API KEY"
ERR_SIGNER = "the order signer address has to be the address of the API KEY"
ERR_TOKEN = "Invalid token id"
ERR_NO_BOOK = "No orderbook exists for the requested token id"
ERR_NOT_READY = "the market is not yet ready to process new orders"
ERR_CLOSED = "the market is closed: it does not accept new orders"
ERR_FOK = "order couldn't be fully filled. FOK orders are fully filled or killed."
ERR_FAK = (
    "no orders found to match with FAK order. FAK orders are partially filled or killed if no match is found."
)
ERR_INTERNAL = "Internal server error"


class RequestError(Exception):
    """A request the venue refuses: answered as ``{"error": message}`` with ``status``."""

    def __init__(self, message: str, status: int = 400, *, order_shape: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.order_shape = order_shape

    def response(self) -> web.Response:
        body: dict[str, Any] = {"error": self.message}
        if self.order_shape:
            body.update({"success": False, "orderID": None, "errorMsg": self.message})
        return web.json_response(body, status=self.status)


def _order_error(message: str) -> RequestError:
    return RequestError(message, 400, order_shape=True)


# --------------------------------------------------------------------------- small helpers


def encode_cursor(offset: int) -> str:
    """The real CLOB's cursor: base64 of the decimal offset (``MA==`` is 0, ``LTE=`` is -1: the end)."""
    return base64.b64encode(str(offset).encode()).decode()


def decode_cursor(cursor: str | None) -> int:
    """Offset of a cursor; -1 for the end cursor. Raises ``RequestError`` on garbage."""
    if not cursor:
        return 0
    try:
        value = int(base64.b64decode(cursor.encode(), validate=True).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise RequestError("invalid next_cursor") from None
    if value < -1:
        raise RequestError("invalid next_cursor")
    return value


def iso_ms(ms: int) -> str:
    """UTC ISO-8601 with a ``Z``; milliseconds only when there are some."""
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if ms % 1000:
        text += f".{ms % 1000:03d}"
    return text + "Z"


def _iso_to_ms(text: Any) -> int | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def _num(value: Decimal) -> str:
    """Plain decimal text, no exponent."""
    return format(value, "f")


def _json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _size(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01")), "f")


def _units(value: Decimal) -> str:
    """An amount as 1e-6 token units (how balances and order amounts travel)."""
    return str(int((value * TOKEN_UNIT).to_integral_value()))


def _digest(*parts: object) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()
