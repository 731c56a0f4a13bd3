"""The paper venue ignores market data it has already matched: a feed restarted from an older
checkpoint sends it again, and matching a repeated bar against an order placed since would fill
what the uncrashed run never filled (the gap the feed's paced checkpoints widened)."""

from __future__ import annotations

from actors.core.fees import FeeModel
from actors.domain.model import OrderStatus, Side
from actors.venues.paper import PaperGateway
from tests.unit.core.test_matching import BTC, UP, book, candle, order


def paper() -> PaperGateway:
    return PaperGateway("binance", FeeModel(), [BTC, UP])


def _fills(venue: PaperGateway) -> list[str]:
    return [u.order.client_id for u in venue.take_updates() if u.fill is not None]


async def test_bar_sent_again_after_a_feed_restart_does_not_fill_an_order_placed_since() -> None:
    venue = paper()
    bar = candle(101, 102, 99, 101, ts=60_000)
    venue.on_market([bar])
    await venue.submit(order("exit", Side.BUY, "100", "0.1"))  # accepted before that bar's open
    venue.take_updates()
    venue.on_market([bar])  # the restarted feed's repeat
    assert _fills(venue) == []
    assert venue.repeated == 1
    assert venue.engine.order("exit").status is OrderStatus.OPEN
    venue.on_market([candle(101, 102, 99, 101, ts=120_000)])  # the next bar fills it, as it would have
    assert _fills(venue) == ["exit"]


async def test_venue_restored_from_its_checkpoint_still_knows_the_bars_it_matched() -> None:
    venue = paper()
    bar = candle(101, 102, 99, 101, ts=60_000)
    venue.on_market([bar])
    restored = paper()
    restored.restore(venue.checkpoint())
    await restored.submit(order("exit", Side.BUY, "100", "0.1"))
    restored.take_updates()
    restored.on_market([bar])
    assert _fills(restored) == []
    assert restored.repeated == 1


async def test_older_book_ignored_but_a_distinct_book_of_the_same_millisecond_matched() -> None:
    venue = paper()
    market = UP.market_id
    venue.on_market([book([("0.40", "100")], [("0.60", "100")], market=market, ts=10_000)])
    await venue.submit(order("buy", Side.BUY, "0.50", "10", market=market))
    venue.take_updates()
    venue.on_market([book([("0.40", "100")], [("0.45", "100")], market=market, ts=5_000)])  # older: a repeat
    assert _fills(venue) == []
    assert venue.repeated == 1
    venue.on_market([book([("0.40", "100")], [("0.45", "100")], market=market, ts=10_000)])  # same ms, new
    assert _fills(venue) == ["buy"]
