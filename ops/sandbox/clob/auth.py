"""Authentication: L1 (a wallet's EIP-712 signature) to create or derive API credentials, L2
(py-clob-client's HMAC) on every trading request; and the sandbox's USDC faucet.

* L1 (``POLY_ADDRESS``, ``POLY_SIGNATURE`` = EIP-712 ``ClobAuth`` signature, ``POLY_TIMESTAMP``,
  ``POLY_NONCE``): ``POST /auth/api-key`` creates (once per address and nonce; the first key of
  an address credits ``initial_usdc``), ``GET /auth/derive-api-key`` returns the same creds.
  Creds are an HMAC of (``secret_seed``, address, nonce): deterministic, also across restarts.
* L2 (``POLY_API_KEY``, ``POLY_PASSPHRASE``, ``POLY_SIGNATURE`` = py-clob-client's
  ``build_hmac_signature`` over timestamp + method + path (no query) + body, ``POLY_TIMESTAMP``,
  ``POLY_ADDRESS``): ``POST /order``, ``POST /orders``, ``DELETE /order``, ``/orders``,
  ``/cancel-all``, ``/cancel-market-orders``, ``GET /data/orders``, ``/data/order/{id}``,
  ``/data/trades``, ``/balance-allowance`` (+ ``/update``), ``/auth/api-keys``.
  A bad key, passphrase or HMAC answers 401 ``Unauthorized/Invalid api key``.

Auth timestamps are NOT checked against any clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid
from decimal import Decimal

from eth_utils.address import to_checksum_address

from ops.sandbox.clob.exchange import ClobExchange
from ops.sandbox.clob.protocol import ERR_L1, ERR_L2, USDC, RequestError
from ops.sandbox.clob.records import SandboxCreds
from ops.sandbox.clob.signing import clob_auth_message, recover_signer


class ApiKeys(ClobExchange):
    """API credentials of wallets: created, derived and checked; wallets funded."""

    def _derive(self, address: str, nonce: int) -> SandboxCreds:
        def mac(label: str) -> bytes:
            return hmac.new(
                self._seed, f"{label}|{address.lower()}|{nonce}".encode(), hashlib.sha256
            ).digest()

        return SandboxCreds(
            api_key=str(uuid.UUID(bytes=mac("key")[:16], version=4)),
            secret=base64.urlsafe_b64encode(mac("secret")).decode(),
            passphrase=mac("passphrase").hex(),
            address=address,
            nonce=nonce,
        )

    def create_api_key(self, address: str, nonce: int = 0) -> SandboxCreds:
        """New creds for (address, nonce); the first creds of an address fund it with ``initial_usdc``."""
        address = str(to_checksum_address(address))
        if (address, nonce) in self._created:
            raise RequestError("Could not create api key", 400)
        creds = self._derive(address, nonce)
        self._created.add((address, nonce))
        self._creds[creds.api_key] = creds
        if address not in self._funded:
            self._funded.add(address)
            if self.initial_usdc > 0:
                self.engine.deposit(address, USDC, self.initial_usdc)
        return creds

    def derive_api_key(self, address: str, nonce: int = 0) -> SandboxCreds:
        address = str(to_checksum_address(address))
        if (address, nonce) not in self._created:
            raise RequestError("Could not derive api key!", 400)
        return self._derive(address, nonce)

    def deposit(self, address: str, amount: Decimal) -> None:
        """Credit USDC to a wallet (tests and operators: the sandbox's faucet)."""
        self.engine.deposit(str(to_checksum_address(address)), USDC, amount)

    def check_l1(self, headers: dict[str, str]) -> tuple[str, int]:
        """(address, nonce) of valid L1 headers; ``RequestError`` 401 otherwise."""
        address, signature = headers.get("POLY_ADDRESS"), headers.get("POLY_SIGNATURE")
        timestamp, nonce_text = headers.get("POLY_TIMESTAMP"), headers.get("POLY_NONCE") or "0"
        if not address or not signature or not timestamp or not _is_uint256_text(nonce_text):
            raise RequestError(ERR_L1, 401)
        try:
            checksum = str(to_checksum_address(address))
        except (ValueError, TypeError):
            raise RequestError(ERR_L1, 401) from None
        nonce = int(nonce_text)
        message = clob_auth_message(checksum, timestamp, nonce, self.chain_id)
        if recover_signer(message, signature) != checksum:
            raise RequestError(ERR_L1, 401)
        return checksum, nonce

    def check_l2(self, headers: dict[str, str], method: str, path: str, body: str | None) -> SandboxCreds:
        """The creds of valid L2 headers (key, passphrase, address, HMAC); ``RequestError`` 401 otherwise."""
        creds = self._creds.get(headers.get("POLY_API_KEY") or "")
        signature, timestamp = headers.get("POLY_SIGNATURE") or "", headers.get("POLY_TIMESTAMP") or ""
        if creds is None or not signature or not timestamp:
            raise RequestError(ERR_L2, 401)
        if not hmac.compare_digest(headers.get("POLY_PASSPHRASE") or "", creds.passphrase):
            raise RequestError(ERR_L2, 401)
        if (headers.get("POLY_ADDRESS") or "").lower() != creds.address.lower():
            raise RequestError(ERR_L2, 401)
        expected = hmac_signature(creds.secret, timestamp, method, path, body)
        if not hmac.compare_digest(signature, expected):
            raise RequestError(ERR_L2, 401)
        return creds

    def api_keys(self, address: str) -> list[str]:
        return sorted(c.api_key for c in self._creds.values() if c.address == address)


def _is_uint256_text(text: str) -> bool:
    """ASCII decimal digits of a uint256 (``str.isdigit`` also takes '²' and other digits int() refuses)."""
    return text.isascii() and text.isdigit() and len(text) <= 78 and int(text) < 2**256


def hmac_signature(secret: str, timestamp: str, method: str, path: str, body: str | None) -> str:
    """py-clob-client's L2 HMAC: urlsafe-b64(HMAC-SHA256(b64decode(secret), ts+method+path+body))."""
    message = f"{timestamp}{method}{path}"
    if body:
        message += body.replace("'", '"')
    try:
        key = base64.urlsafe_b64decode(secret)
    except (binascii.Error, ValueError):
        return ""
    return base64.urlsafe_b64encode(hmac.new(key, message.encode(), hashlib.sha256).digest()).decode()
