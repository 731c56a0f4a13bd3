"""State store codec: orders, fills, positions and plain dicts stored with exact decimals."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.domain.model import Fill, Order, Position
from actors.store.lmdb_store import StateStore
from tests.unit.store.store_helpers import make_fill, make_order, make_position


def test_order_fill_position_roundtrip_decimals_exact(store: StateStore) -> None:
    order, fill, position = make_order(), make_fill(), make_position()
    store.put("order", order.client_id, order)
    store.put("fill", fill.fill_id, fill)
    store.put("position", position.position_id, position)

    assert store.get_model("order", order.client_id, Order) == order
    assert store.get_model("fill", fill.fill_id, Fill) == fill
    back = store.get_model("position", position.position_id, Position)
    assert back == position
    assert back is not None
    # exponent kept, not just the value: "0.5100" stays "0.5100"
    assert str(back.entry_price) == "0.5100"
    assert str(back.mark_price) == "0.55555555555555555555555555"
    raw = store.get("order", order.client_id)
    assert raw is not None
    assert raw["price"] == "65000.10"
    assert raw["qty"] == "0.00100"


def test_plain_dict_decimals_stored_as_exact_strings(store: StateStore) -> None:
    store.put(
        "portfolio", "main", {"cash": Decimal("1000.000"), "nested": {"x": [Decimal("1E-8")]}, "f": 0.1}
    )
    assert store.get("portfolio", "main") == {"cash": "1000.000", "nested": {"x": ["1E-8"]}, "f": 0.1}


def test_unstorable_value_raises_type_error(store: StateStore) -> None:
    with pytest.raises(TypeError):
        store.put("strategy", "s", {"bad": {1, 2}})
    assert store.count("strategy") == 0


def test_fill_decimals_roundtrip_property_exact(tmp_path: Path) -> None:
    decimals = st.decimals(
        min_value=Decimal("1E-12"), max_value=Decimal("1E12"), allow_nan=False, places=None
    )
    with StateStore(tmp_path / "state") as store:

        @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(price=decimals, qty=decimals, fee=st.decimals(min_value=0, max_value=100, allow_nan=False))
        def check(price: Decimal, qty: Decimal, fee: Decimal) -> None:
            fill = make_fill("f", price=price, qty=qty, fee=fee)
            store.put("fill", "f", fill)
            back = store.get_model("fill", "f", Fill)
            assert back is not None
            assert (str(back.price), str(back.qty), str(back.fee)) == (str(price), str(qty), str(fee))

        check()
