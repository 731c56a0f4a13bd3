"""The market a trade counts in: a Polymarket window's Up and Down tokens are one market."""

from __future__ import annotations

from decimal import Decimal

from actors.domain.market_groups import conditions_of, count_by_market, gate_market
from actors.domain.model import Instrument, MarketKind


def _token(token: str, condition: str, outcome: str) -> Instrument:
    return Instrument(
        venue="polymarket",
        symbol=token,
        kind=MarketKind.BINARY,
        tick_size=Decimal("0.01"),
        lot_size=Decimal("0.01"),
        condition_id=condition,
        outcome=outcome,
    )


WINDOW_A = (_token("111", "0xaa", "Up"), _token("222", "0xaa", "Down"))
WINDOW_B = (_token("333", "0xbb", "Up"), _token("444", "0xbb", "Down"))
BTC = Instrument(venue="binance", symbol="BTC/USDT", tick_size=Decimal("0.01"), lot_size=Decimal("0.00001"))


def test_both_tokens_of_a_window_map_to_its_condition_and_spot_markets_to_themselves() -> None:
    conditions = conditions_of([*WINDOW_A, *WINDOW_B, BTC])
    assert conditions == {
        "polymarket:111": "polymarket:0xaa",
        "polymarket:222": "polymarket:0xaa",
        "polymarket:333": "polymarket:0xbb",
        "polymarket:444": "polymarket:0xbb",
    }
    assert gate_market("polymarket:222", conditions) == "polymarket:0xaa"
    assert gate_market("binance:BTC/USDT", conditions) == "binance:BTC/USDT"


def test_trades_on_up_and_down_of_one_window_count_in_one_market_sorted() -> None:
    conditions = conditions_of([*WINDOW_A, *WINDOW_B])
    traded = ["polymarket:444", "polymarket:111", "binance:BTC/USDT", "polymarket:222", "polymarket:111"]
    assert count_by_market(traded, conditions) == {
        "binance:BTC/USDT": 1,
        "polymarket:0xaa": 3,
        "polymarket:0xbb": 1,
    }


def test_a_token_whose_instrument_is_unknown_counts_as_itself() -> None:
    assert count_by_market(["polymarket:999"], conditions_of(WINDOW_A)) == {"polymarket:999": 1}
