"""EIP-712 messages the venue verifies: the L1 ``ClobAuth`` attestation and the CTF exchange
``Order``, built independently of py-clob-client's own encoder so that the client is checked
against a second implementation rather than against itself.
"""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_utils.crypto import keccak

from actors.domain.safety import bound_recursion

bound_recursion()  # py_ecc raised it at import; see actors.domain.safety

CLOB_AUTH_MESSAGE = "This message attests that I control the given wallet"

_ORDER_FIELDS = [
    ("salt", "uint256"),
    ("maker", "address"),
    ("signer", "address"),
    ("taker", "address"),
    ("tokenId", "uint256"),
    ("makerAmount", "uint256"),
    ("takerAmount", "uint256"),
    ("expiration", "uint256"),
    ("nonce", "uint256"),
    ("feeRateBps", "uint256"),
    ("side", "uint8"),
    ("signatureType", "uint8"),
]


def eip712_digest(message: SignableMessage) -> bytes:
    """The 32-byte hash an EIP-712 signature signs (and the CTF exchange's order hash)."""
    return bytes(keccak(b"\x19" + message.version + message.header + message.body))


def clob_auth_message(address: str, timestamp: str, nonce: int, chain_id: int) -> SignableMessage:
    """The L1 ``ClobAuth`` typed message, built independently of py-clob-client's own encoder."""
    return encode_typed_data(
        full_message={
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                ],
                "ClobAuth": [
                    {"name": "address", "type": "address"},
                    {"name": "timestamp", "type": "string"},
                    {"name": "nonce", "type": "uint256"},
                    {"name": "message", "type": "string"},
                ],
            },
            "primaryType": "ClobAuth",
            "domain": {"name": "ClobAuthDomain", "version": "1", "chainId": chain_id},
            "message": {
                "address": address,
                "timestamp": timestamp,
                "nonce": nonce,
                "message": CLOB_AUTH_MESSAGE,
            },
        }
    )


def order_message(fields: dict[str, Any], chain_id: int, exchange: str) -> SignableMessage:
    """The CTF exchange ``Order`` typed message of a parsed order (ints and checksum addresses)."""
    return encode_typed_data(
        full_message={
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "Order": [{"name": n, "type": t} for n, t in _ORDER_FIELDS],
            },
            "primaryType": "Order",
            "domain": {
                "name": "Polymarket CTF Exchange",
                "version": "1",
                "chainId": chain_id,
                "verifyingContract": exchange,
            },
            "message": {name: fields[name] for name, _ in _ORDER_FIELDS},
        }
    )


def recover_signer(message: SignableMessage, signature: str) -> str | None:
    """Checksum address that signed ``message``; None for a signature that cannot be recovered."""
    try:
        return str(Account.recover_message(message, signature=signature))
    except Exception:  # any malformed signature is simply not a valid one
        return None
