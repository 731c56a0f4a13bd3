"""The state records the CLOB sandbox holds: markets, credentials, orders, trades, payouts and
the market channel's subscribers (with what was last published to them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from actors.data.polymarket import BinaryMarket, Outcome
from actors.domain.model import Fill, Side

log = logging.getLogger(__name__)

WS_QUEUE_MAX = 10_000


@dataclass(slots=True)
class _Market:
    info: BinaryMarket
    raw: dict[str, Any]
    accepting_ms: int
    neg_risk: bool
    fee_bps: int
    closed: bool = False
    winner: Outcome | None = None
    resolved_ms: int | None = None


@dataclass(frozen=True, slots=True)
class SandboxCreds:
    api_key: str
    secret: str
    passphrase: str
    address: str
    nonce: int


@dataclass(slots=True)
class _Rec:
    """One order the venue holds: its signed form's facts and the engine order behind it."""

    order_id: str
    engine_cid: str
    owner: str
    address: str
    token: str
    condition_id: str
    outcome: str
    side: Side
    price: Decimal
    size: Decimal
    order_type: str
    expiration_s: int
    created_ms: int
    signed: dict[str, Any]
    expires: bool = False
    trade_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Trade:
    trade_id: str
    order_id: str
    fill: Fill
    trader_side: str
    counter_order_id: str
    tx_hash: str


@dataclass(frozen=True, slots=True)
class Payout:
    """Settlement of one account's holding of one token."""

    condition_id: str
    token: str
    account: str
    shares: Decimal
    usdc: Decimal
    ts_ms: int


@dataclass(slots=True)
class _Published:
    bids: dict[Decimal, Decimal]
    asks: dict[Decimal, Decimal]
    tick: Decimal


class _Subscriber:
    """One market-channel websocket: its assets and the queue its sender task drains."""

    def __init__(self) -> None:
        self.assets: set[str] = set()
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=WS_QUEUE_MAX)
        self.overflowed = False

    def push(self, text: str) -> None:
        """Queue a message; a consumer too slow to keep up is cut off, as a real venue does."""
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.overflowed = True
            log.warning("sandbox clob: websocket subscriber too slow, dropping it")
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(None)

    def close(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)
