"""Polymarket's user channel read into the venue actor's updates, on the real message shapes
(tests/fixtures/polymarket/ws_user_*), with the gateway's own trade reading and id map."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from actors.domain.messages import UpdateKind
from actors.domain.model import OrderStatus
from actors.venues.polymarket.gateway import PolymarketGateway
from actors.venues.polymarket.user_stream import UserChannelReader, user_ws_url
from tests.paths import FIXTURES

ORDER_ID = "0x1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef12"
TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
KEY = "0x" + "42" * 32


def _fixture(name: str, **over: Any) -> str:
    return json.dumps({**json.loads((FIXTURES / "polymarket" / name).read_text()), **over})


def _reader() -> UserChannelReader:
    gateway = PolymarketGateway("http://127.0.0.1:9", KEY)  # no request is made: reading only
    gateway._remember("rt-entry", ORDER_ID, TOKEN)
    return UserChannelReader(client_id=gateway._client_id, fills_of=gateway._fills_of)


def test_trade_after_placement_becomes_one_fill_with_the_rest_fill_id() -> None:
    reader = _reader()
    assert reader.feed(_fixture("ws_user_order_msg.json"), 1) == []  # placed: nothing ended
    (update,) = reader.feed(_fixture("ws_user_trade_msg.json", status="MATCHED"), 2)
    assert update.kind is UpdateKind.FILL
    assert update.fill is not None
    assert update.fill.fill_id == f"polymarket:trade-0xabcdef1234:{ORDER_ID}"
    assert update.fill.client_id == update.order.client_id == "rt-entry"
    assert update.fill.qty == Decimal(25)
    assert update.order.status is OrderStatus.PARTIALLY_FILLED
    assert update.order.filled_qty == Decimal(25)
    assert reader.feed(_fixture("ws_user_trade_msg.json", status="CONFIRMED"), 3) == []  # the same trade


def test_trade_of_an_order_the_channel_never_showed_is_left_to_the_rest_backstop() -> None:
    reader = _reader()
    assert reader.feed(_fixture("ws_user_trade_msg.json"), 1) == []
    reader.feed(_fixture("ws_user_order_msg.json"), 2)
    (update,) = reader.feed(_fixture("ws_user_trade_msg.json"), 3)  # shown now: read
    assert update.kind is UpdateKind.FILL


def test_cancellations_by_us_and_by_the_venue_end_the_order() -> None:
    reader = _reader()
    (ours,) = reader.feed(_fixture("ws_user_order_cancellation.json"), 1)
    assert ours.kind is UpdateKind.CANCELLED
    assert ours.order.client_id == "rt-entry"
    (killed,) = reader.feed(_fixture("ws_user_order_fok_killed.json"), 2)
    assert killed.order.status is OrderStatus.CANCELLED
    (invalid,) = reader.feed(_fixture("ws_user_order_venue_cancel.json"), 3)
    assert invalid.order.status is OrderStatus.CANCELLED


def test_malformed_user_messages_are_counted_never_raised() -> None:
    reader = _reader()
    for bad in ("{not json", "[1, 2]", json.dumps({"event_type": "order", "id": "x"}), "PONG", ""):
        assert reader.feed(bad, 1) == []
    assert reader.malformed == 4  # each item of a list counts


def test_user_channel_url_sits_beside_the_market_channel() -> None:
    assert user_ws_url("wss://ws-subscriptions-clob.polymarket.com/ws/market") == (
        "wss://ws-subscriptions-clob.polymarket.com/ws/user"
    )
    assert user_ws_url("ws://127.0.0.1:8802/ws/market/") == "ws://127.0.0.1:8802/ws/user"
