"""Markets, the sandbox clock and the modelled books: the core every other part builds on.

The clock is the sandbox's own: ``advance_to(ms)`` / ``advance(seconds)`` (or the background
task at ``speed``) steps it in ``step_ms`` steps (1 s by default). At each step: markets whose
window ended resolve (their open orders are cancelled, the winning token pays 1 USDC a share,
the losing one 0, straight into the USDC balance), expired GTD orders end, a fresh modelled book
is shown to the engine for every token that has open orders or websocket subscribers (resting
orders it crosses fill as makers), and websocket subscribers get the changes. ``GET /time``
answers this clock (seconds). Auth timestamps are NOT checked against any clock.

What happens at a step belongs to the other parts (settlement resolves, orders record fills,
the market channel publishes): ``ClobExchange`` declares those hooks and ``venue.SandboxClob``
brings their implementations together.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import gzip
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.core.fees import FeeModel
from actors.core.matching import MatchingEngine
from actors.data.polymarket import VENUE, BinaryMarket, ChainlinkTicks, load_chainlink, load_markets
from actors.data.polymarket_books import BookModel, BookModelConfig
from actors.domain.messages import OrderUpdate
from actors.domain.model import OrderBook, Side
from ops.sandbox.clob.protocol import EXCHANGES, _iso_to_ms
from ops.sandbox.clob.records import Payout, SandboxCreds, _Market, _Published, _Rec, _Subscriber, _Trade

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "polymarket"
DEFAULT_MARKETS = DATA_DIR / "BTC-5m-markets-2026-07-24.jsonl.gz"
DEFAULT_CHAINLINK = DATA_DIR / "BTCUSD-chainlink-2026-07-24.csv.gz"

COARSE_TICK = Decimal("0.01")
TICK_SIZES = (Decimal("0.1"), Decimal("0.01"), Decimal("0.001"), Decimal("0.0001"))
"""The ticks Polymarket uses (py-clob-client's ROUNDING_CONFIG)."""
NARROW_ABOVE = Decimal("0.96")
NARROW_BELOW = Decimal("0.04")


def _load_raw(path: Path) -> dict[str, dict[str, Any]]:
    """The raw Gamma objects of the markets file, by condition id."""
    rows: dict[str, dict[str, Any]] = {}
    text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
    for line in text.splitlines():
        if line.strip():
            row = json.loads(line)
            rows[str(row["condition_id"])] = row.get("raw") or {}
    return rows


class ClobExchange(abc.ABC):
    """Markets, clock and books of the sandbox venue, and the state every other part keeps here."""

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
        self._user_subscribers: list[Any] = []  # user_channel._UserSubscriber
        self._published: dict[str, _Published] = {}
        self.order_rejections: list[str] = []
        """Every order post refused (its error message): what a client sent only to be rejected."""
        self._tick_overrides: dict[str, Decimal] = {}
        """condition id -> a tick set by ``set_tick_size`` (it wins over the modelled rule)."""
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

    def set_tick_size(self, token_or_condition: str, tick: Decimal | str | None) -> None:
        """Change a market's tick now, as Polymarket does (``None``: back to the modelled rule).

        Subscribers of its tokens get ``tick_size_change`` at once; orders off the new tick are
        refused from now on (open orders keep their prices, as on the venue).
        """
        market = self._by_token.get(token_or_condition) or self._markets.get(token_or_condition)
        if market is None:
            raise KeyError(f"no market {token_or_condition!r}")
        condition = market.info.condition_id
        if tick is None:
            self._tick_overrides.pop(condition, None)
        else:
            value = Decimal(str(tick))
            if value not in TICK_SIZES:
                raise ValueError(f"tick {tick} is not one of Polymarket's {', '.join(map(str, TICK_SIZES))}")
            self._tick_overrides[condition] = value
            for token in market.info.token_ids:  # the engine must accept every price the venue does
                inst = self.engine.instrument(f"{VENUE}:{token}")
                if inst is not None and inst.tick_size > value:
                    self.engine.add_instrument(inst.model_copy(update={"tick_size": value}))
        self._publish()

    def tick_size(self, token: str) -> Decimal:
        """0.01, or the market's recorded finer tick while the Up book trades beyond 0.96 / 0.04
        (or what ``set_tick_size`` set)."""
        market = self._by_token[token]
        override = self._tick_overrides.get(market.info.condition_id)
        if override is not None and not market.closed:
            return override
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

    # ------------------------------------------------------------------ hooks of the other parts

    @abc.abstractmethod
    def _resolve(self, market: _Market, t: int) -> None:
        """Window over: settle ``market`` (``settlement``)."""

    @abc.abstractmethod
    def _handle(self, events: list[OrderUpdate], t: int) -> None:
        """Record the engine's fills as trades and announce them (``orders``)."""

    @abc.abstractmethod
    def subscribed_assets(self) -> set[str]:
        """Tokens some websocket subscriber follows (``websocket``)."""

    @abc.abstractmethod
    def _publish(self) -> None:
        """Send subscribers the book changes since the last publication (``websocket``)."""
