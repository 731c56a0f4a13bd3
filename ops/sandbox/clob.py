"""A local Polymarket CLOB on loopback: the real py-clob-client talks to it as to clob.polymarket.com.

What is REAL here and what is MODELLED (say so wherever its numbers are shown):

* **Real** (from the bundled day, ``ops/data/polymarket``): the market list (292 "Bitcoin Up or
  Down" 5-minute windows of 2026-07-24: condition ids, Up/Down token ids, questions, minimum
  order size, fee flags), their start/end times, their *real* resolutions (which token won),
  and the Chainlink BTC/USD path that drives everything below.
* **Modelled**: every other participant. There is no order-book history, so the liquidity our
  orders meet is ``actors.data.polymarket_books.BookModel`` (a lagged fair value of the
  Chainlink path, a spread and seeded depth), recomputed at every clock step. Our orders never
  trade with each other; they fill against that modelled book in the one matching engine
  (``actors.core.matching.MatchingEngine``, book mode, balances on), so the fills, fees and balances
  here are the same arithmetic as the paper venue and the backtester. The tick size follows a
  rule, not a record: 0.01, or the market's recorded 0.001 while the Up book trades beyond
  0.96/0.04 (Polymarket narrows the tick there; the recorded tick is a post-close snapshot).

The clock is the sandbox's own: ``advance_to(ms)`` / ``advance(seconds)`` (or the background
task at ``speed``) steps it in ``step_ms`` steps (1 s by default). At each step: markets whose
window ended resolve (their open orders are cancelled, the winning token pays 1 USDC a share,
the losing one 0, straight into the USDC balance), expired GTD orders end, a fresh modelled book
is shown to the engine for every token that has open orders or websocket subscribers (resting
orders it crosses fill as makers), and websocket subscribers get the changes. ``GET /time``
answers this clock (seconds). Auth timestamps are NOT checked against any clock.

Wire protocol (shapes of ``tests/fixtures/polymarket`` and what py-clob-client 0.34.6 sends):

* Public: ``GET /``, ``/time``, ``/markets`` (``next_cursor`` paging: base64 offsets, ``MA==``
  first, ``LTE=`` end), ``/markets/{condition_id}``, ``/book``, ``POST /books``, ``/midpoint``,
  ``/price`` (``side=BUY`` answers the best bid, ``SELL`` the best ask, as the real CLOB does),
  ``/spread``, ``/last-trade-price``, ``/tick-size``, ``/neg-risk``, ``/fee-rate`` (``base_fee``
  as a number: the client compares it with ``> 0``, a string would crash it).
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
* Orders: the EIP-712 order signature is verified against the CTF exchange domain of
  ``chain_id`` (the neg-risk exchange for neg-risk markets); only EOA orders (signature type 0,
  maker == signer == the API key's address). Price = makerAmount/takerAmount for a BUY
  (takerAmount/makerAmount for a SELL) must sit on the tick; size >= the minimum;
  ``feeRateBps`` must equal ``/fee-rate``. The order id is the EIP-712 order hash, so one signed
  order is one order: posting it again answers ``Duplicated`` and creates nothing. GTC, GTD
  (expiration in sandbox seconds), FOK (all or nothing, else rejected) and FAK (the rest
  cancelled; nothing matched is rejected), ``postOnly`` for GTC/GTD. Rejections answer 400 with
  ``{"error", "success": false, "orderID": null, "errorMsg"}``; an unexpected failure answers
  500 ``{"error": "Internal server error"}``; bad input never takes the server down.
* Fees are charged by ``actors.core.fees.FeeModel`` (crypto_fees_v2: taker only), whatever
  ``feeRateBps`` says; the engine reserves and settles them in USDC.
* Market websocket ``/ws/market``: send ``{"assets_ids": [...], "type": "market"}`` (later
  ``{"assets_ids": [...], "operation": "subscribe" | "unsubscribe"}``; text ``PING`` answers
  ``PONG``); you get a JSON list of ``book`` snapshots, then ``price_change`` (level diffs, one
  message per market), ``last_trade_price`` (our fills), ``tick_size_change`` and
  ``market_resolved``. ``inject_ws_raw`` pushes arbitrary text, for parser fault tests.
* Run it: ``python -m ops.sandbox.clob --port 8802 --speed 1`` (loopback; ``--fault-plan``
  loads a ``FaultPlan``), or in-process ``clob_app(SandboxClob(...))`` / ``serve_clob``.
* Ground truth: ``GET /_sandbox/orders``, ``/_sandbox/fills``, ``/_sandbox/trades``,
  ``/_sandbox/payouts``, ``/_sandbox/balances?address=``, ``GET|POST /_sandbox/clock``
  (``{"advance_s": s}`` or ``{"to_ms": ms}``), and the same as Python methods. Fault injection
  (``ops.sandbox.faults``) is installed on every app: ``/_sandbox/faults``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import gzip
import hashlib
import hmac
import json
import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import WSMsgType, web
from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from actors.core.fees import FeeModel
from actors.core.matching import BINARY_QUOTE, MatchingEngine, OrderUpdate, Reason, UpdateKind
from actors.data.polymarket import (
    VENUE,
    BinaryMarket,
    ChainlinkTicks,
    Outcome,
    load_chainlink,
    load_markets,
    settlement_outcome,
)
from actors.data.polymarket_books import BookModel, BookModelConfig
from actors.domain.model import (
    ZERO,
    Fill,
    Liquidity,
    Order,
    OrderBook,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    floor_to,
)
from actors.domain.safety import bound_recursion
from ops.sandbox.faults import FaultInjector

bound_recursion()  # py_ecc raised it at import; see actors.domain.safety
log = logging.getLogger(__name__)
T = TypeVar("T")

DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "polymarket"
DEFAULT_MARKETS = DATA_DIR / "BTC-5m-markets-2026-07-24.jsonl.gz"
DEFAULT_CHAINLINK = DATA_DIR / "BTCUSD-chainlink-2026-07-24.csv.gz"

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
CLOB_AUTH_MESSAGE = "This message attests that I control the given wallet"
MAX_BATCH = 15
WS_QUEUE_MAX = 10_000
UNLIMITED_ALLOWANCE = str(2**256 - 1)

EXCHANGES: dict[int, tuple[str, str]] = {
    137: ("0x4bFb41d5B3570DeFd03C39a9A4D8dE6Bd8B8982E", "0xC5d563A36AE78145C45a50134d48A1215220f80a"),
    80002: ("0xdFE02Eb6733538f8Ea35D585af8DE5958AD99E40", "0xd91E80cF2E7be2e162c6513ceD06f1dD0dA35296"),
}
"""(CTF exchange, neg-risk CTF exchange) per chain id: the verifying contracts of order signatures."""

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


def _uint(value: Any, name: str) -> int:
    """A non-negative integer given as a JSON number or a decimal string."""
    if isinstance(value, bool):
        raise _order_error(f"{ERR_PAYLOAD}: {name} must be an unsigned integer")
    bits = 8 if name in ("side", "signatureType") else 256
    number = value if isinstance(value, int) else None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 78:
        number = int(value)
    if number is None or not 0 <= number < 2**bits:
        raise _order_error(f"{ERR_PAYLOAD}: {name} must be a uint{bits}")
    return number


def _is_uint256_text(text: str) -> bool:
    """ASCII decimal digits of a uint256 (``str.isdigit`` also takes '²' and other digits int() refuses)."""
    return text.isascii() and text.isdigit() and len(text) <= 78 and int(text) < 2**256


def _address(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise _order_error(f"{ERR_PAYLOAD}: {name} must be an address")
    try:
        return str(to_checksum_address(value))
    except (ValueError, TypeError):
        raise _order_error(f"{ERR_PAYLOAD}: {name} must be an address") from None


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


def book_hash(payload: dict[str, Any]) -> str:
    """SHA-1 of the compact book JSON with an empty hash: py-clob-client's server-compatible hash."""
    body = {**payload, "hash": ""}
    return hashlib.sha1(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()


# --------------------------------------------------------------------------- state records


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


def _load_raw(path: Path) -> dict[str, dict[str, Any]]:
    """The raw Gamma objects of the markets file, by condition id."""
    rows: dict[str, dict[str, Any]] = {}
    text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
    for line in text.splitlines():
        if line.strip():
            row = json.loads(line)
            rows[str(row["condition_id"])] = row.get("raw") or {}
    return rows


# --------------------------------------------------------------------------- the venue


class SandboxClob:
    """The sandbox venue's state: markets, clock, credentials, orders, trades, subscribers."""

    def __init__(
        self,
        markets_path: Path | str = DEFAULT_MARKETS,
        chainlink_path: Path | str = DEFAULT_CHAINLINK,
        *,
        start_ms: int | None = None,
        chain_id: int = 137,
        initial_usdc: Decimal | int | str = Decimal(1000),
        book_model: BookModelConfig | None = None,
        fees: FeeModel | None = None,
        page_size: int = 100,
        step_ms: int = 1000,
        speed: float | None = None,
        secret_seed: str = "raytrader-sandbox",
        exchanges: tuple[str, str] | None = None,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        if step_ms < 1:
            raise ValueError("step_ms must be >= 1")
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive")
        if exchanges is None and chain_id not in EXCHANGES:
            raise ValueError(f"no CTF exchange known for chain {chain_id}; pass exchanges=")
        self.chain_id = chain_id
        self.exchanges = exchanges if exchanges is not None else EXCHANGES[chain_id]
        self.initial_usdc = Decimal(initial_usdc)
        self.page_size = page_size
        self.step_ms = step_ms
        self.speed = speed
        self._seed = secret_seed.encode()
        self.model = BookModel(book_model)
        self.ticks: ChainlinkTicks = load_chainlink(chainlink_path)
        raw = _load_raw(Path(markets_path))
        infos = load_markets(markets_path, self.ticks)
        self._markets: dict[str, _Market] = {}
        self._by_token: dict[str, _Market] = {}
        instruments = []
        for info in infos:
            r = raw.get(info.condition_id, {})
            fees_on = bool(r.get("feesEnabled", info.fee_schedule is not None))
            market = _Market(
                info=info,
                raw=r,
                accepting_ms=_iso_to_ms(r.get("acceptingOrdersTimestamp")) or info.created_ms or 0,
                neg_risk=bool(r.get("negRisk", False)),
                fee_bps=int(r.get("takerBaseFee", 0)) if fees_on else 0,
            )
            self._markets[info.condition_id] = market
            for token in info.token_ids:
                self._by_token[token] = market
            for inst in info.instruments():
                instruments.append(inst.model_copy(update={"tick_size": min(inst.tick_size, COARSE_TICK)}))
        self._order_markets = sorted(self._markets.values(), key=lambda m: (m.info.start_ms, m.info.slug))
        self._pending_end = sorted(self._markets.values(), key=lambda m: m.info.end_ms)
        self.engine = MatchingEngine(fees, instruments, balances=True)
        self.fees = self.engine.fees
        self._creds: dict[str, SandboxCreds] = {}
        self._created: set[tuple[str, int]] = set()
        self._funded: set[str] = set()
        self._orders: dict[str, _Rec] = {}
        self._by_cid: dict[str, str] = {}
        self._attempts: Counter[str] = Counter()
        self._trades: list[_Trade] = []
        self._trade_by_id: dict[str, _Trade] = {}
        self._payouts: list[Payout] = []
        self._last_trade: dict[str, tuple[Decimal, Side]] = {}
        self._model_cache: dict[str, tuple[int, OrderBook, OrderBook]] = {}
        self._subscribers: list[_Subscriber] = []
        self._published: dict[str, _Published] = {}
        first = int(self.ticks.ts_ms[0]) if len(self.ticks.ts_ms) else self._order_markets[0].info.start_ms
        self._now_ms = first if start_ms is None else start_ms
        self._book_ms = self._now_ms - self._now_ms % step_ms
        self._clock_task: asyncio.Task[None] | None = None
        self._step(self._book_ms)

    # ------------------------------------------------------------------ clock

    @property
    def now_ms(self) -> int:
        return self._now_ms

    @property
    def book_ms(self) -> int:
        """When the books now shown were modelled: the last step at or before ``now_ms``."""
        return self._book_ms

    def advance_to(self, ms: int) -> None:
        """Move the clock forward to ``ms``, running every step in between (never backwards).

        Call it on the event loop thread that serves the app: the state is not locked.
        """
        if ms < self._now_ms:
            raise ValueError(f"the sandbox clock only moves forward: {ms} < {self._now_ms}")
        t = self._book_ms + self.step_ms
        while t <= ms:
            self._now_ms = t
            self._book_ms = t
            self._step(t)
            t += self.step_ms
        self._now_ms = ms

    def advance(self, seconds: float) -> None:
        self.advance_to(self._now_ms + round(seconds * 1000))

    async def run_clock(self, speed: float, interval_s: float = 0.1) -> None:
        """Advance ``speed`` sandbox seconds per wall second until cancelled."""
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(interval_s)
            now = loop.time()
            self.advance_to(self._now_ms + round((now - last) * speed * 1000))
            last = now

    def start_clock(self, speed: float | None = None) -> None:
        """Start the background clock (at ``speed`` or the configured one); idempotent."""
        rate = speed if speed is not None else self.speed
        if rate is None or (self._clock_task is not None and not self._clock_task.done()):
            return
        self._clock_task = asyncio.get_running_loop().create_task(self.run_clock(rate))

    async def stop_clock(self) -> None:
        task, self._clock_task = self._clock_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _step(self, t: int) -> None:
        """Everything that happens at one clock step, in a fixed order."""
        while self._pending_end and self._pending_end[0].info.end_ms <= t:
            self._resolve(self._pending_end.pop(0), t)
        for rec in list(self._orders.values()):
            if rec.expiration_s and rec.expiration_s * 1000 <= t:
                rec.expiration_s = 0  # handled: a GTD order expires once
                self._handle(self.engine.cancel(rec.engine_cid, t), t)
        tokens = {o.market.split(":", 1)[1] for o in self.engine.open_orders()}
        tokens |= self.subscribed_assets()
        for token in sorted(tokens):
            market = self._by_token.get(token)
            if market is None or market.closed:
                continue
            book = self._model_book(token, t)
            self._handle(self.engine.on_book(book, t), t)
        self._publish()

    # ------------------------------------------------------------------ markets and books

    def markets(self) -> list[BinaryMarket]:
        """Every market, in start order."""
        return [m.info for m in self._order_markets]

    def market_of(self, token_or_condition: str) -> BinaryMarket | None:
        market = self._by_token.get(token_or_condition) or self._markets.get(token_or_condition)
        return None if market is None else market.info

    def open_markets(self) -> list[BinaryMarket]:
        """Markets accepting orders now."""
        return [m.info for m in self._order_markets if self._accepting(m)]

    def _accepting(self, market: _Market) -> bool:
        return not market.closed and market.accepting_ms <= self._now_ms < market.info.end_ms

    def _model_books(self, market: _Market, t: int) -> tuple[OrderBook, OrderBook]:
        cached = self._model_cache.get(market.info.condition_id)
        if cached is not None and cached[0] == t:
            return cached[1], cached[2]
        up, down = self.model.books_at(market.info, t, self.ticks)
        self._model_cache[market.info.condition_id] = (t, up, down)
        return up, down

    def _model_book(self, token: str, t: int) -> OrderBook:
        market = self._by_token[token]
        up, down = self._model_books(market, t)
        return up if token == market.info.up_token_id else down

    def model_book_at(self, token: str, ms: int) -> OrderBook:
        """The modelled outside book of ``token`` at a step time, without touching any state."""
        market = self._by_token[token]
        t = ms - ms % self.step_ms
        up, down = self.model.books_at(market.info, t, self.ticks)
        return up if token == market.info.up_token_id else down

    def tick_size(self, token: str) -> Decimal:
        """0.01, or the market's recorded finer tick while the Up book trades beyond 0.96 / 0.04."""
        market = self._by_token[token]
        recorded = market.info.tick_size
        if recorded >= COARSE_TICK:
            return recorded
        if market.closed:
            return COARSE_TICK
        up, _ = self._model_books(market, self._book_ms)
        bid, ask = up.best_bid, up.best_ask
        extreme = (bid is not None and bid > NARROW_ABOVE) or (ask is not None and ask < NARROW_BELOW)
        return recorded if extreme else COARSE_TICK

    def current_book(self, token: str) -> OrderBook:
        """The book shown now: the modelled snapshot of this step less what our orders took from it."""
        market = self._by_token[token]
        if market.closed:
            return OrderBook(market=f"{VENUE}:{token}", ts_ms=self._book_ms)
        market_id = f"{VENUE}:{token}"
        book = self.engine.book(market_id)
        if book is not None and book.ts_ms == self._book_ms:
            return book
        fresh = self._model_book(token, self._book_ms)
        self._handle(self.engine.on_book(fresh, self._book_ms), self._book_ms)
        return self.engine.book(market_id) or fresh

    # ------------------------------------------------------------------ settlement

    def _resolve(self, market: _Market, t: int) -> None:
        """Window over: cancel its orders, pay the winning token 1 and the losing one 0 in USDC."""
        for token in market.info.token_ids:
            self._handle(self.engine.cancel_all(f"{VENUE}:{token}", t), t)
        market.closed = True
        winner = market.info.outcome or settlement_outcome(market.info, self.ticks)
        if winner is None:
            log.warning("sandbox clob: %s cannot be resolved from the data", market.info.slug)
            return
        market.winner = winner
        market.resolved_ms = t
        for account in self.engine.accounts():
            for token in market.info.token_ids:
                bal = self.engine.balance(account, token)
                shares = bal.free + bal.locked
                if shares <= 0:
                    continue
                self.engine.withdraw(account, token, bal.free)
                payout = market.info.payout(token, winner) or ZERO
                usdc = shares * payout
                if usdc > 0:
                    self.engine.deposit(account, USDC, usdc)
                self._payouts.append(Payout(market.info.condition_id, token, account, shares, usdc, t))
        winning = market.info.up_token_id if winner == "Up" else market.info.down_token_id
        message = {
            "event_type": "market_resolved",
            "id": str(market.raw.get("id", "")),
            "market": market.info.condition_id,
            "assets_ids": list(market.info.token_ids),
            "winning_asset_id": winning,
            "winning_outcome": winner,
            "timestamp": str(t),
            "tags": ["Crypto", "Bitcoin"],
        }
        self._emit(market.info.token_ids, message)

    # ------------------------------------------------------------------ credentials

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

    # ------------------------------------------------------------------ orders

    def post_order(self, creds: SandboxCreds, payload: Any) -> dict[str, Any]:
        """Validate, verify and place one signed order; the real CLOB's success body, or ``RequestError``."""
        if not isinstance(payload, dict) or not isinstance(payload.get("order"), dict):
            raise _order_error(ERR_PAYLOAD)
        raw = payload["order"]
        if payload.get("owner") != creds.api_key:
            raise _order_error(ERR_OWNER)
        order_type = payload.get("orderType", "GTC")
        post_only = payload.get("postOnly", False)
        if order_type not in ORDER_TYPES or not isinstance(post_only, bool):
            raise _order_error(f"{ERR_PAYLOAD}: orderType must be one of {', '.join(ORDER_TYPES)}")
        if post_only and order_type not in ("GTC", "GTD"):
            raise _order_error("invalid post-only order: only GTC and GTD orders can be post-only")
        fields, side, signature = self._parse_order(raw)
        if fields["signatureType"] != 0:
            raise _order_error("only EOA orders (signature type 0) are supported by the sandbox")
        if fields["signer"] != creds.address:
            raise _order_error(ERR_SIGNER)
        if fields["maker"] != fields["signer"]:
            raise _order_error(f"{ERR_SIGNATURE}: an EOA order's maker must be its signer")
        token = str(fields["tokenId"])
        market = self._by_token.get(token)
        if market is None:
            raise _order_error(ERR_TOKEN)
        exchange = self.exchanges[1] if market.neg_risk else self.exchanges[0]
        try:
            message = order_message(fields, self.chain_id, exchange)
        except (ValueError, TypeError, OverflowError):
            raise _order_error(ERR_PAYLOAD) from None
        order_id = "0x" + eip712_digest(message).hex()
        if recover_signer(message, signature) != fields["signer"]:
            raise _order_error(ERR_SIGNATURE)
        if order_id in self._orders:
            raise _order_error(f"order {order_id} is invalid. Duplicated.")
        if market.closed or self._now_ms >= market.info.end_ms:
            raise _order_error(ERR_CLOSED)
        if self._now_ms < market.accepting_ms:
            raise _order_error(ERR_NOT_READY)
        if fields["feeRateBps"] != market.fee_bps:
            raise _order_error(
                f"invalid user provided fee rate: ({fields['feeRateBps']}), "
                f"fee rate for the market must be {market.fee_bps}"
            )
        if fields["taker"] != ZERO_ADDRESS:
            raise _order_error(f"{ERR_PAYLOAD}: only public orders (taker = zero address)")
        expiration = int(fields["expiration"])
        if order_type == "GTD" and expiration * 1000 <= self._now_ms:
            raise _order_error(f"invalid expiration: {expiration} is not after the sandbox clock")
        price, size = self._price_size(order_id, side, fields)
        tick = self.tick_size(token)
        if not tick <= price <= 1 - tick or price % tick != 0:
            raise _order_error(
                f"order {order_id} is invalid. Price ({_num(price)}) breaks minimum tick size rule: "
                f"{_num(tick)}"
            )
        if size < market.info.min_size:
            raise _order_error(
                f"order {order_id} is invalid. Size ({_num(size)}) lower than the minimum: "
                f"{_num(market.info.min_size)}"
            )
        return self._place(
            creds, market, token, order_id, side, price, size, order_type, post_only, fields, raw
        )

    @staticmethod
    def _parse_order(raw: dict[str, Any]) -> tuple[dict[str, Any], Side, str]:
        fields: dict[str, Any] = {}
        for name, kind in _ORDER_FIELDS:
            if name == "side":
                continue
            value = raw.get(name)
            fields[name] = _address(value, name) if kind == "address" else _uint(value, name)
        side_raw = raw.get("side")
        if side_raw in ("BUY", 0):
            side = Side.BUY
        elif side_raw in ("SELL", 1):
            side = Side.SELL
        else:
            raise _order_error(f"{ERR_PAYLOAD}: side must be BUY or SELL")
        fields["side"] = 0 if side is Side.BUY else 1
        signature = raw.get("signature")
        if not isinstance(signature, str) or not signature:
            raise _order_error(f"{ERR_PAYLOAD}: missing signature")
        return fields, side, signature

    @staticmethod
    def _price_size(order_id: str, side: Side, fields: dict[str, Any]) -> tuple[Decimal, Decimal]:
        """(price, shares) of a limit order: a BUY gives makerAmount USDC for takerAmount shares."""
        maker, taker = Decimal(fields["makerAmount"]), Decimal(fields["takerAmount"])
        if maker <= 0 or taker <= 0:
            raise _order_error(f"order {order_id} is invalid. Amounts must be positive")
        shares_units, usdc_units = (taker, maker) if side is Side.BUY else (maker, taker)
        size = shares_units / TOKEN_UNIT
        if size != floor_to(size, LOT):
            raise _order_error(
                f"order {order_id} is invalid. Size ({_num(size)}) supports at most 2 decimals"
            )
        price = usdc_units / shares_units
        if price * shares_units != usdc_units:  # not a finite decimal: cannot be on any tick
            raise _order_error(
                f"order {order_id} is invalid. Price ({price:.6f}) breaks minimum tick size rule"
            )
        return price, size

    def _place(
        self,
        creds: SandboxCreds,
        market: _Market,
        token: str,
        order_id: str,
        side: Side,
        price: Decimal,
        size: Decimal,
        order_type: str,
        post_only: bool,
        fields: dict[str, Any],
        raw: dict[str, Any],
    ) -> dict[str, Any]:
        now = self._now_ms
        book = self.current_book(token)
        if order_type == "FOK" and _fillable(book, side, price) < size:
            raise _order_error(ERR_FOK)
        self._attempts[order_id] += 1
        attempt = self._attempts[order_id]
        engine_cid = order_id if attempt == 1 else f"{order_id}/{attempt}"
        if order_type in ("FOK", "FAK"):
            tif = TimeInForce.IOC
        elif post_only:
            tif = TimeInForce.POST_ONLY
        else:
            tif = TimeInForce.GTC
        order = Order(
            client_id=engine_cid,
            market=f"{VENUE}:{token}",
            side=side,
            type=OrderType.LIMIT,
            tif=tif,
            price=price,
            qty=size,
            created_ms=now,
        )
        events = self.engine.submit(order, now, account=creds.address)
        first = events[0]
        if first.kind is UpdateKind.REJECTED:
            raise _order_error(_reject_text(first, order_id))
        fills = [e.fill for e in events if e.fill is not None]
        if order_type == "FAK" and not fills:
            raise _order_error(ERR_FAK)
        rec = _Rec(
            order_id=order_id,
            engine_cid=engine_cid,
            owner=creds.api_key,
            address=creds.address,
            token=token,
            condition_id=market.info.condition_id,
            outcome=market.info.token_outcome(token),
            side=side,
            price=price,
            size=size,
            order_type=order_type,
            expiration_s=int(fields["expiration"]) if order_type == "GTD" else 0,
            expires=order_type == "GTD",
            created_ms=now,
            signed=dict(raw),
        )
        self._orders[order_id] = rec
        self._by_cid[engine_cid] = order_id
        self._handle(events, now)
        self._publish()
        shares = sum((f.qty for f in fills), ZERO)
        usdc = sum((f.price * f.qty for f in fills), ZERO)
        making, taking = (usdc, shares) if side is Side.BUY else (shares, usdc)
        return {
            "success": True,
            "errorMsg": "",
            "orderID": order_id,
            "transactionsHashes": [self._trade_by_id[t].tx_hash for t in rec.trade_ids],
            "status": "matched" if fills else "live",
            "takingAmount": _num(taking) if fills else "",
            "makingAmount": _num(making) if fills else "",
        }

    def cancel_orders(self, creds: SandboxCreds, order_ids: Iterable[str]) -> dict[str, Any]:
        """The real CLOB's cancel answer: ``{"canceled": [...], "not_canceled": {id: why}}``."""
        canceled: list[str] = []
        not_canceled: dict[str, str] = {}
        for order_id in order_ids:
            rec = self._orders.get(order_id)
            if rec is None or rec.address != creds.address:
                not_canceled[order_id] = "order not found"
                continue
            events = self.engine.cancel(rec.engine_cid, self._now_ms)
            if events and events[0].kind is UpdateKind.CANCELLED:
                canceled.append(order_id)
            else:
                not_canceled[order_id] = "already canceled or matched"
            self._handle(events, self._now_ms)
        return {"canceled": canceled, "not_canceled": not_canceled}

    def cancel_where(self, creds: SandboxCreds, condition_id: str = "", asset_id: str = "") -> dict[str, Any]:
        """Cancel the caller's open orders, of a market and/or token when given."""
        ids = [
            r.order_id
            for r in self._open_recs(creds.address)
            if (not condition_id or r.condition_id == condition_id) and (not asset_id or r.token == asset_id)
        ]
        return self.cancel_orders(creds, ids)

    def _open_recs(self, address: str) -> list[_Rec]:
        found = []
        for rec in self._orders.values():
            order = self.engine.order(rec.engine_cid)
            if rec.address == address and order is not None and order.is_open:
                found.append(rec)
        return found

    def _handle(self, events: list[OrderUpdate], t: int) -> None:
        """Record our fills as trades and tell the market channel about them."""
        for event in events:
            fill = event.fill
            if event.kind is not UpdateKind.FILL or fill is None:
                continue
            order_id = self._by_cid.get(fill.client_id)
            if order_id is None:
                continue
            rec = self._orders[order_id]
            taker = fill.liquidity is Liquidity.TAKER
            trade = _Trade(
                trade_id=str(uuid.UUID(hex=_digest("trade", fill.fill_id)[:32], version=4)),
                order_id=order_id,
                fill=fill,
                trader_side="TAKER" if taker else "MAKER",
                counter_order_id="0x" + _digest("model-order", fill.fill_id),
                tx_hash="0x" + _digest("tx", fill.fill_id),
            )
            self._trades.append(trade)
            self._trade_by_id[trade.trade_id] = trade
            rec.trade_ids.append(trade.trade_id)
            taker_side = fill.side if taker else fill.side.opposite
            self._last_trade[rec.token] = (fill.price, taker_side)
            market = self._by_token[rec.token]
            self._emit(
                (rec.token,),
                {
                    "event_type": "last_trade_price",
                    "market": rec.condition_id,
                    "asset_id": rec.token,
                    "fee_rate_bps": str(market.fee_bps),
                    "price": _num(fill.price),
                    "side": taker_side.value.upper(),
                    "size": _size(fill.qty),
                    "timestamp": str(t),
                },
            )

    # ------------------------------------------------------------------ views (wire shapes)

    def order_json(self, rec: _Rec) -> dict[str, Any]:
        order = self.engine.order(rec.engine_cid)
        assert order is not None  # every record was accepted by the engine
        if order.status is OrderStatus.FILLED:
            status = "MATCHED"
        elif order.status is OrderStatus.CANCELLED:
            status = "CANCELED"
        elif order.status is OrderStatus.REJECTED:
            status = "INVALID"
        else:
            status = "LIVE"
        return {
            "associate_trades": list(rec.trade_ids),
            "id": rec.order_id,
            "status": status,
            "market": rec.condition_id,
            "original_size": _size(rec.size),
            "outcome": rec.outcome,
            "maker_address": rec.address,
            "owner": rec.owner,
            "price": _num(rec.price),
            "side": rec.side.value.upper(),
            "size_matched": _size(order.filled_qty),
            "asset_id": rec.token,
            "expiration": str(rec.signed.get("expiration", "0")) if rec.expires else "0",
            "order_type": rec.order_type,
            "created_at": rec.created_ms // 1000,
        }

    def trade_json(self, trade: _Trade) -> dict[str, Any]:
        fill = trade.fill
        rec = self._orders[trade.order_id]
        market = self._by_token[rec.token]
        when = iso_ms(fill.ts_ms)
        ours = fill.side.value.upper()
        theirs = fill.side.opposite.value.upper()
        if trade.trader_side == "TAKER":
            maker_orders = [
                {
                    "order_id": trade.counter_order_id,
                    "owner": MODEL_OWNER,
                    "maker_address": MODEL_ADDRESS,
                    "matched_amount": _size(fill.qty),
                    "price": _num(fill.price),
                    "fee_rate_bps": "0",
                    "asset_id": rec.token,
                    "outcome": rec.outcome,
                    "side": theirs,
                }
            ]
            taker_order, side = trade.order_id, ours
        else:
            maker_orders = [
                {
                    "order_id": trade.order_id,
                    "owner": rec.owner,
                    "maker_address": rec.address,
                    "matched_amount": _size(fill.qty),
                    "price": _num(fill.price),
                    "fee_rate_bps": str(market.fee_bps),
                    "asset_id": rec.token,
                    "outcome": rec.outcome,
                    "side": ours,
                }
            ]
            taker_order, side = trade.counter_order_id, theirs
        return {
            "id": trade.trade_id,
            "taker_order_id": taker_order,
            "market": rec.condition_id,
            "asset_id": rec.token,
            "side": side,
            "size": _size(fill.qty),
            "fee_rate_bps": str(market.fee_bps),
            "price": _num(fill.price),
            "status": "CONFIRMED",
            "match_time": when,
            "last_update": when,
            "outcome": rec.outcome,
            "bucket_index": 0,
            "owner": rec.owner,
            "maker_address": rec.address,
            "transaction_hash": trade.tx_hash,
            "maker_orders": maker_orders,
            "trader_side": trade.trader_side,
        }

    def market_json(self, market: _Market) -> dict[str, Any]:
        info, raw = market.info, market.raw
        tokens = []
        up_mid: Decimal | None = None
        if not market.closed:
            up_mid = self._model_books(market, self._book_ms)[0].mid
        for token, outcome in ((info.up_token_id, "Up"), (info.down_token_id, "Down")):
            if market.winner is not None:
                price: Decimal | float = Decimal(1) if market.winner == outcome else ZERO
            elif up_mid is not None:
                price = up_mid if outcome == "Up" else 1 - up_mid
            else:
                price = Decimal("0.5")
            tokens.append(
                {
                    "outcome": outcome,
                    "price": float(price),
                    "token_id": token,
                    "winner": market.winner == outcome,
                }
            )
        return {
            "accepting_order_timestamp": iso_ms(market.accepting_ms),
            "accepting_orders": self._accepting(market),
            "active": True,
            "archived": False,
            "closed": market.closed,
            "condition_id": info.condition_id,
            "description": str(raw.get("description", "")),
            "enable_order_book": True,
            "end_date_iso": iso_ms(info.end_ms),
            "fpmm": "",
            "game_start_time": iso_ms(info.start_ms),
            "icon": str(raw.get("icon", "")),
            "image": str(raw.get("image", "")),
            "is_50_50_outcome": False,
            "maker_base_fee": market.fee_bps,
            "market_slug": info.slug,
            "minimum_order_size": _json_number(info.min_size),
            "minimum_tick_size": float(self.tick_size(info.up_token_id)),
            "neg_risk": market.neg_risk,
            "neg_risk_market_id": "",
            "neg_risk_request_id": "",
            "notifications_enabled": True,
            "question": info.question,
            "question_id": str(raw.get("questionID", "")),
            "rewards": {
                "max_spread": raw.get("rewardsMaxSpread", 0),
                "min_size": raw.get("rewardsMinSize", 0),
                "rates": None,
            },
            "seconds_delay": 0,
            "tags": ["Crypto", "Bitcoin"],
            "taker_base_fee": market.fee_bps,
            "tokens": tokens,
        }

    def book_json(self, token: str) -> dict[str, Any]:
        """``/book``: levels worst first, best last (as the real CLOB lists them)."""
        market = self._by_token[token]
        book = self.current_book(token)
        last = self._last_trade.get(token)
        payload: dict[str, Any] = {
            "market": market.info.condition_id,
            "asset_id": token,
            "timestamp": str(book.ts_ms),
            "hash": "",
            "bids": [{"price": _num(lv.price), "size": _size(lv.size)} for lv in reversed(book.bids)],
            "asks": [{"price": _num(lv.price), "size": _size(lv.size)} for lv in reversed(book.asks)],
            "min_order_size": _num(market.info.min_size),
            "tick_size": _num(self.tick_size(token)),
            "neg_risk": market.neg_risk,
            "last_trade_price": _num(last[0]) if last else "0.5",
        }
        payload["hash"] = book_hash(payload)
        return payload

    def page(
        self, items: Sequence[T], cursor: str | None, to_json: Callable[[T], dict[str, Any]]
    ) -> dict[str, Any]:
        """One ``next_cursor`` page of ``items``, only that page rendered."""
        offset = decode_cursor(cursor)
        if offset < 0 or offset >= len(items):
            return {"limit": self.page_size, "count": 0, "next_cursor": END_CURSOR, "data": []}
        data = [to_json(item) for item in items[offset : offset + self.page_size]]
        nxt = offset + len(data)
        return {
            "limit": self.page_size,
            "count": len(data),
            "next_cursor": encode_cursor(nxt) if nxt < len(items) else END_CURSOR,
            "data": data,
        }

    # ------------------------------------------------------------------ ground truth

    def orders(self, address: str | None = None) -> list[dict[str, Any]]:
        """Every order the venue holds (each once, however often it was posted), wire shape."""
        return [self.order_json(r) for r in self._orders.values() if address is None or r.address == address]

    def open_orders(self, address: str | None = None) -> list[dict[str, Any]]:
        return [o for o in self.orders(address) if o["status"] == "LIVE"]

    def order(self, order_id: str) -> dict[str, Any] | None:
        rec = self._orders.get(order_id)
        return None if rec is None else self.order_json(rec)

    def trades(self, address: str | None = None) -> list[dict[str, Any]]:
        return [
            self.trade_json(t)
            for t in self._trades
            if address is None or self._orders[t.order_id].address == address
        ]

    def fills(self) -> list[dict[str, Any]]:
        """The engine's fills with the order and trade ids they belong to."""
        return [
            {**t.fill.model_dump(mode="json"), "order_id": t.order_id, "trade_id": t.trade_id}
            for t in self._trades
        ]

    def payouts(self) -> list[Payout]:
        return list(self._payouts)

    def balances(self, address: str) -> dict[str, dict[str, str]]:
        account = str(to_checksum_address(address))
        return {
            asset: {"free": _num(b.free), "locked": _num(b.locked), "total": _num(b.total)}
            for asset, b in self.engine.balances(account).items()
        }

    def balance(self, address: str, asset: str = USDC) -> Decimal:
        """Free + locked: what the wallet holds (Polymarket does not lock funds on chain)."""
        return self.engine.balance(str(to_checksum_address(address)), asset).total

    # ------------------------------------------------------------------ market channel

    def subscribe(self) -> _Subscriber:
        sub = _Subscriber()
        self._subscribers.append(sub)
        return sub

    def unsubscribe(self, sub: _Subscriber) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)
        sub.close()
        live = self.subscribed_assets()
        for token in [t for t in self._published if t not in live]:
            del self._published[token]

    def subscribed_assets(self) -> set[str]:
        return {a for s in self._subscribers for a in s.assets}

    def close_subscribers(self) -> None:
        for sub in list(self._subscribers):
            self.unsubscribe(sub)

    def ws_command(self, sub: _Subscriber, text: str) -> None:
        """One client message on the market channel; anything unintelligible is ignored."""
        if text.strip().upper() == "PING":
            sub.push("PONG")
            return
        try:
            message = json.loads(text)
        except (ValueError, RecursionError):
            log.info("sandbox clob: ignoring non-JSON websocket message %.80r", text)
            return
        if not isinstance(message, dict):
            return
        assets = message.get("assets_ids", message.get("asset_ids"))
        if not isinstance(assets, list) or not all(isinstance(a, str) for a in assets):
            return
        operation = str(message.get("operation", "subscribe")).lower()
        if operation == "unsubscribe":
            sub.assets.difference_update(assets)
            return
        new = [a for a in dict.fromkeys(assets) if a in self._by_token and a not in sub.assets]
        self._publish()  # bring everyone else up to date first: the snapshot below is "now"
        sub.assets.update(new)
        books = []
        for token in new:
            if self._by_token[token].closed:
                continue
            books.append({"event_type": "book", **self.book_json(token)})
            self._remember(token)
        if books:
            sub.push(json.dumps(books))

    def inject_ws_raw(self, text: str, asset_id: str | None = None) -> int:
        """Push ``text`` verbatim to subscribers (of ``asset_id``, or all): parser fault tests."""
        count = 0
        for sub in self._subscribers:
            if asset_id is None or asset_id in sub.assets:
                sub.push(text)
                count += 1
        return count

    def _emit(self, tokens: Iterable[str], message: dict[str, Any]) -> None:
        wanted = set(tokens)
        text = json.dumps(message)
        for sub in self._subscribers:
            if sub.assets & wanted:
                sub.push(text)

    def _remember(self, token: str) -> None:
        book = self.current_book(token)
        self._published[token] = _Published(
            bids={lv.price: lv.size for lv in book.bids},
            asks={lv.price: lv.size for lv in book.asks},
            tick=self.tick_size(token),
        )

    def _publish(self) -> None:
        """Send every subscribed token's book changes since the last publication."""
        if not self._subscribers:
            return
        by_market: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for token in sorted(self.subscribed_assets()):
            market = self._by_token[token]
            previous = self._published.get(token)
            if market.closed or previous is None:
                continue
            book = self.current_book(token)
            tick = self.tick_size(token)
            if tick != previous.tick:
                self._emit(
                    (token,),
                    {
                        "event_type": "tick_size_change",
                        "market": market.info.condition_id,
                        "asset_id": token,
                        "old_tick_size": _num(previous.tick),
                        "new_tick_size": _num(tick),
                        "timestamp": str(book.ts_ms),
                    },
                )
                previous.tick = tick
            bids = {lv.price: lv.size for lv in book.bids}
            asks = {lv.price: lv.size for lv in book.asks}
            changes: list[tuple[str, Decimal, Decimal]] = []
            for side, old, new in (("BUY", previous.bids, bids), ("SELL", previous.asks, asks)):
                for price in sorted(set(old) | set(new)):
                    if old.get(price) != new.get(price):
                        changes.append((side, price, new.get(price, ZERO)))
            if not changes:
                continue
            previous.bids, previous.asks = bids, asks
            best_bid = _num(book.best_bid) if book.best_bid is not None else "0"
            best_ask = _num(book.best_ask) if book.best_ask is not None else "0"
            state = json.dumps([token, book.ts_ms, sorted(bids.items()), sorted(asks.items())], default=str)
            digest = hashlib.sha1(state.encode()).hexdigest()
            for side, price, size in changes:
                entry = {
                    "asset_id": token,
                    "price": _num(price),
                    "size": _size(size),
                    "side": side,
                    "hash": digest,
                    "best_bid": best_bid,
                    "best_ask": best_ask,
                }
                by_market.setdefault(market.info.condition_id, []).append((token, entry))
        for condition_id, entries in by_market.items():
            for sub in self._subscribers:
                mine = [e for token, e in entries if token in sub.assets]
                if mine:
                    sub.push(
                        json.dumps(
                            {
                                "event_type": "price_change",
                                "market": condition_id,
                                "price_changes": mine,
                                "timestamp": str(self._book_ms),
                            }
                        )
                    )


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


def _fillable(book: OrderBook, side: Side, price: Decimal) -> Decimal:
    """Shares an immediate order at ``price`` can take from ``book`` (lot-floored per level)."""
    levels = book.asks if side is Side.BUY else book.bids
    total = ZERO
    for level in levels:
        if (level.price > price) if side is Side.BUY else (level.price < price):
            break
        total += floor_to(level.size, LOT)
    return total


def _reject_text(event: OrderUpdate, order_id: str) -> str:
    reason = event.reason
    if reason is Reason.INSUFFICIENT_FUNDS:
        return ERR_BALANCE
    if reason is Reason.POST_ONLY_WOULD_TAKE:
        return "invalid post-only order: order crosses book"
    if reason in (Reason.TICK_SIZE, Reason.INVALID_PRICE):
        return f"order {order_id} is invalid. Price breaks minimum tick size rule ({event.detail})"
    if reason in (Reason.MIN_SIZE, Reason.LOT_SIZE, Reason.INVALID_QTY):
        return f"order {order_id} is invalid. Size: {event.detail}"
    return f"order {order_id} is invalid. {event.detail or (reason.value if reason else 'rejected')}"


# --------------------------------------------------------------------------- the aiohttp app

VENUE_KEY = web.AppKey("sandbox_clob", SandboxClob)
FAULTS_KEY = web.AppKey("sandbox_clob_faults", FaultInjector)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refusals become the venue's JSON errors; anything unexpected a 500, never a dead server."""
    try:
        return await handler(request)
    except RequestError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status >= 400:
            return web.json_response({"error": exc.reason}, status=exc.status)
        raise
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("sandbox clob: %s %s failed", request.method, request.path)
        return web.json_response({"error": ERR_INTERNAL}, status=500)


def _venue(request: web.Request) -> SandboxClob:
    return request.app[VENUE_KEY]


def _token(request: web.Request, venue: SandboxClob) -> str:
    token = request.query.get("token_id", "")
    if not token or token not in venue._by_token:
        raise RequestError(ERR_TOKEN, 400)
    return token


def _open_token(request: web.Request, venue: SandboxClob) -> str:
    token = _token(request, venue)
    if venue._by_token[token].closed:
        raise RequestError(ERR_NO_BOOK, 404)
    return token


async def _json_body(request: web.Request) -> Any:
    text = (await request.read()).decode("utf-8", errors="replace")
    if not text:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise RequestError("Invalid payload", 400) from None


async def _l2(request: web.Request) -> tuple[SandboxCreds, str]:
    """Authenticate an L2 request; returns its creds and raw body text."""
    body = (await request.read()).decode("utf-8", errors="replace")
    creds = _venue(request).check_l2(dict(request.headers), request.method, request.path, body or None)
    return creds, body


def _parse_body(body: str) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise RequestError("Invalid payload", 400) from None


async def h_ok(_request: web.Request) -> web.Response:
    return web.Response(text='"OK"', content_type="application/json")


async def h_time(request: web.Request) -> web.Response:
    return web.json_response(_venue(request).now_ms // 1000)


async def h_markets(request: web.Request) -> web.Response:
    venue = _venue(request)
    page = venue.page(venue._order_markets, request.query.get("next_cursor"), venue.market_json)
    return web.json_response(page)


async def h_market(request: web.Request) -> web.Response:
    venue = _venue(request)
    market = venue._markets.get(request.match_info["condition_id"])
    if market is None:
        raise RequestError("market not found", 404)
    return web.json_response(venue.market_json(market))


async def h_book(request: web.Request) -> web.Response:
    venue = _venue(request)
    return web.json_response(venue.book_json(_open_token(request, venue)))


async def h_books(request: web.Request) -> web.Response:
    venue = _venue(request)
    body = await _json_body(request)
    if not isinstance(body, list) or not all(isinstance(b, dict) for b in body):
        raise RequestError("Invalid payload", 400)
    if len(body) > 500:
        raise RequestError("Payload exceeds the limit", 400)
    books = []
    for item in body:
        token = item.get("token_id")
        if isinstance(token, str) and token in venue._by_token and not venue._by_token[token].closed:
            books.append(venue.book_json(token))
    return web.json_response(books)


async def h_midpoint(request: web.Request) -> web.Response:
    venue = _venue(request)
    book = venue.current_book(_open_token(request, venue))
    mid = book.mid
    if mid is None:
        raise RequestError(ERR_NO_BOOK, 404)
    return web.json_response({"mid": _num(mid)})


async def h_price(request: web.Request) -> web.Response:
    venue = _venue(request)
    token = _open_token(request, venue)
    side = request.query.get("side", "").upper()
    if side not in ("BUY", "SELL"):
        raise RequestError("Invalid side", 400)
    book = venue.current_book(token)
    price = book.best_bid if side == "BUY" else book.best_ask
    if price is None:
        raise RequestError(ERR_NO_BOOK, 404)
    return web.json_response({"price": _num(price)})


async def h_spread(request: web.Request) -> web.Response:
    venue = _venue(request)
    spread = venue.current_book(_open_token(request, venue)).spread
    if spread is None:
        raise RequestError(ERR_NO_BOOK, 404)
    return web.json_response({"spread": _num(spread)})


async def h_last_trade(request: web.Request) -> web.Response:
    venue = _venue(request)
    token = _token(request, venue)
    last = venue._last_trade.get(token)
    if last is None:
        return web.json_response({"price": "0.5", "side": ""})
    return web.json_response({"price": _num(last[0]), "side": last[1].value.upper()})


async def h_tick_size(request: web.Request) -> web.Response:
    venue = _venue(request)
    return web.json_response({"minimum_tick_size": float(venue.tick_size(_token(request, venue)))})


async def h_neg_risk(request: web.Request) -> web.Response:
    venue = _venue(request)
    return web.json_response({"neg_risk": venue._by_token[_token(request, venue)].neg_risk})


async def h_fee_rate(request: web.Request) -> web.Response:
    venue = _venue(request)
    return web.json_response({"base_fee": venue._by_token[_token(request, venue)].fee_bps})


def _creds_json(creds: SandboxCreds) -> dict[str, str]:
    return {"apiKey": creds.api_key, "secret": creds.secret, "passphrase": creds.passphrase}


async def h_create_key(request: web.Request) -> web.Response:
    venue = _venue(request)
    address, nonce = venue.check_l1(dict(request.headers))
    return web.json_response(_creds_json(venue.create_api_key(address, nonce)))


async def h_derive_key(request: web.Request) -> web.Response:
    venue = _venue(request)
    address, nonce = venue.check_l1(dict(request.headers))
    return web.json_response(_creds_json(venue.derive_api_key(address, nonce)))


async def h_api_keys(request: web.Request) -> web.Response:
    creds, _ = await _l2(request)
    return web.json_response({"apiKeys": _venue(request).api_keys(creds.address)})


async def h_post_order(request: web.Request) -> web.Response:
    creds, body = await _l2(request)
    payload = _parse_body(body)
    return web.json_response(_venue(request).post_order(creds, payload))


async def h_post_orders(request: web.Request) -> web.Response:
    creds, body = await _l2(request)
    payload = _parse_body(body)
    if not isinstance(payload, list) or not payload:
        raise _order_error(ERR_PAYLOAD)
    if len(payload) > MAX_BATCH:
        raise _order_error(f"{ERR_PAYLOAD}: at most {MAX_BATCH} orders a batch")
    venue = _venue(request)
    results: list[dict[str, Any]] = []
    for item in payload:
        try:
            results.append(venue.post_order(creds, item))
        except RequestError as exc:
            results.append({"success": False, "orderID": None, "errorMsg": exc.message, "error": exc.message})
    return web.json_response(results)


async def h_cancel(request: web.Request) -> web.Response:
    creds, body = await _l2(request)
    payload = _parse_body(body)
    if not isinstance(payload, dict) or not isinstance(payload.get("orderID"), str):
        raise RequestError("Invalid order payload", 400)
    return web.json_response(_venue(request).cancel_orders(creds, [payload["orderID"]]))


async def h_cancel_orders(request: web.Request) -> web.Response:
    creds, body = await _l2(request)
    payload = _parse_body(body)
    if not isinstance(payload, list) or not all(isinstance(i, str) for i in payload):
        raise RequestError("Invalid order payload", 400)
    return web.json_response(_venue(request).cancel_orders(creds, payload))


async def h_cancel_all(request: web.Request) -> web.Response:
    creds, _ = await _l2(request)
    return web.json_response(_venue(request).cancel_where(creds))


async def h_cancel_market(request: web.Request) -> web.Response:
    creds, body = await _l2(request)
    payload = _parse_body(body) or {}
    if not isinstance(payload, dict):
        raise RequestError("Invalid payload", 400)
    market, asset = payload.get("market") or "", payload.get("asset_id") or ""
    if not isinstance(market, str) or not isinstance(asset, str):
        raise RequestError("Invalid payload", 400)
    return web.json_response(_venue(request).cancel_where(creds, market, asset))


async def h_orders(request: web.Request) -> web.Response:
    creds, _ = await _l2(request)
    venue = _venue(request)
    q = request.query
    items = [
        o
        for o in venue.open_orders(creds.address)
        if (not q.get("market") or o["market"] == q["market"])
        and (not q.get("asset_id") or o["asset_id"] == q["asset_id"])
        and (not q.get("id") or o["id"] == q["id"])
    ]
    return web.json_response(venue.page(items, q.get("next_cursor"), _same))


async def h_order(request: web.Request) -> web.Response:
    creds, _ = await _l2(request)
    venue = _venue(request)
    rec = venue._orders.get(request.match_info["order_id"])
    if rec is None or rec.address != creds.address:
        raise RequestError("order not found", 404)
    return web.json_response(venue.order_json(rec))


def _same(row: dict[str, Any]) -> dict[str, Any]:
    return row


def _int_query(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise RequestError(f"invalid {name}", 400) from None


async def h_trades(request: web.Request) -> web.Response:
    creds, _ = await _l2(request)
    venue = _venue(request)
    q = request.query
    after, before = _int_query(q.get("after"), "after"), _int_query(q.get("before"), "before")
    maker = (q.get("maker_address") or "").lower()
    items = []
    for trade in venue._trades:
        if venue._orders[trade.order_id].address != creds.address:
            continue
        seconds = trade.fill.ts_ms // 1000
        if after is not None and seconds < after:
            continue
        if before is not None and seconds > before:
            continue
        row = venue.trade_json(trade)
        if q.get("id") and row["id"] != q["id"]:
            continue
        if q.get("market") and row["market"] != q["market"]:
            continue
        if q.get("asset_id") and row["asset_id"] != q["asset_id"]:
            continue
        if maker and row["maker_address"].lower() != maker:
            continue
        items.append(row)
    return web.json_response(venue.page(items, q.get("next_cursor"), _same))


async def h_balance(request: web.Request) -> web.Response:
    creds, _ = await _l2(request)
    venue = _venue(request)
    asset_type = request.query.get("asset_type", "COLLATERAL").upper()
    if asset_type == "COLLATERAL":
        asset = USDC
    elif asset_type == "CONDITIONAL":
        asset = request.query.get("token_id", "")
        if asset not in venue._by_token:
            raise RequestError(ERR_TOKEN, 400)
    else:
        raise RequestError("invalid asset_type", 400)
    return web.json_response(
        {"balance": _units(venue.balance(creds.address, asset)), "allowance": UNLIMITED_ALLOWANCE}
    )


async def h_notifications(request: web.Request) -> web.Response:
    await _l2(request)
    return web.json_response([])


async def h_ws_market(request: web.Request) -> web.WebSocketResponse:
    venue = _venue(request)
    faults = request.app[FAULTS_KEY]
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    sub = venue.subscribe()

    async def sender() -> None:
        while True:
            text = await sub.queue.get()
            if text is None or ws.closed:
                break
            if not await faults.ws_gate(request.path):
                break
            await ws.send_str(text)
        if not ws.closed:
            await ws.close(code=1001 if not sub.overflowed else 1008)

    task = asyncio.get_running_loop().create_task(sender())
    try:
        with faults.track_ws(request.path, ws):
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    venue.ws_command(sub, msg.data)
                elif msg.type is WSMsgType.ERROR:
                    break
    finally:
        venue.unsubscribe(sub)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await task
    return ws


async def h_truth_orders(request: web.Request) -> web.Response:
    return web.json_response({"orders": _venue(request).orders(request.query.get("address"))})


async def h_truth_fills(request: web.Request) -> web.Response:
    return web.json_response({"fills": _venue(request).fills()})


async def h_truth_trades(request: web.Request) -> web.Response:
    return web.json_response({"trades": _venue(request).trades(request.query.get("address"))})


async def h_truth_payouts(request: web.Request) -> web.Response:
    rows = [
        {
            "condition_id": p.condition_id,
            "token": p.token,
            "account": p.account,
            "shares": _num(p.shares),
            "usdc": _num(p.usdc),
            "ts_ms": p.ts_ms,
        }
        for p in _venue(request).payouts()
    ]
    return web.json_response({"payouts": rows})


async def h_truth_balances(request: web.Request) -> web.Response:
    address = request.query.get("address", "")
    try:
        return web.json_response({"balances": _venue(request).balances(address)})
    except (ValueError, TypeError):
        raise RequestError("invalid address", 400) from None


async def h_clock(request: web.Request) -> web.Response:
    venue = _venue(request)
    if request.method == "POST":
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise RequestError("body must be {'advance_s': s} or {'to_ms': ms}", 400)
        try:
            if "to_ms" in body:
                venue.advance_to(int(body["to_ms"]))
            else:
                venue.advance(float(body.get("advance_s", 0)))
        except (TypeError, ValueError, OverflowError) as exc:
            raise RequestError(str(exc), 400) from None
    return web.json_response({"now_ms": venue.now_ms, "book_ms": venue.book_ms, "now": iso_ms(venue.now_ms)})


def clob_app(venue: SandboxClob, faults: FaultInjector | None = None) -> web.Application:
    """The aiohttp app serving ``venue`` (with fault injection installed, rules empty by default)."""
    app = web.Application(middlewares=[_errors])
    injector = faults if faults is not None else FaultInjector()
    app[VENUE_KEY] = venue
    app[FAULTS_KEY] = injector
    r = app.router
    r.add_get("/", h_ok)
    r.add_get("/time", h_time)
    r.add_get("/markets", h_markets)
    r.add_get("/markets/{condition_id}", h_market)
    r.add_get("/book", h_book)
    r.add_post("/books", h_books)
    r.add_get("/midpoint", h_midpoint)
    r.add_get("/price", h_price)
    r.add_get("/spread", h_spread)
    r.add_get("/last-trade-price", h_last_trade)
    r.add_get("/tick-size", h_tick_size)
    r.add_get("/neg-risk", h_neg_risk)
    r.add_get("/fee-rate", h_fee_rate)
    r.add_post("/auth/api-key", h_create_key)
    r.add_get("/auth/derive-api-key", h_derive_key)
    r.add_get("/auth/api-keys", h_api_keys)
    r.add_post("/order", h_post_order)
    r.add_post("/orders", h_post_orders)
    r.add_delete("/order", h_cancel)
    r.add_delete("/orders", h_cancel_orders)
    r.add_delete("/cancel-all", h_cancel_all)
    r.add_delete("/cancel-market-orders", h_cancel_market)
    r.add_get("/data/orders", h_orders)
    r.add_get("/data/order/{order_id}", h_order)
    r.add_get("/data/trades", h_trades)
    r.add_get("/balance-allowance", h_balance)
    r.add_get("/balance-allowance/update", h_balance)
    r.add_get("/notifications", h_notifications)
    r.add_get("/ws/market", h_ws_market)
    r.add_get("/_sandbox/orders", h_truth_orders)
    r.add_get("/_sandbox/fills", h_truth_fills)
    r.add_get("/_sandbox/trades", h_truth_trades)
    r.add_get("/_sandbox/payouts", h_truth_payouts)
    r.add_get("/_sandbox/balances", h_truth_balances)
    r.add_get("/_sandbox/clock", h_clock)
    r.add_post("/_sandbox/clock", h_clock)
    injector.install(app)

    async def on_startup(_app: web.Application) -> None:
        venue.start_clock()

    async def on_cleanup(_app: web.Application) -> None:
        await venue.stop_clock()
        venue.close_subscribers()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


async def serve_clob(
    venue: SandboxClob, host: str = "127.0.0.1", port: int = 8802, faults: FaultInjector | None = None
) -> web.AppRunner:
    """Start serving ``venue``; the caller owns the runner (``await runner.cleanup()`` to stop)."""
    runner = web.AppRunner(clob_app(venue, faults))
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m ops.sandbox.clob``: serve the sandbox CLOB on loopback until interrupted."""
    import argparse

    from ops.sandbox.faults import FaultPlan

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8802)
    parser.add_argument("--speed", type=float, default=1.0, help="sandbox seconds per wall second")
    parser.add_argument(
        "--start-ms", type=int, default=None, help="clock start (default: the data's first tick)"
    )
    parser.add_argument("--initial-usdc", default="1000", help="USDC credited to each new wallet")
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--chain-id", type=int, default=137)
    parser.add_argument("--fault-plan", default=None, help="a FaultPlan file (.toml or .json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    venue = SandboxClob(
        start_ms=args.start_ms,
        chain_id=args.chain_id,
        initial_usdc=Decimal(args.initial_usdc),
        page_size=args.page_size,
        speed=args.speed if args.speed > 0 else None,
    )
    faults = FaultInjector(FaultPlan.from_file(args.fault_plan)) if args.fault_plan else FaultInjector()

    async def run() -> None:
        runner = await serve_clob(venue, args.host, args.port, faults)
        log.info("sandbox clob on http://%s:%d (clock %s)", args.host, args.port, iso_ms(venue.now_ms))
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
