"""Polymarket over the REAL py-clob-client (0.34.6).

How py-clob-client is driven:

* ``ClobClient(host, chain_id=chain_id, key=private_key, signature_type=0)``: an EOA wallet
  (signature type 0: the key's address is maker, signer and funder). ``chain_id`` is 137
  (Polygon) for the real venue and the sandbox alike; the sandbox verifies signatures against
  the same CTF exchange domain. ``start()`` runs ``create_or_derive_api_creds(nonce)`` (L1: an
  EIP-712 ``ClobAuth`` signature) and ``set_api_creds`` (L2: HMAC headers from then on).
* The client is synchronous (a module-global ``httpx.Client``): every call runs in a worker
  thread through ``asyncio.to_thread`` so the event loop never blocks. The client's own caches
  (tick size with a 300 s TTL, neg-risk, fee rate) are plain dicts, safe under the GIL.
* Deterministic order ids: py-clob-client signs with a random salt (py_order_utils'
  ``generate_seed``: ``round(now * random())``), so the same intent would get a new order hash
  every time. ``DeterministicOrderBuilder`` repeats what ``OrderBuilder.create_order`` does (the
  client's own ``get_order_amounts`` rounding, the same ``OrderData``, the exchange of the chain
  and neg-risk flag) but hands py_order_utils' ``OrderBuilder`` a ``salt_generator`` returning
  ``salt_for(client_id)`` (48 bits of SHA-256 of the client id, inside JS's exact-integer range).
  The order id is the EIP-712 order hash, so the same client id, token, side, price and size
  always make the same order id, across restarts too: a re-sent order is answered
  ``Duplicated`` by the venue and the gateway returns the order already there. The gateway keeps
  client id -> order id in memory; after a restart call ``register(order)`` (no I/O besides
  the cached tick/neg-risk/fee look-ups) for each order the runtime still tracks, or simply
  re-``submit`` it: that is idempotent.
* Errors: ``PolyApiException`` (and the client's bare ``Exception`` for local validation) map
  onto ``VenueErrorKind``: no answer / 5xx / 425 -> UNAVAILABLE, 429 -> RATE_LIMITED,
  401/403 -> AUTH, 404 -> NOT_FOUND, a 400 about balance -> INSUFFICIENT_FUNDS, any other
  400 -> REJECTED. ``Retry-After`` is not visible through py-clob-client's exception.
* Orders are limit orders (GTC; ``post_only`` -> GTC postOnly; IOC -> FAK). Before signing, the
  market's rules are applied (``actors.core.exchange_rules.polymarket_rules``): the price goes
  onto the tick (buys down, sells up), the size onto 0.01 shares (down); a price outside
  ``[tick, 1 - tick]`` or a size under the minimum is refused locally (``OrderRefusedError``), so
  an order the venue would reject never reaches it.
* Tick changes: with ``ws_url`` (the market channel), every token the gateway submits to is
  watched (``tick_watch.TickWatch``); a pushed ``tick_size_change`` becomes the token's tick at
  once (and its ``Instrument``'s), ahead of py-clob-client's 300 s ``/tick-size`` cache, which is
  cleared. Without it the tick is that cache's.

Fills come from ``/data/trades``: as taker, the trade's own side/price/size; as maker, the entry
of ``maker_orders`` that is ours. Fill id ``polymarket:<trade id>:<order id>`` (a trade can
hold several of our maker orders). Fees are ``actors.core.fees.FeeModel`` (what the venue's
crypto fee schedule charges), not the ``fee_rate_bps`` field.

The REST payloads are read into domain objects by ``actors.venues.polymarket.parse``; the
market-channel websocket lives in ``actors.venues.polymarket.market_stream``.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from py_clob_client.client import ClobClient
from py_clob_client.clob_types import (
    AssetType,
    BalanceAllowanceParams,
    OpenOrderParams,
    OrderArgs,
    TradeParams,
)
from py_clob_client.config import get_contract_config
from py_clob_client.exceptions import PolyApiException, PolyException
from py_clob_client.order_builder.builder import ROUNDING_CONFIG
from pydantic import ValidationError

from actors.core.exchange_rules import polymarket_rules
from actors.core.fees import FeeModel
from actors.data.polymarket import LOT_SIZE
from actors.domain.model import (
    Fill,
    Instrument,
    Liquidity,
    MarketKind,
    Order,
    OrderBook,
    OrderType,
    Side,
    TimeInForce,
)
from actors.domain.safety import bound_recursion
from actors.venues.gateway import VenueError, VenueErrorKind, enforce_rules
from actors.venues.polymarket.parse import (
    VENUE,
    book_from_summary,
    decimal_of,
    instruments_from_market,
    market_of,
    ms_of,
    order_from_json,
    token_of,
)
from actors.venues.polymarket.tick_watch import TickWatch
from actors.venues.polymarket.user_stream import UserChannelReader, polymarket_user_stream, user_ws_url
from actors.venues.user_stream import UserStreamEvent
from config.models import UserStreamConfig

bound_recursion()  # py_ecc raised it at import; see actors.domain.safety
log = logging.getLogger(__name__)

# py_order_utils ships no type information: loaded as Any, whatever the mypy overrides say.
UtilsOrderBuilder: Any = importlib.import_module("py_order_utils.builders").OrderBuilder
OrderData: Any = importlib.import_module("py_order_utils.model").OrderData
UtilsSigner: Any = importlib.import_module("py_order_utils.signer").Signer

POLYGON = 137
USDC = "USDC"
TOKEN_UNIT = Decimal(10**6)
END_CURSOR = "LTE="
START_CURSOR = "MA=="
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
T = TypeVar("T")


# --------------------------------------------------------------------------- ids and salts


def salt_for(client_id: str) -> int:
    """The order salt of a client id: 48 bits of SHA-256, so one intent is always one order hash."""
    return int(hashlib.sha256(f"raytrader-salt|{client_id}".encode()).hexdigest()[:12], 16)


class DeterministicOrderBuilder:
    """py-clob-client's ``OrderBuilder.create_order`` with a caller-chosen salt.

    ``builder`` is the client's own ``OrderBuilder`` (``client.builder``): its signer, signature
    type, funder and ``get_order_amounts`` rounding are used as they are.
    """

    def __init__(self, builder: Any) -> None:
        self.builder = builder

    def build(self, args: Any, tick_size: str, neg_risk: bool, salt: int) -> tuple[Any, str]:
        """(SignedOrder, order id = its EIP-712 hash) of ``args`` (an ``OrderArgs``)."""
        side, maker_amount, taker_amount = self.builder.get_order_amounts(
            args.side, args.size, args.price, ROUNDING_CONFIG[tick_size]
        )
        signer = self.builder.signer
        data = OrderData(
            maker=self.builder.funder,
            taker=args.taker,
            tokenId=args.token_id,
            makerAmount=str(maker_amount),
            takerAmount=str(taker_amount),
            side=side,
            feeRateBps=str(args.fee_rate_bps),
            nonce=str(args.nonce),
            signer=signer.address(),
            expiration=str(args.expiration),
            signatureType=self.builder.sig_type,
        )
        exchange = get_contract_config(signer.get_chain_id(), neg_risk).exchange
        utils = UtilsOrderBuilder(
            exchange, signer.get_chain_id(), UtilsSigner(key=signer.private_key), salt_generator=lambda: salt
        )
        signed = utils.build_signed_order(data)
        return signed, str(utils._create_struct_hash(signed.order))


# --------------------------------------------------------------------------- error mapping


def _error_text(payload: Any) -> str:
    if isinstance(payload, dict):
        for key in ("error", "errorMsg", "message"):
            value = payload.get(key)
            if value:
                return str(value)
        return json.dumps(payload)[:300]
    return str(payload)[:300]


def map_error(exc: BaseException, what: str = "") -> VenueError:
    """One ``VenueError`` for anything py-clob-client raises."""
    prefix = f"{what}: " if what else ""
    if isinstance(exc, VenueError):
        return exc
    if isinstance(exc, PolyApiException):
        status = exc.status_code
        text = _error_text(exc.error_msg)
        if status is None:
            kind = VenueErrorKind.UNAVAILABLE
        elif status in (401, 403):
            kind = VenueErrorKind.AUTH
        elif status == 404:
            kind = VenueErrorKind.NOT_FOUND
        elif status == 429:
            kind = VenueErrorKind.RATE_LIMITED
        elif status >= 500 or status in (408, 425):
            kind = VenueErrorKind.UNAVAILABLE
        elif "balance" in text.lower():
            kind = VenueErrorKind.INSUFFICIENT_FUNDS
        else:
            kind = VenueErrorKind.REJECTED
        return VenueError(VENUE, kind, f"{prefix}HTTP {status}: {text}")
    if isinstance(exc, PolyException):
        return VenueError(VENUE, VenueErrorKind.AUTH, f"{prefix}{exc.msg}")
    return VenueError(VENUE, VenueErrorKind.REJECTED, f"{prefix}{type(exc).__name__}: {exc}")


def _is_duplicate(exc: VenueError) -> bool:
    return exc.kind is VenueErrorKind.REJECTED and "duplicated" in exc.message.lower()


@dataclass(frozen=True, slots=True)
class _Prepared:
    signed: Any
    order_id: str
    order_type: str
    post_only: bool
    token: str


class PolymarketGateway:
    """``VenueGateway`` for the Polymarket CLOB (or the sandbox) through py-clob-client."""

    venue = VENUE

    def __init__(
        self,
        host: str,
        private_key: str | None,
        *,
        chain_id: int = POLYGON,
        signature_type: int = 0,
        api_nonce: int = 0,
        fees: FeeModel | None = None,
        only_accepting: bool = True,
        ws_url: str | None = None,
    ) -> None:
        if signature_type != 0:
            raise ValueError("only EOA wallets (signature_type=0) are supported")
        self.host = host.rstrip("/")
        self.chain_id = chain_id
        self.api_nonce = api_nonce
        self.fees = fees if fees is not None else FeeModel()
        self.only_accepting = only_accepting
        self.trading = private_key is not None
        """Without a key the gateway reads public market data only (paper trading on live data)."""
        self.client: Any = ClobClient(self.host, chain_id=chain_id, key=private_key, signature_type=0)
        self.address: str = str(self.client.get_address() or "")
        self._builder = DeterministicOrderBuilder(getattr(self.client, "builder", None))  # no key: none
        self._instruments: dict[str, Instrument] = {}
        self._order_ids: dict[str, str] = {}
        self._client_ids: dict[str, str] = {}
        self._tokens: set[str] = set()
        self._ticks: dict[str, Decimal] = {}
        """Ticks pushed by the market channel since its last snapshot (they beat the REST cache)."""
        self._tick_watch = TickWatch(ws_url, self._on_tick, self._on_snapshot) if ws_url else None
        self.ws_url = ws_url

    # ------------------------------------------------------------------ plumbing

    async def _call(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking py-clob-client call in a worker thread; errors become ``VenueError``."""
        try:
            return await asyncio.to_thread(fn, *args)
        except VenueError:
            raise
        except Exception as exc:
            raise map_error(exc, what) from exc

    def _client_id(self, order_id: str) -> str:
        return self._client_ids.get(order_id, order_id)

    def _remember(self, client_id: str, order_id: str, token: str) -> None:
        self._order_ids[client_id] = order_id
        self._client_ids[order_id] = client_id
        self._tokens.add(token)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """L1: create or derive the API creds; L2 from then on; load the markets."""
        if not self.trading:  # public data needs no credentials (and must not create any)
            await self.instruments()
            return
        creds = await self._call("api creds", self.client.create_or_derive_api_creds, self.api_nonce)
        if creds is None:
            raise VenueError(VENUE, VenueErrorKind.AUTH, "could not create or derive API credentials")
        self.client.set_api_creds(creds)
        await self.instruments()

    async def close(self) -> None:
        """The tick watch's socket; py-clob-client's HTTP client is process-wide and owned by it."""
        if self._tick_watch is not None:
            await self._tick_watch.close()

    # ------------------------------------------------------------------ pushed updates

    def user_updates(self, config: UserStreamConfig) -> AsyncIterator[UserStreamEvent]:
        """Our order and trade events from the user channel beside the market channel (see
        ``actors.venues.polymarket.user_stream``); needs ``ws_url`` and started creds."""
        if self.ws_url is None:
            raise VenueError(VENUE, VenueErrorKind.UNAVAILABLE, "no websocket URL: no user channel")
        creds = self.client.creds
        auth = {"apiKey": creds.api_key, "secret": creds.api_secret, "passphrase": creds.api_passphrase}
        reader = UserChannelReader(client_id=self._client_id, fills_of=self._fills_of)
        return polymarket_user_stream(
            user_ws_url(self.ws_url), auth, reader, config, lambda: time.time_ns() // 1_000_000
        )

    # ------------------------------------------------------------------ ticks

    def _on_tick(self, token: str, tick: Decimal) -> None:
        """A pushed ``tick_size_change``: the token's tick from now on."""
        log.info("polymarket: %s tick is now %s", token, tick)
        self._ticks[token] = tick
        self.client.clear_tick_size_cache(token)
        instrument = self._instruments.get(token)
        if instrument is not None:
            self._instruments[token] = instrument.model_copy(update={"tick_size": tick})

    def _on_snapshot(self, token: str) -> None:
        """A (re)subscription: what was pushed before may be stale; read ``/tick-size`` next time."""
        if self._ticks.pop(token, None) is not None:
            self.client.clear_tick_size_cache(token)

    def known_tick(self, token: str) -> Decimal | None:
        """The tick last pushed for ``token`` (``None``: not pushed since the last snapshot)."""
        return self._ticks.get(token)

    async def _tick_text(self, token: str) -> str:
        """The token's tick as py-clob-client's rounding tables name it ("0.01")."""
        if self._tick_watch is not None:
            self._tick_watch.watch(token)
        pushed = self._ticks.get(token)
        if pushed is not None:
            return f"{pushed.normalize():f}"
        return str(await self._call("tick size", self.client.get_tick_size, token))

    # ------------------------------------------------------------------ markets

    async def instruments(self) -> list[Instrument]:
        """Every outcome token of every market (accepting orders, unless ``only_accepting=False``)."""
        cursor = START_CURSOR
        found: list[Instrument] = []
        pages = 0
        while cursor != END_CURSOR:
            page = await self._call("markets", self.client.get_markets, cursor)
            pages += 1
            if not isinstance(page, dict) or pages > 10_000:
                raise VenueError(VENUE, VenueErrorKind.UNAVAILABLE, "malformed /markets page")
            for raw in page.get("data") or []:
                if self.only_accepting and (not raw.get("accepting_orders") or raw.get("closed")):
                    continue
                try:
                    found.extend(instruments_from_market(raw))
                except (KeyError, ValueError, TypeError, ValidationError) as exc:
                    log.error("polymarket: skipping malformed market %.80r: %s", raw, exc)
            cursor = str(page.get("next_cursor") or END_CURSOR)
        self._instruments.update({i.symbol: i for i in found})
        return found

    async def server_time_ms(self) -> int:
        """The venue's clock (``GET /time``, Unix seconds): which windows are near is its call."""
        seconds = await self._call("time", self.client.get_server_time)
        try:
            return int(seconds) * 1000
        except (TypeError, ValueError) as exc:
            raise VenueError(VENUE, VenueErrorKind.UNAVAILABLE, f"malformed /time {seconds!r}") from exc

    async def order_book(self, market: str) -> OrderBook:
        token = token_of(market)
        summary = await self._call("book", self.client.get_order_book, token)
        try:
            return book_from_summary(summary, token)
        except (ValueError, TypeError, ValidationError) as exc:
            raise VenueError(VENUE, VenueErrorKind.UNAVAILABLE, f"malformed book: {exc}") from exc

    async def tick_size(self, market: str) -> Decimal:
        return Decimal(await self._tick_text(token_of(market)))

    async def neg_risk(self, market: str) -> bool:
        return bool(await self._call("neg risk", self.client.get_neg_risk, token_of(market)))

    async def fee_rate_bps(self, market: str) -> int:
        return int(await self._call("fee rate", self.client.get_fee_rate_bps, token_of(market)))

    async def _min_size(self, token: str) -> Decimal:
        instrument = self._instruments.get(token)
        if instrument is not None:
            return instrument.min_size
        summary = await self._call("book", self.client.get_order_book, token)
        return Decimal(str(getattr(summary, "min_order_size", None) or 0))

    # ------------------------------------------------------------------ orders

    async def order_id_for(self, order: Order) -> str:
        """The venue order id ``order`` has (or will have): its EIP-712 hash, recomputed."""
        return (await self._prepare(order)).order_id

    async def register(self, order: Order) -> str:
        """Re-learn an order's id after a restart without sending anything; returns the id.

        An order the venue answered carries its id: kept as is, with no request (and no risk of a
        different hash if the market's fee rate or tick changed since). Only an unanswered intent
        is prepared again to learn the id it would have had.
        """
        if order.venue_order_id:
            self._remember(order.client_id, order.venue_order_id, token_of(order.market))
            return order.venue_order_id
        prepared = await self._prepare(order)
        self._remember(order.client_id, prepared.order_id, prepared.token)
        return prepared.order_id

    async def _prepare(self, order: Order) -> _Prepared:
        if not self.trading:
            raise VenueError(VENUE, VenueErrorKind.AUTH, "no wallet key: this gateway reads market data only")
        token = token_of(order.market)
        if order.type is not OrderType.LIMIT or order.price is None:
            raise VenueError(
                VENUE, VenueErrorKind.REJECTED, "only limit orders (use a marketable limit + IOC)"
            )
        tick_text = await self._tick_text(token)
        rules = polymarket_rules(Decimal(tick_text), await self._min_size(token))
        valid = enforce_rules(VENUE, rules, order)
        price, qty = valid.price, valid.qty
        assert price is not None  # a limit order's, checked above
        neg_risk = bool(await self._call("neg risk", self.client.get_neg_risk, token))
        fee_bps = int(await self._call("fee rate", self.client.get_fee_rate_bps, token))
        args = OrderArgs(
            token_id=token,
            price=float(price),
            size=float(qty),
            side="BUY" if order.side is Side.BUY else "SELL",
            fee_rate_bps=fee_bps,
        )
        salt = salt_for(order.client_id)
        signed, order_id = await self._call("sign", self._builder.build, args, tick_text, neg_risk, salt)
        if order.tif is TimeInForce.IOC:
            order_type, post_only = "FAK", False
        else:
            order_type, post_only = "GTC", order.tif is TimeInForce.POST_ONLY
        return _Prepared(signed, order_id, order_type, post_only, token)

    async def submit(self, order: Order) -> Order:
        """Sign (deterministic salt) and post; a duplicate answer means it is already there."""
        prepared = await self._prepare(order)
        self._remember(order.client_id, prepared.order_id, prepared.token)
        try:
            answer = await self._call(
                "post order", self.client.post_order, prepared.signed, prepared.order_type, prepared.post_only
            )
        except VenueError as exc:
            if not _is_duplicate(exc):
                raise
            log.info("polymarket: %s already at the venue as %s", order.client_id, prepared.order_id)
        else:
            if isinstance(answer, dict) and answer.get("success") is False:
                text = _error_text(answer)
                kind = (
                    VenueErrorKind.INSUFFICIENT_FUNDS
                    if "balance" in text.lower()
                    else VenueErrorKind.REJECTED
                )
                raise VenueError(VENUE, kind, f"post order: {text}")
        view = await self._lookup(prepared.order_id, order.client_id)
        if view is None:
            raise VenueError(
                VENUE, VenueErrorKind.UNAVAILABLE, f"posted {prepared.order_id} but cannot see it"
            )
        return view

    async def _lookup(self, order_id: str, client_id: str | None = None) -> Order | None:
        try:
            raw = await self._call("get order", self.client.get_order, order_id)
        except VenueError as exc:
            if exc.kind is VenueErrorKind.NOT_FOUND:
                return None
            raise
        if not isinstance(raw, dict) or not raw:
            return None
        try:
            return order_from_json(raw, client_id or self._client_id(order_id))
        except (KeyError, ValueError, TypeError, ValidationError) as exc:
            raise VenueError(VENUE, VenueErrorKind.UNAVAILABLE, f"malformed order {order_id}: {exc}") from exc

    def _known(self, client_id: str) -> str:
        order_id = self._order_ids.get(client_id)
        if order_id is None:
            raise VenueError(
                VENUE,
                VenueErrorKind.NOT_FOUND,
                f"unknown client id {client_id!r} (register() it after a restart)",
            )
        return order_id

    async def cancel(self, client_id: str, market: str) -> Order:  # noqa: ARG002 - the id says it all
        order_id = self._known(client_id)
        await self._call("cancel", self.client.cancel, order_id)
        view = await self._lookup(order_id, client_id)
        if view is None:
            raise VenueError(
                VENUE, VenueErrorKind.NOT_FOUND, f"order {order_id} ({client_id}) is not at the venue"
            )
        return view

    async def cancel_all(self, market: str | None = None) -> list[Order]:
        if market is None:
            answer = await self._call("cancel all", self.client.cancel_all)
        else:
            answer = await self._call("cancel market", self.client.cancel_market_orders, "", token_of(market))
        ids = answer.get("canceled", []) if isinstance(answer, dict) else []
        views = []
        for order_id in ids:
            view = await self._lookup(str(order_id))
            if view is not None:
                views.append(view)
        return views

    async def order(self, client_id: str, market: str) -> Order | None:  # noqa: ARG002 - as cancel
        """The venue's view; ``None`` when it never saw the order (or we never learnt its id)."""
        order_id = self._order_ids.get(client_id)
        if order_id is None:
            return None
        return await self._lookup(order_id, client_id)

    async def open_orders(self, market: str | None = None) -> list[Order]:
        params = OpenOrderParams(asset_id=token_of(market)) if market is not None else None
        rows = await self._call("open orders", self.client.get_orders, params)
        orders = []
        for raw in rows or []:
            try:
                orders.append(order_from_json(raw, self._client_id(str(raw.get("id")))))
            except (KeyError, ValueError, TypeError, ValidationError) as exc:
                log.error("polymarket: skipping malformed open order %.80r: %s", raw, exc)
        return orders

    # ------------------------------------------------------------------ fills and balances

    async def fills(self, market: str, since_ms: int | None = None) -> list[Fill]:
        token = token_of(market)
        after = since_ms // 1000 if since_ms is not None else None
        rows = await self._call("trades", self.client.get_trades, TradeParams(asset_id=token, after=after))
        found: list[Fill] = []
        for raw in rows or []:
            try:
                found.extend(self._fills_of(raw))
            except (KeyError, ValueError, TypeError, ValidationError) as exc:
                log.error("polymarket: skipping malformed trade %.80r: %s", raw, exc)
        if since_ms is not None:
            found = [f for f in found if f.ts_ms >= since_ms]
        found.sort(key=lambda f: (f.ts_ms, f.fill_id))
        return found

    def _fills_of(self, raw: dict[str, Any]) -> list[Fill]:
        """Our side(s) of one trade: the taker order, or each maker order of ours."""
        trade_id = str(raw["id"])
        ts = ms_of(raw.get("match_time")) or ms_of(raw.get("last_update")) or 0
        token = str(raw["asset_id"])
        mine: list[tuple[str, Side, Decimal, Decimal, Liquidity]] = []
        if str(raw.get("trader_side", "TAKER")).upper() == "TAKER":
            side = Side.BUY if str(raw["side"]).upper() == "BUY" else Side.SELL
            mine.append(
                (
                    str(raw["taker_order_id"]),
                    side,
                    decimal_of(raw["price"], "price"),
                    decimal_of(raw["size"], "size"),
                    Liquidity.TAKER,
                )
            )
        else:
            for maker in raw.get("maker_orders") or []:
                order_id = str(maker["order_id"])
                ours = str(maker.get("maker_address", "")).lower() == self.address.lower()
                if not ours and order_id not in self._client_ids:
                    continue
                side = Side.BUY if str(maker.get("side", "")).upper() == "BUY" else Side.SELL
                qty = decimal_of(maker["matched_amount"], "matched_amount")
                mine.append((order_id, side, decimal_of(maker["price"], "price"), qty, Liquidity.MAKER))
        instrument = self._instruments.get(token) or Instrument(
            venue=VENUE, symbol=token, kind=MarketKind.BINARY, tick_size=Decimal("0.01"), lot_size=LOT_SIZE
        )
        fills = []
        for order_id, side, price, qty, liquidity in mine:
            if qty <= 0:
                continue
            fills.append(
                Fill(
                    fill_id=f"{VENUE}:{trade_id}:{order_id}",
                    client_id=self._client_id(order_id),
                    market=market_of(token),
                    side=side,
                    price=price,
                    qty=qty,
                    fee=self.fees.fee(VENUE, instrument, side, price, qty, liquidity),
                    liquidity=liquidity,
                    ts_ms=ts,
                )
            )
        return fills

    async def balances(self) -> dict[str, Decimal]:
        """USDC and every outcome token this gateway traded, free + locked (on-chain balances)."""
        collateral = await self._call(
            "balance",
            self.client.get_balance_allowance,
            BalanceAllowanceParams(asset_type=AssetType.COLLATERAL),
        )
        result = {USDC: decimal_of(collateral.get("balance", 0), "balance") / TOKEN_UNIT}
        for token in sorted(self._tokens):
            params = BalanceAllowanceParams(asset_type=AssetType.CONDITIONAL, token_id=token)
            raw = await self._call("balance", self.client.get_balance_allowance, params)
            amount = decimal_of(raw.get("balance", 0), "balance") / TOKEN_UNIT
            if amount != 0:
                result[token] = amount
        return result
