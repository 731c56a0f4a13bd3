"""Which Polymarket books a live feed reads, and which reference prices it merges in."""

from __future__ import annotations

from decimal import Decimal

from actors.data.live import BOOK_HORIZON_MS, book_tokens, chainlink_references
from actors.domain.model import Instrument, MarketKind
from config.loader import load_settings

NOW = 1_784_851_200_000
MIN = 60_000


def _token(symbol: str, start_min: int | None, end_min: int | None) -> Instrument:
    return Instrument(
        venue="polymarket",
        symbol=symbol,
        kind=MarketKind.BINARY,
        tick_size=Decimal("0.01"),
        lot_size=Decimal("0.01"),
        start_ms=None if start_min is None else NOW + start_min * MIN,
        end_ms=None if end_min is None else NOW + end_min * MIN,
    )


def test_books_are_read_for_open_and_imminent_windows_only() -> None:
    tokens = [
        _token("ended", -10, -5),
        _token("open", -2, 3),
        _token("next", 3, 8),
        _token("in-14-min", 14, 19),
        _token("tomorrow", 24 * 60, 24 * 60 + 5),
        _token("no-window", None, None),
    ]
    known = {t.market_id: t for t in tokens}
    assert book_tokens(known, NOW) == ["in-14-min", "next", "no-window", "open"]
    assert BOOK_HORIZON_MS == 15 * MIN


def test_default_portfolio_live_polymarket_feed_merges_the_chainlink_reference() -> None:
    settings = load_settings(None, env={})
    assert chainlink_references(settings) == ["chainlink:BTC/USD"]
    off = load_settings(None, env={}, overrides=["strategies.polymarket_lag.enabled=false"])
    assert chainlink_references(off) == []
