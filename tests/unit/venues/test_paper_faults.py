"""The paper venue's fault hooks (chaos only): off by default, refused in live mode, and each
fault acting at the gateway edge as a real venue's would, the matching engine untouched."""

from __future__ import annotations

from decimal import Decimal

import pytest

from actors.core.fees import FeeModel
from actors.domain.model import BookLevel, Candle, Order, OrderBook, OrderStatus, Side
from actors.venues.faults import VENUE_FAULTS, VenueFaults
from actors.venues.gateway import VenueError, VenueErrorKind
from actors.venues.paper import PaperGateway
from config.loader import ConfigError, load_settings
from tests.unit.core.test_matching import BTC, UP

D = Decimal


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def order(
    cid: str, price: str, qty: str = "0.1", side: Side = Side.BUY, market: str = BTC.market_id
) -> Order:
    return Order(client_id=cid, market=market, side=side, price=D(price), qty=D(qty), created_ms=60_000)


def gateway(clock: Clock | None = None) -> PaperGateway:
    faults = VenueFaults("binance", clock or Clock())
    return PaperGateway("binance", FeeModel(), [BTC, UP], faults=faults)


def candle(low: float, high: float, ts: int = 60_000, volume: float = 50.0) -> Candle:
    return Candle(market=BTC.market_id, ts_ms=ts, open=high, high=high, low=low, close=low, volume=volume)


async def test_a_paper_venue_has_no_fault_hooks_unless_asked_for() -> None:
    plain = PaperGateway("binance", FeeModel(), [BTC])
    assert plain.faults is None
    assert plain.engine.participation is None  # matching exactly as without the hooks
    accepted = await plain.submit(order("a", "100"))
    assert accepted.status is OrderStatus.OPEN


def test_fault_injection_is_refused_in_live_mode() -> None:
    with pytest.raises(ConfigError, match="fault_injection"):
        load_settings(
            None,
            env={
                "RAYTRADER_SECRETS__BINANCE_API_KEY": "k",
                "RAYTRADER_SECRETS__BINANCE_API_SECRET": "s",
                "RAYTRADER_SECRETS__POLYMARKET_PRIVATE_KEY": "0x" + "1" * 64,
            },
            overrides=['mode="live"', "runtime.fault_injection=true"],
        )
    assert not load_settings(None, env={}).runtime.fault_injection


def test_unknown_fault_or_a_window_without_seconds_is_refused() -> None:
    faults = VenueFaults("binance", Clock())
    with pytest.raises(ValueError, match="unknown venue fault 'meteor'"):
        faults.inject("meteor")
    with pytest.raises(ValueError, match="needs a window"):
        faults.inject("reject_balance")
    assert "partial_fills" in VENUE_FAULTS


@pytest.mark.parametrize(
    ("kind", "error"),
    [("reject_balance", VenueErrorKind.INSUFFICIENT_FUNDS), ("reject_min_notional", VenueErrorKind.REJECTED)],
)
async def test_rejection_window_refuses_every_submit_at_the_edge_until_it_ends(
    kind: str, error: VenueErrorKind
) -> None:
    clock = Clock()
    venue = gateway(clock)
    assert venue.faults is not None
    venue.faults.inject(kind, 5.0)
    for side in (Side.BUY, Side.SELL):
        with pytest.raises(VenueError) as refused:
            await venue.submit(order(f"r-{side.value}", "100", side=side))
        assert refused.value.kind is error
        assert not refused.value.retryable
    assert venue.engine.orders() == []  # the engine never saw them
    clock.now += 5.0
    assert (await venue.submit(order("after", "100"))).status is OrderStatus.OPEN
    assert venue.faults.status()["struck"] == {kind: 2}


async def test_tick_size_window_refuses_only_prices_off_the_coarser_grid() -> None:
    venue = gateway()
    assert venue.faults is not None
    venue.faults.inject("reject_tick_size", 5.0)
    with pytest.raises(VenueError, match="PRICE_FILTER"):
        await venue.submit(order("off-grid", "100.05"))
    assert (await venue.submit(order("on-grid", "100.10"))).status is OrderStatus.OPEN


async def test_partial_fills_window_fills_a_resting_order_in_pieces_on_candles() -> None:
    clock = Clock()
    venue = gateway(clock)
    assert venue.faults is not None
    await venue.submit(order("buy", "100", qty="0.1"))
    venue.faults.inject("partial_fills", 5.0)
    venue.on_market([candle(99.0, 101.0, ts=60_000)])
    first = venue.engine.order("buy")
    assert first is not None
    assert first.status is OrderStatus.PARTIALLY_FILLED
    assert first.filled_qty == D("0.05")  # half the remainder per candle
    venue.on_market([candle(99.0, 101.0, ts=120_000)])
    second = venue.engine.order("buy")
    assert second is not None
    assert second.filled_qty == D("0.075")
    clock.now += 5.0  # the window is over: the rest fills at once
    venue.on_market([candle(99.0, 101.0, ts=180_000)])
    done = venue.engine.order("buy")
    assert done is not None
    assert done.status is OrderStatus.FILLED
    assert len(venue.engine.fills()) == 3


async def test_partial_fills_window_thins_a_book_to_part_of_the_order() -> None:
    venue = gateway()
    assert venue.faults is not None
    await venue.submit(order("up", "0.50", qty="40", market=UP.market_id))
    venue.faults.inject("partial_fills", 5.0)
    venue.on_market(
        [
            OrderBook(
                market=UP.market_id,
                ts_ms=60_000,
                bids=(BookLevel(price=D("0.47"), size=D("500")),),
                asks=(BookLevel(price=D("0.48"), size=D("500")), BookLevel(price=D("0.49"), size=D("500"))),
            )
        ]
    )
    seen = venue.engine.order("up")
    assert seen is not None
    assert seen.filled_qty == D("20")


async def test_lost_answer_submit_reaches_the_engine_but_its_answer_is_lost() -> None:
    venue = gateway()
    assert venue.faults is not None
    venue.faults.inject("lost_answer")
    with pytest.raises(VenueError) as lost:
        await venue.submit(order("lost", "100"))
    assert lost.value.retryable
    seen = await venue.order("lost", BTC.market_id)
    assert seen is not None
    assert seen.status is OrderStatus.OPEN  # a lookup by client id finds it: adopt, never resend
    assert [u.order.client_id for u in venue.take_updates()] == ["lost"]


async def test_call_faults_fail_the_next_calls_then_the_venue_answers() -> None:
    venue = gateway()
    assert venue.faults is not None
    venue.faults.inject("venue_5xx")
    venue.faults.inject("venue_429")
    for _ in range(3):
        with pytest.raises(VenueError) as down:
            await venue.open_orders()
        assert down.value.kind is VenueErrorKind.UNAVAILABLE
    for _ in range(2):
        with pytest.raises(VenueError) as limited:
            await venue.submit(order("x", "100"))
        assert limited.value.kind is VenueErrorKind.RATE_LIMITED
        assert limited.value.retry_after_s
    assert venue.engine.orders() == []
    assert (await venue.submit(order("x", "100"))).status is OrderStatus.OPEN
    assert venue.faults.status() == {"active": [], "armed": {}, "struck": {"venue_429": 2, "venue_5xx": 3}}
